import { describe, expect, it } from "vitest";
import { PauseBuffer, prependCapped } from "./buffer";

describe("prependCapped", () => {
  it("puts the newest on top and keeps at most cap rows", () => {
    expect(prependCapped([3, 2, 1], [4, 5], 10)).toEqual([5, 4, 3, 2, 1]);
    expect(prependCapped([3, 2, 1], [4, 5], 4)).toEqual([5, 4, 3, 2]);
    expect(prependCapped([3, 2, 1], [4, 5, 6, 7, 8, 9], 3)).toEqual([9, 8, 7]);
    expect(prependCapped([], [], 3)).toEqual([]);
  });
});

describe("PauseBuffer", () => {
  it("counts every arrival and keeps only the newest cap", () => {
    const buffer = new PauseBuffer<number>(5);
    for (let i = 1; i <= 23; i++) buffer.push([i]);
    buffer.push([24, 25, 26]);
    expect(buffer.received).toBe(26);
    expect(buffer.dropped).toBe(21);
    expect(buffer.take()).toEqual([22, 23, 24, 25, 26]);
    expect(buffer.received).toBe(0);
    expect(buffer.take()).toEqual([]);
  });

  it("holds memory near its cap however much arrives", () => {
    const buffer = new PauseBuffer<number>(100);
    for (let i = 0; i < 100_000; i++) buffer.push([i]);
    expect((buffer as unknown as { items: number[] }).items.length).toBeLessThanOrEqual(200);
    expect(buffer.take()).toHaveLength(100);
  });
});
