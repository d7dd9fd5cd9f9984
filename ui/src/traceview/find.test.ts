import { describe, expect, it } from "vitest";
import { buildTree } from "../trace/tree";
import { spans } from "../trace/testspans";
import { findMatches } from "./find";

const tree = buildTree(
  spans(
    { id: "aaaa000000000001", name: "GET /users", start: 0, end: 100 },
    { id: "bbbb000000000002", parent: "aaaa000000000001", name: "SELECT users", service: "postgres", start: 10, end: 50, attributes: { "db.rows": 42 } },
    { id: "cccc000000000003", parent: "aaaa000000000001", name: "cache get", start: 60, end: 90, attributes: { "cache.hit": false, "http.route": "/users/:id" } },
  ),
);
const ids = (q: string) => findMatches(tree, q).map((n) => n.spanId);

describe("findMatches", () => {
  it("finds by name, case-insensitively, in row order", () => {
    expect(ids("users")).toEqual(["aaaa000000000001", "bbbb000000000002", "cccc000000000003"]);
    expect(ids("SELECT")).toEqual(["bbbb000000000002"]);
  });
  it("finds by service and by id prefix", () => {
    expect(ids("postgres")).toEqual(["bbbb000000000002"]);
    expect(ids("cccc00")).toEqual(["cccc000000000003"]);
  });
  it("finds by attribute key, value and key=value", () => {
    expect(ids("db.rows")).toEqual(["bbbb000000000002"]);
    expect(ids("db.rows=42")).toEqual(["bbbb000000000002"]);
    expect(ids("db.rows=43")).toEqual([]);
    expect(ids("cache.hit=false")).toEqual(["cccc000000000003"]);
  });
  it("matches nothing for an empty query", () => {
    expect(ids("  ")).toEqual([]);
  });
});
