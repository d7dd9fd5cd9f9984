import { describe, expect, it } from "vitest";
import { dragRange, stackVolume, type LogVolume } from "./volume";

const volume: LogVolume = {
  stepMs: 60_000,
  startUnixMs: 0,
  endUnixMs: 180_000,
  buckets: [
    { timeUnixMs: 0, counts: { TRACE: 0, DEBUG: 0, INFO: 3, WARN: 0, ERROR: 1, FATAL: 0, UNSPECIFIED: 0 }, total: 4 },
    { timeUnixMs: 60_000, counts: { TRACE: 0, DEBUG: 0, INFO: 0, WARN: 0, ERROR: 0, FATAL: 0, UNSPECIFIED: 0 }, total: 0 },
    { timeUnixMs: 120_000, counts: { TRACE: 0, DEBUG: 2, INFO: 1, WARN: 0, ERROR: 0, FATAL: 0, UNSPECIFIED: 5 }, total: 8 },
  ],
  total: 12,
};

describe("stacked volume", () => {
  it("stacks present classes as running sums, drawn top first", () => {
    const s = stackVolume(volume);
    expect(s.x).toEqual([0, 60_000, 120_000]);
    expect(s.classes).toEqual(["UNSPECIFIED", "ERROR", "INFO", "DEBUG"]);
    expect(s.stacked).toEqual([
      [4, 0, 8],
      [4, 0, 3],
      [3, 0, 3],
      [0, 0, 2],
    ]);
    expect(s.own).toEqual([
      [0, 0, 5],
      [1, 0, 0],
      [3, 0, 1],
      [0, 0, 2],
    ]);
    // The top of the stack is each bucket's total.
    expect(s.stacked[0]).toEqual(volume.buckets.map((b) => b.total));
    expect(s.totals).toEqual([
      ["DEBUG", 2],
      ["INFO", 4],
      ["ERROR", 1],
      ["UNSPECIFIED", 5],
    ]);
  });

  it("handles an empty window and missing classes", () => {
    const s = stackVolume({ ...volume, buckets: [{ timeUnixMs: 0, counts: { WARN: 2 }, total: 2 }], total: 2 });
    expect(s.classes).toEqual(["WARN"]);
    expect(s.stacked).toEqual([[2]]);
    expect(stackVolume({ ...volume, buckets: [], total: 0 }).classes).toEqual([]);
  });
});

describe("drag range", () => {
  it("widens to the buckets touched and ignores clicks", () => {
    expect(dragRange(61_000, 119_000, 60_000, 4, 50)).toEqual({ start: 60_000, end: 120_000 });
    expect(dragRange(61_000, 121_000, 60_000, 4, 50)).toEqual({ start: 60_000, end: 180_000 });
    expect(dragRange(61_000, 62_000, 60_000, 4, 2)).toBeNull();
    expect(dragRange(5, 5, 60_000, 4, 40)).toBeNull();
  });
});
