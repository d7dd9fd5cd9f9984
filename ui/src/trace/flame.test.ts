import { describe, expect, it } from "vitest";
import { type FlameLayout, flameHit, flameLayout, focusFlame } from "./flame";
import { buildTree, type TraceTree } from "./tree";
import { LARGE, deepChain, spans, wideTrace } from "./testspans";

function rectOf(l: FlameLayout, t: TraceTree, key: string) {
  return l.rects[t.byKey.get(key)!.index]!;
}

/** Every rect inside its parent, no two rects of a row overlapping. */
function expectNested(l: FlameLayout, t: TraceTree): void {
  const eps = 1e-9;
  for (const node of t.nodes) {
    const r = l.rects[node.index]!;
    // Plain checks: fifty thousand expect() calls would dominate the test's time.
    if (r.key !== node.key) throw new Error(`rect ${node.index} is ${r.key}, not ${node.key}`);
    if (!(r.x0 >= -eps && r.x1 <= 1 + eps && r.x1 >= r.x0)) throw new Error(`${r.key} [${r.x0}, ${r.x1}]`);
    if (node.parent !== null) {
      const p = l.rects[node.parent.index]!;
      if (r.x0 < p.x0 - eps || r.x1 > p.x1 + eps)
        throw new Error(`${r.key} [${r.x0}, ${r.x1}] outside ${p.key} [${p.x0}, ${p.x1}]`);
    }
  }
  for (const row of l.rows) {
    for (let i = 1; i < row.length; i++) {
      if (row[i]!.x0 < row[i - 1]!.x1 - eps) throw new Error(`${row[i]!.key} overlaps ${row[i - 1]!.key}`);
    }
  }
}

describe("flameLayout", () => {
  const t = buildTree(
    spans(
      { id: "r", service: "web", name: "GET /", start: 0, end: 100 },
      { id: "a", parent: "r", service: "db", start: 10, end: 30 },
      { id: "b", parent: "r", service: "cache", start: 50, end: 90, error: true },
      { id: "b1", parent: "b", service: "cache", start: 60, end: 70 },
    ),
  );
  const l = flameLayout(t);

  it("puts siblings that do not overlap at their time positions", () => {
    expect([rectOf(l, t, "r").x0, rectOf(l, t, "r").x1]).toEqual([0, 1]);
    expect(rectOf(l, t, "a").x0).toBeCloseTo(0.1, 12);
    expect(rectOf(l, t, "a").x1).toBeCloseTo(0.3, 12);
    expect(rectOf(l, t, "b").x0).toBeCloseTo(0.5, 12);
    expect(rectOf(l, t, "b").x1).toBeCloseTo(0.9, 12);
    const b1 = rectOf(l, t, "b1");
    expect(b1.x0).toBeCloseTo(0.6, 12);
    expect(b1.x1).toBeCloseTo(0.7, 12);
    expect(rectOf(l, t, "r")).toMatchObject({
      depth: 0,
      label: "GET /",
      service: "web",
      serviceIndex: 0,
      selfUs: 40,
      error: false,
    });
    expect(rectOf(l, t, "b")).toMatchObject({ depth: 1, service: "cache", selfUs: 30, error: true });
    expectNested(l, t);
    expect(l.rows.map((r) => r.map((x) => x.key))).toEqual([["r"], ["a", "b"], ["b1"]]);
  });

  it("finds the rectangle under a point", () => {
    expect(flameHit(l, 1, 0.55)?.key).toBe("b");
    expect(flameHit(l, 1, 0.1)?.key).toBe("a");
    expect(flameHit(l, 1, 0.45)).toBeNull();
    expect(flameHit(l, 2, 0.65)?.key).toBe("b1");
    expect(flameHit(l, 5, 0.5)).toBeNull();
  });

  it("zooms onto a span with its ancestors kept", () => {
    const f = focusFlame(l, t, "b");
    expect(f.map((r) => r.key)).toEqual(["r", "b", "b1"]);
    expect([f[0]!.x0, f[0]!.x1]).toEqual([0, 1]);
    expect([f[1]!.x0, f[1]!.x1]).toEqual([0, 1]);
    expect(f[2]!.x0).toBeCloseTo(0.25, 12);
    expect(f[2]!.x1).toBeCloseTo(0.5, 12);
    expect(focusFlame(l, t, "nope")).toEqual([]);
  });

  it("sets overlapping siblings side by side, shrunk, inside the parent", () => {
    // a 0..60 and b 20..80 need 120 of the parent's 100: both scale by 100/120 to 0.5 wide.
    const t2 = buildTree(
      spans(
        { id: "r", start: 0, end: 100 },
        { id: "a", parent: "r", start: 0, end: 60 },
        { id: "b", parent: "r", start: 20, end: 80 },
        { id: "b1", parent: "b", start: 20, end: 50 },
        { id: "c", parent: "r", start: 90, end: 130 },
      ),
    );
    const l2 = flameLayout(t2);
    // The graph spans the trace's 0..130 (c ends at 130), so r is 100/130 wide. With c
    // clipped to 90..100 the children need 130 of r's 100: all scale by 100/130 again.
    const s = 100 / 130;
    const r = rectOf(l2, t2, "r");
    expect([r.x0, r.x1]).toEqual([0, s]);
    const w = s * s;
    expect(rectOf(l2, t2, "a").x0).toBe(0);
    expect(rectOf(l2, t2, "a").x1).toBeCloseTo(0.6 * w, 12);
    expect(rectOf(l2, t2, "b").x0).toBeCloseTo(0.6 * w, 12);
    expect(rectOf(l2, t2, "b").x1).toBeCloseTo(1.2 * w, 12);
    expect(rectOf(l2, t2, "c").x0).toBeCloseTo(1.2 * w, 12);
    expect(rectOf(l2, t2, "c").x1).toBeCloseTo(s, 12);
    // b1 takes the first half of b, as it does in time.
    expect(rectOf(l2, t2, "b1").x0).toBeCloseTo(rectOf(l2, t2, "b").x0, 12);
    expect(rectOf(l2, t2, "b1").x1 - rectOf(l2, t2, "b1").x0).toBeCloseTo(0.3 * w, 12);
    expectNested(l2, t2);
  });

  it("keeps orphan roots beside the root", () => {
    const t3 = buildTree(
      spans({ id: "r", start: 0, end: 100 }, { id: "o", parent: "gone", start: 50, end: 150 }),
    );
    expectNested(flameLayout(t3), t3);
  });

  it("lays out 50,000-span traces, deep and wide", LARGE, () => {
    const deep = buildTree(deepChain(50_000));
    const ld = flameLayout(deep);
    expect(ld.rows).toHaveLength(50_000);
    expectNested(ld, deep);
    const wide = buildTree(wideTrace(50_000));
    const lw = flameLayout(wide);
    expect(lw.rows[1]).toHaveLength(49_999);
    expectNested(lw, wide);
    expect(flameLayout(buildTree([])).rects).toEqual([]);
  });
});
