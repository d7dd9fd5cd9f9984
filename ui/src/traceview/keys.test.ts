import { describe, expect, it } from "vitest";
import { buildTree, visibleRows } from "../trace/tree";
import { spans } from "../trace/testspans";
import { navKey, stepMatch } from "./keys";

// a ─ b ─ c
//   └ d
const tree = buildTree(
  spans(
    { id: "a", start: 0, end: 100 },
    { id: "b", parent: "a", start: 10, end: 50 },
    { id: "c", parent: "b", start: 20, end: 30 },
    { id: "d", parent: "a", start: 60, end: 90, service: "db" },
  ),
);
const rows = visibleRows(tree, new Set());
const idx = (key: string) => rows.findIndex((r) => r.key === key);

describe("navKey", () => {
  it("moves the selection up and down, stopping at the ends", () => {
    expect(navKey("ArrowDown", rows, -1, new Set())).toEqual({ select: "a" });
    expect(navKey("ArrowDown", rows, idx("a"), new Set())).toEqual({ select: "b" });
    expect(navKey("ArrowDown", rows, idx("d"), new Set())).toEqual({ select: "d" });
    expect(navKey("ArrowUp", rows, idx("a"), new Set())).toEqual({ select: "a" });
    expect(navKey("End", rows, idx("a"), new Set())).toEqual({ select: "d" });
    expect(navKey("PageDown", rows, 0, new Set(), 2)).toEqual({ select: "c" });
  });
  it("collapses an open node, then goes to the parent", () => {
    expect(navKey("ArrowLeft", rows, idx("b"), new Set())).toEqual({ collapse: "b" });
    expect(navKey("ArrowLeft", rows, idx("b"), new Set(["b"]))).toEqual({ select: "a" });
    expect(navKey("ArrowLeft", rows, idx("c"), new Set())).toEqual({ select: "b" });
    expect(navKey("ArrowLeft", rows, idx("a"), new Set(["a"]))).toEqual({});
  });
  it("expands a closed node, then goes to its first child", () => {
    const shown = visibleRows(tree, new Set(["b"]));
    expect(navKey("ArrowRight", shown, 1, new Set(["b"]))).toEqual({ expand: "b" });
    expect(navKey("ArrowRight", rows, idx("b"), new Set())).toEqual({ select: "c" });
    expect(navKey("ArrowRight", rows, idx("c"), new Set())).toEqual({});
  });
  it("does not go to a parent the service filter hides", () => {
    const dbOnly = visibleRows(tree, new Set(), { services: new Set(["db"]) });
    expect(navKey("ArrowLeft", dbOnly, 0, new Set())).toEqual({});
  });
  it("opens and closes details, and ignores other keys", () => {
    expect(navKey("Enter", rows, 0, new Set())).toEqual({ open: true });
    expect(navKey("Escape", rows, 0, new Set())).toEqual({ close: true });
    expect(navKey("x", rows, 0, new Set())).toBeNull();
    expect(navKey("ArrowDown", [], -1, new Set())).toBeNull();
  });
});

describe("stepMatch", () => {
  it("wraps both ways", () => {
    expect(stepMatch(3, -1, 1)).toBe(0);
    expect(stepMatch(3, -1, -1)).toBe(2);
    expect(stepMatch(3, 2, 1)).toBe(0);
    expect(stepMatch(3, 0, -1)).toBe(2);
    expect(stepMatch(0, 0, 1)).toBe(-1);
  });
});
