import { describe, expect, it } from "vitest";
import { durationLabelAt, rowWindow, scrollForRow } from "./viewport";

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
  it("centres a row it has to bring in on request, and leaves a visible one alone", () => {
    expect(scrollForRow(100, 0, 240, 24, true)).toBe(2400 - 108);
    expect(scrollForRow(1, 2400, 240, 24, true)).toBe(0);
    expect(scrollForRow(1, 0, 240, 24, true)).toBeNull();
  });
});

describe("durationLabelAt", () => {
  it("puts the label after a bar with room to its right", () => {
    expect(durationLabelAt(0.1, 0.5)).toEqual({ side: "after", at: 0.5 });
  });
  it("puts it before a bar reaching the right edge", () => {
    expect(durationLabelAt(0.5, 0.99)).toEqual({ side: "before", at: 0.5 });
  });
  it("puts it inside a bar spanning the lane, at its visible start", () => {
    expect(durationLabelAt(-0.5, 1.5)).toEqual({ side: "inside", at: 0 });
    expect(durationLabelAt(0.05, 1)).toEqual({ side: "inside", at: 0.05 });
  });
});
