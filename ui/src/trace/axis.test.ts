import { describe, expect, it } from "vitest";
import {
  FULL_VIEW,
  clampViewport,
  niceStep,
  panViewport,
  tickLabel,
  ticks,
  timeScale,
  viewportFromSelection,
  viewportUs,
  zoomViewport,
} from "./axis";

describe("ticks", () => {
  it("chooses 1-2-5 steps", () => {
    expect(niceStep(100, 10)).toBe(10);
    expect(niceStep(100, 6)).toBe(20);
    expect(niceStep(100, 3)).toBe(50);
    expect(niceStep(1000, 1)).toBe(1000);
    expect(niceStep(0.3, 3)).toBeCloseTo(0.1, 12);
    expect(niceStep(7_300_000, 5)).toBe(2_000_000);
    expect(niceStep(0, 5)).toBe(1);
  });

  it("places ticks on step multiples inside the window with distinct labels", () => {
    const t = ticks(0, 2600, 6);
    expect(t.map((x) => x.us)).toEqual([0, 500, 1000, 1500, 2000, 2500]);
    expect(t.map((x) => x.label)).toEqual(["0", "500µs", "1ms", "1.5ms", "2ms", "2.5ms"]);
  });

  it("starts at the first multiple after a zoomed-in start", () => {
    const t = ticks(1_234_567, 1_234_600, 4);
    expect(t.map((x) => x.us)).toEqual([1_234_570, 1_234_580, 1_234_590, 1_234_600]);
    expect(t.map((x) => x.label)).toEqual(["1.23457s", "1.23458s", "1.23459s", "1.2346s"]);
  });

  it("handles sub-microsecond and multi-second windows", () => {
    expect(ticks(0, 0.3, 3).map((x) => x.us)).toEqual([0, 0.1, 0.2, 0.3]);
    expect(ticks(0, 0.3, 3).map((x) => x.label)).toEqual(["0", "0.1µs", "0.2µs", "0.3µs"]);
    expect(ticks(0, 12e6, 4).map((x) => x.label)).toEqual(["0", "5s", "10s"]);
    expect(ticks(5, 5, 4)).toEqual([{ us: 5, label: "5µs" }]);
  });

  it("labels in the unit of the value with the decimals of the step", () => {
    expect(tickLabel(456, 1)).toBe("456µs");
    expect(tickLabel(12_300, 100)).toBe("12.3ms");
    expect(tickLabel(12_000, 100)).toBe("12ms");
    expect(tickLabel(1_250_000, 50_000)).toBe("1.25s");
    expect(tickLabel(-1500, 500)).toBe("-1.5ms");
    expect(tickLabel(0, 500)).toBe("0");
  });
});

describe("viewport", () => {
  it("clamps into the trace with a minimum width", () => {
    expect(clampViewport({ from: -0.2, to: 0.3 })).toEqual({ from: 0, to: 0.5 });
    expect(clampViewport({ from: 0.9, to: 1.3 })).toEqual({ from: 0.6, to: 1 });
    expect(clampViewport({ from: 0.7, to: 0.2 })).toEqual({ from: 0.2, to: 0.7 });
    expect(clampViewport({ from: -1, to: 2 })).toEqual(FULL_VIEW);
    const tiny = clampViewport({ from: 0.5, to: 0.5 }, 0.1);
    expect(tiny.from).toBeCloseTo(0.45, 12);
    expect(tiny.to).toBeCloseTo(0.55, 12);
    expect(clampViewport({ from: 1, to: 1 }, 0.1)).toEqual({ from: 0.9, to: 1 });
  });

  it("zooms around the anchor, which stays in place", () => {
    const v = zoomViewport(FULL_VIEW, 0.5, 0.25);
    expect(v).toEqual({ from: 0.125, to: 0.625 });
    // The anchor's trace position (0.25) is still a quarter into the window.
    expect(v.from + 0.25 * (v.to - v.from)).toBe(0.25);
    expect(zoomViewport(v, 4)).toEqual(FULL_VIEW);
    const deep = zoomViewport(FULL_VIEW, 1e-9, 0.5, 0.01);
    expect(deep.to - deep.from).toBeCloseTo(0.01, 12);
    // Zooming out near an edge slides the window back inside.
    const edge = zoomViewport({ from: 0.8, to: 1 }, 2, 1);
    expect(edge.from).toBeCloseTo(0.6, 12);
    expect(edge.to).toBe(1);
  });

  it("pans without changing the width or leaving the trace", () => {
    const v = { from: 0.2, to: 0.4 };
    const right = panViewport(v, 0.1);
    expect(right.from).toBeCloseTo(0.3, 12);
    expect(right.to).toBeCloseTo(0.5, 12);
    expect(panViewport(v, 5)).toEqual({ from: 0.8, to: 1 });
    expect(panViewport(v, -5)).toEqual({ from: 0, to: 0.2 });
  });

  it("turns a drag selection into a window", () => {
    expect(viewportFromSelection(0.6, 0.2)).toEqual({ from: 0.2, to: 0.6 });
    const click = viewportFromSelection(0.3, 0.3, 0.02);
    expect(click.to - click.from).toBeCloseTo(0.02, 12);
  });

  it("converts between fractions, microseconds and pixels", () => {
    expect(viewportUs({ from: 0.25, to: 0.5 }, 1000, 5000)).toEqual({ startUs: 2000, endUs: 3000 });
    const s = timeScale(2000, 3000, 500);
    expect(s.toPx(2000)).toBe(0);
    expect(s.toPx(2500)).toBe(250);
    expect(s.toPx(3200)).toBe(600);
    expect(s.toUs(250)).toBe(2500);
    expect(s.toUs(s.toPx(2718))).toBeCloseTo(2718, 9);
    const flat = timeScale(10, 10, 500);
    expect(flat.toPx(10)).toBe(0);
    expect(flat.toUs(300)).toBe(10);
  });
});
