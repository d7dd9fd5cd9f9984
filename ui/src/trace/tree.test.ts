import { describe, expect, it } from "vitest";
import {
  buildTree,
  collapseAll,
  collapseToDepth,
  eventTimesUs,
  expandAll,
  revealNode,
  toggleCollapsed,
  visibleRows,
} from "./tree";
import { LARGE, deepChain, spans, wideTrace } from "./testspans";

const keys = (ns: readonly { key: string }[]): string[] => ns.map((n) => n.key);

describe("buildTree", () => {
  it("orders children by start and numbers rows in preorder", () => {
    const t = buildTree(
      spans(
        { id: "c2", parent: "r", start: 50, end: 90, service: "db" },
        { id: "r", start: 0, end: 100, service: "web" },
        { id: "g1", parent: "c1", start: 12, end: 20, service: "web" },
        { id: "c1", parent: "r", start: 10, end: 40, service: "auth" },
      ),
    );
    expect(keys(t.nodes)).toEqual(["r", "c1", "g1", "c2"]);
    expect(t.nodes.map((n) => n.index)).toEqual([0, 1, 2, 3]);
    expect(t.nodes.map((n) => n.depth)).toEqual([0, 1, 2, 1]);
    expect(t.nodes.map((n) => n.descendants)).toEqual([3, 1, 0, 0]);
    expect(t.services).toEqual(["web", "auth", "db"]);
    expect(t.nodes.map((n) => n.serviceIndex)).toEqual([0, 1, 0, 2]);
    expect(t.root?.key).toBe("r");
    expect(t.rootMissing).toBe(false);
    expect(t.startUs).toBe(0);
    expect(t.endUs).toBe(100);
    expect(t.maxDepth).toBe(2);
  });

  it("keeps microsecond order between spans a few hundred ns apart", () => {
    const s = spans(
      { id: "r", start: 0, end: 10 },
      { id: "b", parent: "r", start: 1.4, end: 2 },
      { id: "a", parent: "r", start: 1.2, end: 2 },
    );
    const t = buildTree(s);
    expect(keys(t.nodes)).toEqual(["r", "a", "b"]);
    expect(t.byKey.get("a")!.startUs).toBeCloseTo(1.2, 6);
  });

  it("makes spans with an absent parent extra roots flagged orphan", () => {
    const t = buildTree(
      spans(
        { id: "r", start: 0, end: 100 },
        { id: "o", parent: "gone", start: 5, end: 30 },
        { id: "oc", parent: "o", start: 6, end: 7 },
      ),
    );
    expect(keys(t.roots)).toEqual(["r", "o"]);
    expect(t.byKey.get("o")!.orphan).toBe(true);
    expect(t.byKey.get("oc")!.orphan).toBe(false);
    expect(t.byKey.get("oc")!.depth).toBe(1);
    expect(t.root?.key).toBe("r");
  });

  it("reports a missing root when every span has a parent", () => {
    const t = buildTree(
      spans({ id: "b", parent: "gone", start: 20, end: 30 }, { id: "a", parent: "gone", start: 10, end: 40 }),
    );
    expect(t.root).toBeNull();
    expect(t.rootMissing).toBe(true);
    expect(keys(t.roots)).toEqual(["a", "b"]);
    expect(t.roots.every((r) => r.orphan)).toBe(true);
  });

  it("picks the earliest of several parentless spans as the root", () => {
    const t = buildTree(
      spans(
        { id: "late", start: 50, end: 60 },
        { id: "early", start: 10, end: 20 },
        { id: "o", parent: "x", start: 0, end: 5 },
      ),
    );
    expect(t.root?.key).toBe("early");
    expect(keys(t.roots)).toEqual(["o", "early", "late"]);
  });

  it("keeps spans with a repeated id under their own key and hangs children on the first", () => {
    const t = buildTree(
      spans(
        { id: "r", start: 0, end: 100 },
        { id: "d", parent: "r", start: 10, end: 20, name: "first" },
        { id: "d", parent: "r", start: 30, end: 40, name: "second" },
        { id: "k", parent: "d", start: 11, end: 12 },
      ),
    );
    expect(t.nodes).toHaveLength(4);
    expect(keys(t.nodes)).toEqual(["r", "d", "k", "d#1"]);
    expect(t.byKey.get("d#1")!.duplicateId).toBe(true);
    expect(t.byKey.get("d#1")!.span.name).toBe("second");
    expect(t.byKey.get("d")!.duplicateId).toBe(false);
    expect(t.bySpanId.get("d")!.span.name).toBe("first");
  });

  it("cuts parent loops instead of hanging or dropping spans", () => {
    const t = buildTree(
      spans(
        { id: "r", start: 0, end: 100 },
        { id: "a", parent: "b", start: 20, end: 30 },
        { id: "b", parent: "a", start: 10, end: 40 },
        { id: "c", parent: "a", start: 5, end: 6 },
        { id: "s", parent: "s", start: 50, end: 60 },
      ),
    );
    expect(t.nodes).toHaveLength(5);
    expect(new Set(keys(t.nodes)).size).toBe(5);
    // The loop a<->b is cut at its earliest member b; c hangs below a, not cut itself.
    expect(t.byKey.get("b")!.cycle).toBe(true);
    expect(t.byKey.get("b")!.parent).toBeNull();
    expect(t.byKey.get("a")!.parent?.key).toBe("b");
    expect(t.byKey.get("c")!.cycle).toBe(false);
    expect(t.byKey.get("c")!.depth).toBe(2);
    expect(t.byKey.get("s")!.cycle).toBe(true);
    expect(t.root?.key).toBe("r");
    expect(keys(t.roots)).toEqual(["r", "b", "s"]);
  });

  it("centres a skewed child of another service inside its parent, with its subtree", () => {
    const t = buildTree(
      spans(
        { id: "p", service: "front", start: 0, end: 100 },
        // Reported 150..170 by a clock running ahead: outside the parent, 20 µs long.
        { id: "c", parent: "p", service: "back", start: 150, end: 170 },
        { id: "cg", parent: "c", service: "back", start: 155, end: 160 },
        // Fits already: untouched.
        { id: "f", parent: "p", service: "back", start: 10, end: 20 },
        // Same service outside the parent: one clock, so nothing to correct.
        { id: "same", parent: "p", service: "front", start: 95, end: 120 },
        // Longer than the parent: cannot fit, left where reported.
        { id: "long", parent: "p", service: "other", start: -10, end: 200 },
      ),
    );
    const c = t.byKey.get("c")!;
    // Times count from the earliest report ("long" at -10), so the parent is 10..110.
    // Centred: 10 + (100 - 20) / 2 = 50, so shift = 50 - 160 = -110.
    expect(c.skewed).toBe(true);
    expect(c.skewShiftUs).toBe(-110);
    expect([c.startUs, c.endUs]).toEqual([50, 70]);
    expect([c.rawStartUs, c.rawEndUs]).toEqual([160, 180]);
    const cg = t.byKey.get("cg")!;
    expect(cg.skewed).toBe(false);
    expect([cg.startUs, cg.endUs]).toEqual([55, 60]);
    for (const id of ["f", "same", "long", "p"]) {
      expect(t.byKey.get(id)!.skewShiftUs, id).toBe(0);
      expect(t.byKey.get(id)!.skewed, id).toBe(false);
    }
    expect(t.startUs).toBe(0);
    expect(t.endUs).toBe(210);
    // Rows follow the drawn times: c now comes before "same" (reported later than it).
    expect(keys(t.nodes)).toEqual(["p", "long", "f", "c", "cg", "same"]);
  });

  it("shifts a grandchild of a third service relative to its shifted parent", () => {
    const t = buildTree(
      spans(
        { id: "p", service: "a", start: 0, end: 100 },
        { id: "c", parent: "p", service: "b", start: 1000, end: 1060 },
        // Fits its parent's reported times but must follow the parent's correction; it
        // ends 1 µs after the parent, so it is outside and gets centred in the shifted parent.
        { id: "g", parent: "c", service: "c", start: 1010, end: 1061 },
      ),
    );
    const c = t.byKey.get("c")!;
    expect([c.startUs, c.endUs]).toEqual([20, 80]);
    const g = t.byKey.get("g")!;
    expect(g.skewed).toBe(true);
    expect([g.startUs, g.endUs]).toEqual([24.5, 75.5]);
  });

  it("places events on the drawn axis, skew shift included", () => {
    const t = buildTree(
      spans(
        { id: "p", service: "a", start: 0, end: 100 },
        { id: "c", parent: "p", service: "b", start: 200, end: 220, events: [{ at: 205, name: "retry" }] },
      ),
    );
    expect(eventTimesUs(t, t.byKey.get("c")!)).toEqual([{ name: "retry", timeUs: 45 }]);
  });

  it("handles an empty trace", () => {
    const t = buildTree([]);
    expect(t.nodes).toHaveLength(0);
    expect(t.rootMissing).toBe(true);
    expect([t.startUs, t.endUs]).toEqual([0, 0]);
  });

  it("rejects a malformed time with the value in the message", () => {
    const s = spans({ id: "r", start: 0, end: 1 });
    s[0]!.startTimeUnixNano = "12ab";
    expect(() => buildTree(s)).toThrow(/12ab/);
  });
});

describe("visible rows", () => {
  const t = buildTree(
    spans(
      { id: "r", start: 0, end: 100, service: "web" },
      { id: "a", parent: "r", start: 1, end: 50, service: "db" },
      { id: "a1", parent: "a", start: 2, end: 3, service: "db" },
      { id: "a2", parent: "a", start: 4, end: 5, service: "web" },
      { id: "b", parent: "r", start: 60, end: 70, service: "web" },
      { id: "b1", parent: "b", start: 61, end: 62, service: "db" },
      { id: "o", parent: "zz", start: 80, end: 90, service: "db" },
    ),
  );

  it("skips what lies below collapsed rows", () => {
    expect(keys(visibleRows(t, expandAll()))).toEqual(["r", "a", "a1", "a2", "b", "b1", "o"]);
    expect(keys(visibleRows(t, new Set(["a"])))).toEqual(["r", "a", "b", "b1", "o"]);
    expect(keys(visibleRows(t, collapseAll(t)))).toEqual(["r", "o"]);
    expect(keys(visibleRows(t, collapseToDepth(t, 1)))).toEqual(["r", "a", "b", "o"]);
    expect(collapseToDepth(t, 1)).toEqual(new Set(["a", "b"]));
  });

  it("toggles and reveals", () => {
    let c = collapseAll(t);
    c = revealNode(t, c, "a2");
    expect(keys(visibleRows(t, c))).toEqual(["r", "a", "a1", "a2", "b", "o"]);
    c = toggleCollapsed(c, "b");
    expect(keys(visibleRows(t, c))).toEqual(["r", "a", "a1", "a2", "b", "b1", "o"]);
    c = toggleCollapsed(c, "r");
    expect(keys(visibleRows(t, c))).toEqual(["r", "o"]);
  });

  it("filters by service", () => {
    expect(keys(visibleRows(t, expandAll(), { services: new Set(["db"]) }))).toEqual(["a", "a1", "b1", "o"]);
    expect(keys(visibleRows(t, new Set(["a"]), { services: new Set(["db"]) }))).toEqual(["a", "b1", "o"]);
  });
});

describe("large traces", () => {
  it("builds a 50,000-deep chain without recursion", LARGE, () => {
    const n = 50_000;
    const t0 = performance.now();
    const t = buildTree(deepChain(n));
    const rows = visibleRows(t, expandAll());
    const elapsed = performance.now() - t0;
    expect(t.maxDepth).toBe(n - 1);
    expect(t.nodes[0]!.descendants).toBe(n - 1);
    expect(t.nodes[n - 1]!.depth).toBe(n - 1);
    expect(rows).toHaveLength(n);
    expect(visibleRows(t, new Set([t.nodes[10]!.key]))).toHaveLength(11);
    expect(collapseToDepth(t, 3).size).toBe(n - 4);
    expect(elapsed).toBeLessThan(5_000);
  });

  it("builds a 50,000-wide trace with children in start order", LARGE, () => {
    const n = 50_000;
    const t = buildTree(wideTrace(n));
    expect(t.nodes).toHaveLength(n);
    expect(t.root!.children).toHaveLength(n - 1);
    const starts = t.root!.children.map((c) => c.startUs);
    expect(starts.every((s, i) => i === 0 || s > starts[i - 1]!)).toBe(true);
    expect(t.services).toHaveLength(8);
  });

  it("cuts a 50,000-long parent loop", LARGE, () => {
    const n = 50_000;
    const s = deepChain(n);
    s[0]!.parentSpanId = s[n - 1]!.spanId;
    const t = buildTree(s);
    expect(t.nodes).toHaveLength(n);
    expect(t.roots).toHaveLength(1);
    expect(t.roots[0]!.key).toBe(s[0]!.spanId);
    expect(t.roots[0]!.cycle).toBe(true);
    expect(t.rootMissing).toBe(true);
  });
});
