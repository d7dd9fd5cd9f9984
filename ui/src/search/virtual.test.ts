import { describe, expect, it } from "vitest";
import { visibleRange } from "./virtual";

describe("rows in view", () => {
  it("covers the view plus the overscan, clamped to the list", () => {
    expect(visibleRange(1000, 28, 0, 560, 20)).toEqual([0, 40]);
    expect(visibleRange(1000, 28, 2800, 560, 20)).toEqual([80, 140]);
    expect(visibleRange(1000, 28, 28_000, 560, 20)).toEqual([960, 1000]);
  });

  it("shows a short list whole and an empty one as nothing", () => {
    expect(visibleRange(12, 28, 0, 800, 20)).toEqual([0, 12]);
    expect(visibleRange(0, 28, 0, 800, 20)).toEqual([0, 0]);
    expect(visibleRange(5, 28, 5000, 800, 20)).toEqual([0, 5]);
  });
});
