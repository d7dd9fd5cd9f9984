import { describe, expect, it } from "vitest";
import { clampView, panView, rowWindow, scrollForRow, ticks, viewFromFractions, zoomView } from "./viewport";

const bounds = { startUs: 0, endUs: 1000 };

describe("rowWindow", () => {
  it("covers the visible rows and the overscan, never past the ends", () => {
    expect(rowWindow(0, 240, 24, 50_000, 5)).toEqual({ first: 0, last: 15 });
    expect(rowWindow(24 * 1000, 240, 24, 50_000, 5)).toEqual({ first: 995, last: 1015 });
    expect(rowWindow(24 * 49_995, 240, 24, 50_000, 5)).toEqual({ first: 49_990, last: 50_000 });
    expect(rowWindow(0, 240, 24, 0)).toEqual({ first: 0, last: 0 });
  });
  it("stays small whatever the row count", () => {
    const w = rowWindow(123_456, 800, 24, 1_000_000);
    expect(w.last - w.first).toBeLessThan(60);
  });
  it("clamps a scroll position beyond the end", () => {
    expect(rowWindow(24 * 100, 240, 24, 10, 2)).toEqual({ first: 10, last: 10 });
  });
});

describe("scrollForRow", () => {
  it("moves the least to show a row, or not at all", () => {
    expect(scrollForRow(5, 0, 240, 24)).toBeNull();
    expect(scrollForRow(20, 0, 240, 24)).toBe(21 * 24 - 240);
    expect(scrollForRow(2, 240, 240, 24)).toBe(48);
  });
  it("centres a row on request", () => {
    expect(scrollForRow(100, 0, 240, 24, true)).toBe(2400 - 108);
    expect(scrollForRow(1, 0, 240, 24, true)).toBe(0);
  });
});

describe("time view", () => {
  it("clamps into the trace without shrinking", () => {
    expect(clampView({ startUs: 900, endUs: 1100 }, bounds)).toEqual({ startUs: 800, endUs: 1000 });
    expect(clampView({ startUs: -50, endUs: 50 }, bounds)).toEqual({ startUs: 0, endUs: 100 });
    expect(clampView({ startUs: -50, endUs: 5000 }, bounds)).toEqual(bounds);
    expect(clampView({ startUs: 10, endUs: 10 }, bounds).endUs).toBeGreaterThan(10);
  });
  it("takes minimap fractions in either order", () => {
    expect(viewFromFractions(0.5, 0.25, bounds)).toEqual({ startUs: 250, endUs: 500 });
    expect(viewFromFractions(-1, 2, bounds)).toEqual(bounds);
  });
  it("pans by a fraction of the trace and stops at the edges", () => {
    expect(panView({ startUs: 100, endUs: 200 }, 0.1, bounds)).toEqual({ startUs: 200, endUs: 300 });
    expect(panView({ startUs: 100, endUs: 200 }, -0.5, bounds)).toEqual({ startUs: 0, endUs: 100 });
  });
  it("zooms around an anchor", () => {
    expect(zoomView({ startUs: 0, endUs: 1000 }, 0.5, 0.5, bounds)).toEqual({ startUs: 250, endUs: 750 });
    expect(zoomView({ startUs: 250, endUs: 750 }, 4, 0.5, bounds)).toEqual(bounds);
  });
});

describe("ticks", () => {
  it("puts round steps across the view, labelled from the trace start", () => {
    const t = ticks({ startUs: 0, endUs: 1000 }, 0, 5);
    expect(t.map((x) => x.us)).toEqual([0, 200, 400, 600, 800, 1000]);
    expect(t[1]!.label).toBe("200µs");
    expect(t[5]!.at).toBe(1);
  });
  it("starts at the first round value inside a zoomed view", () => {
    const t = ticks({ startUs: 1234, endUs: 1734 }, 0, 5);
    expect(t[0]!.us).toBe(1300);
    expect(t.every((x) => x.at >= 0 && x.at <= 1)).toBe(true);
  });
  it("is empty for an empty view", () => {
    expect(ticks({ startUs: 5, endUs: 5 }, 0)).toEqual([]);
  });
});
