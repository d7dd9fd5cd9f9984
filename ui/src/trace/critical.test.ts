import { describe, expect, it } from "vitest";
import { criticalPath } from "./critical";
import { buildTree } from "./tree";
import { LARGE, deepChain, spans, wideTrace } from "./testspans";

const seg = (key: string, startUs: number, endUs: number) => ({ key, spanId: key, startUs, endUs });

function expectContiguous(
  path: { segments: readonly { startUs: number; endUs: number }[] },
  from: number,
  to: number,
): void {
  const segs = path.segments;
  expect(segs[0]!.startUs).toBe(from);
  expect(segs[segs.length - 1]!.endUs).toBe(to);
  for (let i = 1; i < segs.length; i++) expect(segs[i]!.startUs).toBe(segs[i - 1]!.endUs);
}

describe("criticalPath", () => {
  it("follows the last-finishing children, worked out by hand", () => {
    // A 0..100
    // ├ B 10..40
    // ├ C 20..70
    // │ ├ D 25..45
    // │ └ E 50..65
    // ├ F 75..90
    // ├ G 95..120   clipped to 95..100
    // └ H 105..130  starts after A ends: left out
    //
    // From A's end (100): last-finishing child G (ends 100) → G 95..100.
    // Back in A at 95: last child ending before 95 is F (90) → A 90..95, F 75..90.
    // Back in A at 75: C (70) → A 70..75. In C from 70: E (65) → C 65..70, E 50..65.
    // Back in C at 50: D (45) → C 45..50, D 25..45. Back in C at 25: no child ends
    // before 25 → C 20..25. Back in A at 20: B ends at 40, not before 20 → A 0..20.
    const t = buildTree(
      spans(
        { id: "A", start: 0, end: 100 },
        { id: "B", parent: "A", start: 10, end: 40 },
        { id: "C", parent: "A", start: 20, end: 70 },
        { id: "D", parent: "C", start: 25, end: 45 },
        { id: "E", parent: "C", start: 50, end: 65 },
        { id: "F", parent: "A", start: 75, end: 90 },
        { id: "G", parent: "A", start: 95, end: 120 },
        { id: "H", parent: "A", start: 105, end: 130 },
      ),
    );
    const path = criticalPath(t);
    expect(path.segments).toEqual([
      seg("A", 0, 20),
      seg("C", 20, 25),
      seg("D", 25, 45),
      seg("C", 45, 50),
      seg("E", 50, 65),
      seg("C", 65, 70),
      seg("A", 70, 75),
      seg("F", 75, 90),
      seg("A", 90, 95),
      seg("G", 95, 100),
    ]);
    expect([...path.keys].sort()).toEqual(["A", "C", "D", "E", "F", "G"]);
    expect(path.byKey.get("C")).toHaveLength(3);
    expect(path.byKey.has("B")).toBe(false);
  });

  it("gives a childless root the whole path", () => {
    const path = criticalPath(buildTree(spans({ id: "r", start: 0, end: 10 })));
    expect(path.segments).toEqual([seg("r", 0, 10)]);
  });

  it("ignores a child that ends exactly where the returning cut lies", () => {
    // r 0..100; a 10..60; b 60..100. From 100: b → r has nothing after b;
    // back at 60: a ends at 60, not before 60 → r 0..60, a not on the path.
    const t = buildTree(
      spans(
        { id: "r", start: 0, end: 100 },
        { id: "a", parent: "r", start: 10, end: 60 },
        { id: "b", parent: "r", start: 60, end: 100 },
      ),
    );
    expect(criticalPath(t).segments).toEqual([seg("r", 0, 60), seg("b", 60, 100)]);
  });

  it("uses the skew-corrected times", () => {
    // c is reported at 500..520 by a fast clock; centred in p (0..100) it is 40..60.
    const t = buildTree(
      spans(
        { id: "p", service: "a", start: 0, end: 100 },
        { id: "c", parent: "p", service: "b", start: 500, end: 520 },
      ),
    );
    expect(criticalPath(t).segments).toEqual([seg("p", 0, 40), seg("c", 40, 60), seg("p", 60, 100)]);
  });

  it("starts from the earliest top-level span when the root is missing", () => {
    const t = buildTree(
      spans({ id: "x", parent: "gone", start: 0, end: 50 }, { id: "y", parent: "x", start: 10, end: 20 }),
    );
    expect(criticalPath(t).segments).toEqual([seg("x", 0, 10), seg("y", 10, 20), seg("x", 20, 50)]);
    expect(criticalPath(buildTree([])).segments).toEqual([]);
  });

  it("walks a 50,000-deep chain without recursion", LARGE, () => {
    const n = 50_000;
    const t = buildTree(deepChain(n));
    const path = criticalPath(t);
    expect(path.keys.size).toBe(n);
    // Every span but the deepest has a piece before and after its child.
    expect(path.segments).toHaveLength(2 * n - 1);
    expectContiguous(path, 0, 2 * n);
  });

  it("covers a 50,000-wide trace end to end", LARGE, () => {
    const n = 50_000;
    const t = buildTree(wideTrace(n));
    const path = criticalPath(t);
    expectContiguous(path, 0, n * 10 + 10);
    // Children overlap by 5 µs; walking back, each chosen child must end before the
    // previous one started, so every other child is on the path.
    expect(path.keys.size).toBeGreaterThan(n / 2 - 2);
    expect(path.keys.size).toBeLessThan(n / 2 + 2);
  });
});
