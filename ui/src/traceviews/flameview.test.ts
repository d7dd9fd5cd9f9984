import { describe, expect, it } from "vitest";
import { flameLayout } from "../trace/flame";
import { buildTree } from "../trace/tree";
import { deepChain, spans, wideTrace } from "../trace/testspans";
import { WHOLE, breadcrumb, fitLabel, neighbour, placeRows, spanAt, zoomTo } from "./flameview";

// r 0..100 with a 10..30 (a1 inside it) and b 50..90; a second root z 100..120 would share row 0.
const tree = buildTree(
  spans(
    { id: "r", service: "web", start: 0, end: 100 },
    { id: "a", parent: "r", service: "db", start: 10, end: 30 },
    { id: "a1", parent: "a", service: "db", start: 10, end: 20 },
    { id: "b", parent: "r", service: "cache", start: 50, end: 90, error: true },
  ),
);
const layout = flameLayout(tree);

describe("spanAt", () => {
  it("finds the span under a point of the whole trace, and nothing in gaps", () => {
    expect(spanAt(layout, tree, WHOLE, 0.5, 0)?.key).toBe("r");
    expect(spanAt(layout, tree, WHOLE, 0.15, 1)?.key).toBe("a");
    expect(spanAt(layout, tree, WHOLE, 0.4, 1)).toBeNull();
    expect(spanAt(layout, tree, WHOLE, 0.7, 1)?.key).toBe("b");
    expect(spanAt(layout, tree, WHOLE, 0.15, 2)?.key).toBe("a1");
    expect(spanAt(layout, tree, WHOLE, 0.25, 2)).toBeNull();
    expect(spanAt(layout, tree, WHOLE, 0.5, 3)).toBeNull();
    expect(spanAt(layout, tree, WHOLE, 1, 0)).toBeNull();
    expect(spanAt(layout, tree, WHOLE, 0.5, -1)).toBeNull();
  });

  it("maps the canvas onto the zoomed span and shows its ancestors across the width", () => {
    const win = zoomTo(layout, tree, "a");
    expect(win.focusDepth).toBe(1);
    expect(win.x0).toBeCloseTo(0.1);
    expect(win.x1).toBeCloseTo(0.3);
    // a 10..30 fills the width: a1 (10..20) is the left half.
    expect(spanAt(layout, tree, win, 0.25, 2)?.key).toBe("a1");
    expect(spanAt(layout, tree, win, 0.75, 2)).toBeNull();
    expect(spanAt(layout, tree, win, 0.99, 1)?.key).toBe("a");
    expect(spanAt(layout, tree, win, 0.99, 0)?.key).toBe("r");
  });

  it("leaves out spans outside the zoomed subtree", () => {
    // Two top-level spans side by side: zooming onto the first must not hit the second's child.
    const t = buildTree(
      spans(
        { id: "x", start: 0, end: 50 },
        { id: "y", start: 50, end: 100 },
        { id: "y1", parent: "y", start: 50, end: 100 },
      ),
    );
    const l = flameLayout(t);
    const win = zoomTo(l, t, "x");
    expect(spanAt(l, t, win, 0.999, 1)).toBeNull();
  });
});

describe("zoomTo and breadcrumb", () => {
  it("falls back to the whole trace for unknown or zero-width spans", () => {
    expect(zoomTo(layout, tree, "nope")).toBe(WHOLE);
    expect(zoomTo(layout, tree, null)).toBe(WHOLE);
    const t = buildTree(spans({ id: "r", start: 0, end: 10 }, { id: "i", parent: "r", start: 5, end: 5 }));
    expect(zoomTo(flameLayout(t), t, "i")).toBe(WHOLE);
  });

  it("lists the path from the top to the zoomed span", () => {
    expect(breadcrumb(zoomTo(layout, tree, "a1")).map((n) => n.key)).toEqual(["r", "a", "a1"]);
    expect(breadcrumb(WHOLE)).toEqual([]);
  });
});

describe("placeRows", () => {
  it("places rows in CSS pixels and skips rectangles thinner than the minimum", () => {
    const placed = placeRows(layout, WHOLE, 1000, 0, 10);
    const byKey = Object.fromEntries(placed.map((p) => [p.rect.key, [Math.round(p.left), Math.round(p.width)]]));
    expect(byKey).toEqual({ r: [0, 1000], a: [100, 200], a1: [100, 100], b: [500, 400] });
    expect(placeRows(layout, WHOLE, 1000, 0, 10, 150).map((p) => p.rect.key)).toEqual(["r", "a", "b"]);
  });

  it("draws ancestors of the zoomed span full width and only the rows asked for", () => {
    const win = zoomTo(layout, tree, "a");
    const placed = placeRows(layout, win, 400, 0, 2);
    expect(placed.map((p) => [p.rect.key, p.ancestor, Math.round(p.left), Math.round(p.width)])).toEqual([
      ["r", true, 0, 400],
      ["a", false, 0, 400],
      ["a1", false, 0, 200],
    ]);
    expect(placeRows(layout, win, 400, 2, 2).map((p) => p.rect.key)).toEqual(["a1"]);
  });

  it("only touches the visible part of a wide row", () => {
    const t = buildTree(wideTrace(50_000));
    const l = flameLayout(t);
    const win = zoomTo(l, t, t.root!.key);
    const placed = placeRows(l, { ...win, focus: null, focusDepth: 0, x0: 0.5, x1: 0.5001 }, 1000, 1, 1);
    expect(placed.length).toBeGreaterThan(0);
    expect(placed.length).toBeLessThan(10);
    for (const p of placed) {
      expect(p.left).toBeGreaterThanOrEqual(0);
      expect(p.left + p.width).toBeLessThanOrEqual(1000 + 1e-6);
    }
  });

  it("draws only the visible rows of a 50,000-deep chain", () => {
    const t = buildTree(deepChain(50_000));
    const l = flameLayout(t);
    const placed = placeRows(l, WHOLE, 800, 40_000, 40_030);
    expect(placed.map((p) => p.rect.depth)).toEqual(Array.from({ length: 31 }, (_, i) => 40_000 + i));
  });
});

describe("fitLabel", () => {
  const measure = (s: string): number => s.length * 7;
  it("keeps a label that fits, cuts one that does not, drops one that cannot", () => {
    expect(fitLabel("GET /users", 70, measure)).toBe("GET /users");
    expect(fitLabel("GET /users", 42, measure)).toBe("GET /…");
    expect(fitLabel("GET /users", 10, measure)).toBe("");
  });
});

describe("neighbour", () => {
  it("moves to the parent, the first child and the spans beside in the row", () => {
    expect(neighbour(layout, tree, "a1", "up")).toBe("a");
    expect(neighbour(layout, tree, "r", "up")).toBeNull();
    expect(neighbour(layout, tree, "r", "down")).toBe("a");
    expect(neighbour(layout, tree, "a", "right")).toBe("b");
    expect(neighbour(layout, tree, "b", "left")).toBe("a");
    expect(neighbour(layout, tree, "b", "right")).toBeNull();
  });
});
