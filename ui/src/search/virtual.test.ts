import { describe, expect, it } from "vitest";
import { scrollToShow, visibleRange } from "./virtual";

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

describe("scrolling a row into view", () => {
  it("leaves a row already in view where it is", () => {
    // Rows 0-9 of 28px under a 30px header in a 310px view at the top.
    expect(scrollToShow(5, 28, 0, 310, 30)).toBe(0);
    expect(scrollToShow(9, 28, 0, 310, 30)).toBe(0);
  });

  it("scrolls down just enough for a row below, up to a row above (past the header)", () => {
    expect(scrollToShow(10, 28, 0, 310, 30)).toBe(28);
    expect(scrollToShow(500, 28, 0, 310, 30)).toBe(501 * 28 + 30 - 310);
    expect(scrollToShow(3, 28, 28 * 10, 310, 30)).toBe(3 * 28);
  });
});
