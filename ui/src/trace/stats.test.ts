import { describe, expect, it } from "vitest";
import { selfTimesUs, traceStats } from "./stats";
import { buildTree } from "./tree";
import { LARGE, deepChain, spans } from "./testspans";

describe("selfTimesUs", () => {
  it("subtracts the union of overlapping children, clipped to the parent", () => {
    // p 0..100; children 10..40 and 30..50 overlap (union 10..50 = 40); 45..60 extends
    // it to 60 (union 10..60 = 50); 90..130 overflows the parent, only 90..100 counts.
    // Self time = 100 - 50 - 10 = 40.
    const t = buildTree(
      spans(
        { id: "p", start: 0, end: 100 },
        { id: "a", parent: "p", start: 10, end: 40 },
        { id: "b", parent: "p", start: 30, end: 50 },
        { id: "c", parent: "p", start: 45, end: 60 },
        { id: "d", parent: "p", start: 90, end: 130 },
        { id: "a1", parent: "a", start: 15, end: 35 },
      ),
    );
    const self = selfTimesUs(t);
    const of = (k: string): number => self[t.byKey.get(k)!.index]!;
    expect(of("p")).toBe(40);
    expect(of("a")).toBe(10);
    expect(of("b")).toBe(20);
    expect(of("d")).toBe(40);
  });

  it("counts a child nested inside another child once", () => {
    const t = buildTree(
      spans(
        { id: "p", start: 0, end: 100 },
        { id: "a", parent: "p", start: 0, end: 80 },
        { id: "b", parent: "p", start: 20, end: 30 },
      ),
    );
    expect(selfTimesUs(t)[0]).toBe(20);
  });
});

describe("traceStats", () => {
  it("aggregates per service and per operation", () => {
    const t = buildTree(
      spans(
        { id: "r", service: "web", name: "GET /", start: 0, end: 100 },
        { id: "q1", parent: "r", service: "db", name: "SELECT", start: 10, end: 30 },
        { id: "q2", parent: "r", service: "db", name: "SELECT", start: 20, end: 60, error: true },
        { id: "q3", parent: "r", service: "db", name: "INSERT", start: 70, end: 75 },
        { id: "h", parent: "r", service: "web", name: "render", start: 80, end: 95 },
      ),
    );
    const st = traceStats(t);
    expect(st.durationUs).toBe(100);
    const web = st.services.find((s) => s.service === "web")!;
    const db = st.services.find((s) => s.service === "db")!;
    // Root self: 100 - (10..60 = 50) - 5 - 15 = 30.
    expect(web).toMatchObject({ count: 2, totalUs: 115, selfUs: 45, minUs: 15, maxUs: 100, errorCount: 0 });
    expect(db).toMatchObject({ count: 3, totalUs: 65, selfUs: 65, minUs: 5, maxUs: 40, errorCount: 1 });
    expect(db.avgUs).toBeCloseTo(65 / 3);
    expect(web.selfPercent).toBe(45);
    expect(st.services.map((s) => s.service)).toEqual(["web", "db"]);
    const select = st.operations.find((o) => o.service === "db" && o.operation === "SELECT")!;
    expect(select).toMatchObject({
      count: 2,
      totalUs: 60,
      avgUs: 30,
      minUs: 20,
      maxUs: 40,
      errorCount: 1,
      selfMinUs: 20,
      selfMaxUs: 40,
    });
    expect(st.operations).toHaveLength(4);
  });

  it("keeps operations of the same name in different services apart", () => {
    const t = buildTree(
      spans(
        { id: "r", service: "a", name: "x", start: 0, end: 10 },
        { id: "c", parent: "r", service: "b", name: "x", start: 1, end: 2 },
      ),
    );
    expect(traceStats(t).operations.map((o) => [o.service, o.operation, o.count])).toEqual([
      ["a", "x", 1],
      ["b", "x", 1],
    ]);
  });

  it("handles a 50,000-deep chain", LARGE, () => {
    const n = 50_000;
    const st = traceStats(buildTree(deepChain(n)));
    expect(st.services.reduce((a, s) => a + s.count, 0)).toBe(n);
    // Each span has 1 µs of its own at either end, the deepest all of its 2 µs.
    expect(st.services.reduce((a, s) => a + s.selfUs, 0)).toBe(2 * n);
  });
});
