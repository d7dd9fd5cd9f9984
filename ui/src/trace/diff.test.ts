import { describe, expect, it } from "vitest";
import { diffTraces } from "./diff";
import { buildTree } from "./tree";
import { LARGE, deepChain, spans } from "./testspans";

const a = buildTree(
  spans(
    { id: "r", service: "frontend", name: "GET /", start: 0, end: 100 },
    { id: "au", parent: "r", service: "auth", name: "check", start: 5, end: 15 },
    { id: "q1", parent: "r", service: "db", name: "query", start: 20, end: 30 },
    { id: "q2", parent: "r", service: "db", name: "query", start: 30, end: 50 },
    { id: "c", parent: "r", service: "cache", name: "get", start: 60, end: 62 },
    // The same pair under another parent is another node.
    { id: "aq", parent: "au", service: "db", name: "query", start: 6, end: 8 },
  ),
);
const b = buildTree(
  spans(
    { id: "R", service: "frontend", name: "GET /", start: 0, end: 200 },
    { id: "AU", parent: "R", service: "auth", name: "check", start: 5, end: 45 },
    { id: "AQ", parent: "AU", service: "db", name: "query", start: 6, end: 8 },
    { id: "Q1", parent: "R", service: "db", name: "query", start: 50, end: 60 },
    { id: "Q2", parent: "R", service: "db", name: "query", start: 60, end: 70 },
    { id: "Q3", parent: "R", service: "db", name: "query", start: 70, end: 100 },
    { id: "RC", parent: "R", service: "recs", name: "recommend", start: 110, end: 190 },
    { id: "RM", parent: "RC", service: "ml", name: "score", start: 120, end: 180 },
  ),
);

describe("diffTraces", () => {
  it("folds by (service, operation) path and marks added, removed and changed", () => {
    const d = diffTraces(a, b);
    const row = (n: (typeof d.nodes)[number]) => [
      n.depth,
      n.service,
      n.operation,
      n.countA,
      n.countB,
      n.state,
    ];
    expect(d.nodes.map(row)).toEqual([
      [0, "frontend", "GET /", 1, 1, "same"],
      [1, "auth", "check", 1, 1, "same"],
      [2, "db", "query", 1, 1, "same"],
      [1, "db", "query", 2, 3, "changed"],
      [1, "cache", "get", 1, 0, "removed"],
      [1, "recs", "recommend", 0, 1, "added"],
      [2, "ml", "score", 0, 1, "added"],
    ]);
    expect(d.counts).toEqual({ added: 2, removed: 1, changed: 1, same: 3 });
    expect(d.roots).toHaveLength(1);
  });

  it("gives each side's mean duration and the difference", () => {
    const d = diffTraces(a, b);
    const db = d.nodes.find((n) => n.depth === 1 && n.service === "db")!;
    expect(db.meanUsA).toBe(15);
    expect(db.meanUsB).toBeCloseTo(50 / 3, 12);
    expect(db.deltaUs).toBeCloseTo(50 / 3 - 15, 12);
    expect(db.a.map((n) => n.key)).toEqual(["q1", "q2"]);
    expect(db.b.map((n) => n.key)).toEqual(["Q1", "Q2", "Q3"]);
    const added = d.nodes.find((n) => n.operation === "recommend")!;
    expect([added.meanUsA, added.meanUsB, added.deltaUs]).toEqual([null, 80, null]);
    const removed = d.nodes.find((n) => n.operation === "get")!;
    expect([removed.meanUsA, removed.meanUsB, removed.deltaUs]).toEqual([2, null, null]);
  });

  it("marks a slower node changed when asked to", () => {
    // auth check: 10 µs in A, 40 µs in B (+300 %); the root doubles (+100 %).
    const d = diffTraces(a, b, { durationChange: 1.5 });
    expect(d.nodes.find((n) => n.operation === "check")!.state).toBe("changed");
    expect(d.nodes[0]!.state).toBe("same");
    expect(diffTraces(a, b, { durationChange: 0.5 }).nodes[0]!.state).toBe("changed");
  });

  it("is all same for a trace against itself, and handles one empty side", () => {
    const d = diffTraces(a, a);
    expect(d.nodes.every((n) => n.state === "same")).toBe(true);
    const e = diffTraces(a, buildTree([]));
    expect(e.nodes.every((n) => n.state === "removed")).toBe(true);
    expect(e.counts.removed).toBe(5);
  });

  it("compares 50,000-deep chains, one renamed halfway", LARGE, () => {
    const n = 50_000;
    const sa = deepChain(n);
    const sb = deepChain(n);
    sb[n / 2]!.name = "renamed";
    const d = diffTraces(buildTree(sa), buildTree(sb));
    // Above the renamed span: shared. From it down: A's branch removed, B's added.
    expect(d.counts).toEqual({ same: n / 2, removed: n / 2, added: n / 2, changed: 0 });
    expect(d.nodes).toHaveLength(1.5 * n);
  });
});
