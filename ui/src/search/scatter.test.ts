import { describe, expect, it } from "vitest";
import type { TraceSummary } from "../types";
import { nearestDot, prepareScatter, xRange, yRange } from "./scatter";

function trace(id: string, startNs: string, durationMs: number, errorCount = 0): TraceSummary {
  return {
    traceId: id,
    rootService: "svc",
    rootName: "op",
    rootSpanMissing: false,
    startTimeUnixNano: startNs,
    durationMs,
    spanCount: 1,
    errorCount,
    services: ["svc"],
  };
}

describe("scatter data", () => {
  it("orders dots by start (newest-first input) and keeps each dot's trace and error flag", () => {
    const data = prepareScatter([
      trace("new", "1764676802000000000", 12),
      trace("mid", "1764676801000500000", 250, 3),
      trace("old", "1764676800000000000", 0.5),
    ]);
    expect(data.xs).toEqual([1764676800000, 1764676801000.5, 1764676802000]);
    expect(data.ys).toEqual([0.5, 250, 12]);
    expect(data.errors).toEqual([false, true, false]);
    expect(data.traces.map((t) => t.traceId)).toEqual(["old", "mid", "new"]);
  });

  it("pads the ranges so edge dots are not cut, and copes with one dot or none", () => {
    expect(xRange([1000, 2000])).toEqual([980, 2020]);
    expect(xRange([5000])).toEqual([4000, 6000]);
    expect(xRange([])).toEqual([0, 1]);
    expect(yRange([10, 50])).toEqual([0, 54]);
    expect(yRange([])).toEqual([0, 1]);
  });

  it("hit-tests the nearest dot within the radius, the top one on a tie", () => {
    const xs = [10, 20, 20];
    const ys = [10, 10, 10];
    expect(nearestDot(xs, ys, 11, 11, 5)).toBe(0);
    expect(nearestDot(xs, ys, 19, 10, 5)).toBe(2);
    expect(nearestDot(xs, ys, 100, 100, 5)).toBeNull();
  });
});
