import { describe, expect, it } from "vitest";
import { apiQuery, attributeFilters, lookbackMs, parseTimeParam } from "./params";

describe("trace search URL -> API query", () => {
  const now = Date.UTC(2026, 11, 2, 12, 0, 0);

  it("turns the default lookback into an hour-long window ending now", () => {
    const api = apiQuery(new URLSearchParams("service=checkout"), now);
    expect(api.get("service")).toBe("checkout");
    expect(Number(api.get("end")) - Number(api.get("start"))).toBe(3_600_000);
  });

  it("keeps an absolute range as given and ignores lookback", () => {
    const api = apiQuery(new URLSearchParams("start=100&end=200&lookback=2d"), now);
    expect(api.get("start")).toBe("100");
    expect(api.get("end")).toBe("200");
  });

  it("passes attribute filters and drops empty ones and unknown keys", () => {
    const q = new URLSearchParams("attr.http.status_code=500&attr.=x&attr.user=&cursor=zz&bogus=1&lookback=15m");
    const api = apiQuery(q, now);
    expect(api.getAll("attr.http.status_code")).toEqual(["500"]);
    expect(api.has("attr.")).toBe(false);
    expect(api.has("attr.user")).toBe(false);
    expect(api.has("bogus")).toBe(false);
    expect(api.has("cursor")).toBe(false);
    expect(Number(api.get("end")) - Number(api.get("start"))).toBe(15 * 60_000);
    expect(attributeFilters(q)).toEqual([["http.status_code", "500"], ["", "x"], ["user", ""]]);
  });

  it("reads presets and refuses anything else", () => {
    expect(lookbackMs("7d")).toBe(7 * 86_400_000);
    expect(lookbackMs("5m")).toBe(300_000);
    expect(lookbackMs("5x")).toBeNull();
    expect(lookbackMs(null)).toBeNull();
  });
});

describe("query times", () => {
  it("reads every unit the API takes", () => {
    expect(parseTimeParam("1764676800")).toBe(1764676800_000);
    expect(parseTimeParam("1764676800123")).toBe(1764676800123);
    expect(parseTimeParam("1764676800123456")).toBe(1764676800123.456);
    expect(parseTimeParam("1764676800123456789")).toBeCloseTo(1764676800123.4568, 3);
    expect(parseTimeParam("2026-12-02T12:00:00Z")).toBe(Date.UTC(2026, 11, 2, 12));
    expect(parseTimeParam("soon")).toBeNull();
    expect(parseTimeParam(null)).toBeNull();
  });
});
