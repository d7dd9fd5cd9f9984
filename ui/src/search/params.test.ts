import { describe, expect, it } from "vitest";
import {
  apiQuery,
  attributeFilters,
  CUSTOM_RANGE,
  formFromQuery,
  formWindow,
  lookbackMs,
  normalizeTraceId,
  parseTimeParam,
  queryFromForm,
  searchKey,
  zoomQuery,
} from "./params";

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

describe("search form <-> page URL", () => {
  it("reads every field and the attribute rows from the URL", () => {
    const q = new URLSearchParams(
      "service=checkout&operation=GET&status=error&minDuration=100ms&maxDuration=2s" +
        "&minTraceDuration=1s&maxTraceDuration=5s&attr.http.status_code=500&attr.user=ann&lookback=6h&limit=20&sort=-duration",
    );
    const form = formFromQuery(q);
    expect(form.service).toBe("checkout");
    expect(form.minDuration).toBe("100ms");
    expect(form.maxTraceDuration).toBe("5s");
    expect(form.attrs).toEqual([
      { key: "http.status_code", value: "500" },
      { key: "user", value: "ann" },
    ]);
    expect(form.lookback).toBe("6h");
    expect(form.start).toBeNull();
    expect(form.limit).toBe("20");
  });

  it("writes back the same query it read (round trip), keeping the sort", () => {
    const text =
      "service=checkout&operation=GET&status=error&minDuration=100ms&limit=20&attr.http.status_code=500&attr.user=ann&lookback=6h&sort=-duration";
    const q = new URLSearchParams(text);
    expect(queryFromForm(formFromQuery(q), q).toString()).toBe(text);
  });

  it("leaves out empty fields, keyless rows and the default lookback", () => {
    const form = { ...formFromQuery(new URLSearchParams()), operation: "  ", attrs: [{ key: "", value: "x" }, { key: " k ", value: " v " }] };
    expect(queryFromForm(form).toString()).toBe("attr.k=v");
  });

  it("turns an absolute range into RFC 3339 start and end and back", () => {
    const start = Date.UTC(2026, 11, 2, 10, 0, 0, 250);
    const end = Date.UTC(2026, 11, 2, 11, 0, 0);
    const form = { ...formFromQuery(new URLSearchParams("lookback=6h")), lookback: CUSTOM_RANGE, start, end };
    const q = queryFromForm(form);
    expect(q.get("start")).toBe("2026-12-02T10:00:00.250Z");
    expect(q.get("end")).toBe("2026-12-02T11:00:00.000Z");
    expect(q.has("lookback")).toBe(false);
    const back = formFromQuery(q);
    expect(back.lookback).toBe(CUSTOM_RANGE);
    expect(back.start).toBe(start);
    expect(back.end).toBe(end);
  });

  it("ignores the sort when deciding whether the search changed", () => {
    expect(searchKey(new URLSearchParams("service=a&sort=-duration"))).toBe(searchKey(new URLSearchParams("service=a")));
    expect(searchKey(new URLSearchParams("service=a"))).not.toBe(searchKey(new URLSearchParams("service=b")));
  });

  it("tells the suggestion endpoints the window the form would search", () => {
    const now = Date.UTC(2026, 11, 2, 12);
    expect(formWindow(formFromQuery(new URLSearchParams("lookback=15m")), now)).toEqual({ start: now - 900_000, end: null });
    expect(formWindow(formFromQuery(new URLSearchParams()), now)).toEqual({ start: now - 3_600_000, end: null });
    expect(formWindow(formFromQuery(new URLSearchParams("start=1000&end=2000")), now)).toEqual({ start: 1_000_000, end: 2_000_000 });
    expect(formWindow(formFromQuery(new URLSearchParams("end=1700000000000")), now)).toEqual({
      start: 1_700_000_000_000 - 3_600_000,
      end: 1_700_000_000_000,
    });
  });

  it("narrows the window to a dragged range, dropping the preset", () => {
    const q = zoomQuery(new URLSearchParams("service=a&lookback=6h"), Date.UTC(2026, 0, 1, 0, 0, 2), Date.UTC(2026, 0, 1, 0, 0, 1));
    expect(q.get("start")).toBe("2026-01-01T00:00:01.000Z");
    expect(q.get("end")).toBe("2026-01-01T00:00:02.000Z");
    expect(q.has("lookback")).toBe(false);
    expect(q.get("service")).toBe("a");
  });
});

describe("times and ids", () => {
  it("gives an end-only link a window of the lookback before that end", () => {
    const api = apiQuery(new URLSearchParams("end=1700000000000&lookback=15m"), Date.UTC(2026, 11, 2));
    expect(api.get("start")).toBe(String(1_700_000_000_000 - 15 * 60_000));
  });

  it("accepts 32 or 16 hex digits and explains anything else", () => {
    expect(normalizeTraceId(" 4BF92F3577B34DA6A3CE929D0E0E4736 ")).toEqual({ id: "4bf92f3577b34da6a3ce929d0e0e4736" });
    expect(normalizeTraceId("a3ce929d0e0e4736")).toEqual({ id: "0000000000000000a3ce929d0e0e4736" });
    expect(normalizeTraceId("xyz")).toHaveProperty("error", expect.stringContaining("hexadecimal"));
    expect(normalizeTraceId("abc")).toHaveProperty("error", expect.stringContaining("this has 3"));
    expect(normalizeTraceId("0".repeat(32))).toHaveProperty("error", expect.stringContaining("all-zero"));
    expect(normalizeTraceId("")).toHaveProperty("error");
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
