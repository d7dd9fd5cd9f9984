import { describe, expect, it } from "vitest";
import { formatDuration, formatTime, fromInputValue, nsToMs, toInputValue } from "./format";

describe("nanosecond strings", () => {
  it("keep microseconds of a 19-digit timestamp", () => {
    expect(nsToMs("1764676141123456789")).toBeCloseTo(1764676141123.456789, 3);
    expect(nsToMs("999")).toBeCloseTo(0.000999, 9);
  });
});

describe("formatDuration", () => {
  it("picks the unit a person reads", () => {
    expect(formatDuration(0.85)).toBe("850µs");
    expect(formatDuration(1.5)).toBe("1.5ms");
    expect(formatDuration(12.34)).toBe("12.3ms");
    expect(formatDuration(1250)).toBe("1.25s");
    expect(formatDuration(123_000)).toBe("2m 3s");
    expect(formatDuration(3_720_000)).toBe("1h 2m");
    expect(formatDuration(-2)).toBe("-2ms");
  });
});

describe("formatTime", () => {
  it("writes UTC with a Z", () => {
    expect(formatTime(Date.UTC(2026, 11, 2, 12, 9, 1, 123), "utc")).toBe("2026-12-02 12:09:01.123Z");
  });
  it("round-trips the datetime-local input in UTC", () => {
    const ms = Date.UTC(2026, 0, 5, 3, 4, 5, 6);
    expect(fromInputValue(toInputValue(ms, "utc"), "utc")).toBe(ms);
    expect(fromInputValue("", "utc")).toBeNull();
  });
});
