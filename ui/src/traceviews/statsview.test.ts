import { describe, expect, it } from "vitest";
import { traceStats } from "../trace/stats";
import { buildTree } from "../trace/tree";
import { spans } from "../trace/testspans";
import { DEFAULT_SORT, nextSort, sortRows, statsRows } from "./statsview";

const stats = traceStats(
  buildTree(
    spans(
      { id: "r", service: "web", name: "GET /", start: 0, end: 100 },
      { id: "a", parent: "r", service: "db", name: "SELECT", start: 10, end: 30 },
      { id: "b", parent: "r", service: "db", name: "SELECT", start: 40, end: 45, error: true },
      { id: "c", parent: "r", service: "db", name: "INSERT", start: 50, end: 90 },
      { id: "d", parent: "r", service: "cache", name: "GET", start: 95, end: 100 },
    ),
  ),
);

describe("statsRows and sortRows", () => {
  it("groups by service or by service and operation", () => {
    expect(statsRows(stats, "service").map((r) => [r.service, r.operation, r.count])).toEqual([
      ["web", "", 1],
      ["db", "", 3],
      ["cache", "", 1],
    ]);
    expect(sortRows(statsRows(stats, "operation"), { column: "service", descending: false }).map((r) => [r.service, r.operation])).toEqual([
      ["cache", "GET"],
      ["db", "INSERT"],
      ["db", "SELECT"],
      ["web", "GET /"],
    ]);
  });

  it("sorts by a number column either way, ties by name", () => {
    const ops = statsRows(stats, "operation");
    expect(sortRows(ops, DEFAULT_SORT).map((r) => r.operation)).toEqual(["GET /", "INSERT", "SELECT", "GET"]);
    expect(sortRows(ops, { column: "count", descending: true }).map((r) => r.operation)).toEqual(["SELECT", "GET", "INSERT", "GET /"]);
    expect(sortRows(ops, { column: "errorCount", descending: true })[0]!.operation).toBe("SELECT");
    expect(sortRows(ops, { column: "minUs", descending: false }).map((r) => [r.operation, r.minUs])).toEqual([
      ["GET", 5],
      ["SELECT", 5],
      ["INSERT", 40],
      ["GET /", 100],
    ]);
    expect(sortRows(ops, { column: "selfUs", descending: true })[0]!.operation).toBe("INSERT");
  });

  it("flips the direction on the same column and starts numbers with the largest", () => {
    expect(nextSort(DEFAULT_SORT, "totalUs")).toEqual({ column: "totalUs", descending: false });
    expect(nextSort(DEFAULT_SORT, "count")).toEqual({ column: "count", descending: true });
    expect(nextSort(DEFAULT_SORT, "service")).toEqual({ column: "service", descending: false });
  });
});
