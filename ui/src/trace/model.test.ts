import { describe, expect, it } from "vitest";
import {
  addUs,
  attrText,
  compareNano,
  diffUs,
  formatNano,
  isErrorSpan,
  nanoToEpochMs,
  parseNano,
  traceStart,
} from "./model";
import { span } from "./testspans";

describe("nanosecond times", () => {
  it("splits a 19-digit string into exact seconds and nanoseconds", () => {
    expect(parseNano("1700000000123456789")).toEqual({ sec: 1_700_000_000, nano: 123_456_789 });
    expect(parseNano("999")).toEqual({ sec: 0, nano: 999 });
    expect(parseNano("0")).toEqual({ sec: 0, nano: 0 });
    expect(parseNano(1_500_000_000)).toEqual({ sec: 1, nano: 500_000_000 });
  });

  it("keeps nanosecond differences that a double of the whole value would lose", () => {
    // As one double these two are the same number (2^53 ≈ 9.007e15 < 1.7e18).
    const x = "1700000000000000001";
    const y = "1700000000000000002";
    expect(Number(x)).toBe(Number(y));
    expect(diffUs(parseNano(y), parseNano(x))).toBeCloseTo(0.001, 12);
    expect(compareNano(parseNano(x), parseNano(y))).toBeLessThan(0);
    expect(diffUs(parseNano("1700000005000000000"), parseNano("1700000000999999000"))).toBe(4_000_001);
  });

  it("adds microseconds and formats back", () => {
    const t = parseNano("1700000000999999000");
    expect(formatNano(addUs(t, 2))).toBe("1700000001000001000");
    expect(formatNano(addUs(t, -1_000_000))).toBe("1699999999999999000");
    expect(formatNano(parseNano("42"))).toBe("42");
    expect(nanoToEpochMs(t)).toBe(1_700_000_000_999);
  });

  it("rejects what is not a decimal string", () => {
    expect(() => parseNano("")).toThrow(/not a unix nanosecond time/);
    expect(() => parseNano("-5")).toThrow(/"-5"/);
    expect(() => parseNano("1.5e18")).toThrow();
    expect(() => parseNano(Number.NaN)).toThrow();
  });

  it("finds the earliest start", () => {
    const spans = [span({ id: "a", start: 5, end: 9 }), span({ id: "b", start: 2, end: 3 })];
    expect(traceStart(spans)).toEqual(parseNano(spans[1]!.startTimeUnixNano));
    expect(traceStart([])).toBeNull();
  });
});

describe("span helpers", () => {
  it("recognises error status by name and by number", () => {
    const s = span({ id: "a", start: 0, end: 1 });
    expect(isErrorSpan(s)).toBe(false);
    s.status.code = "STATUS_CODE_ERROR";
    expect(isErrorSpan(s)).toBe(true);
    s.status.code = 2;
    expect(isErrorSpan(s)).toBe(true);
    s.status.code = "STATUS_CODE_OK";
    expect(isErrorSpan(s)).toBe(false);
  });

  it("prints attribute values as text", () => {
    expect(attrText("x")).toBe("x");
    expect(attrText(42)).toBe("42");
    expect(attrText(false)).toBe("false");
    expect(attrText(null)).toBe("null");
    expect(attrText([1, "a"])).toBe('[1,"a"]');
    expect(attrText({ k: { n: 1 } })).toBe('{"k":{"n":1}}');
  });
});
