import { describe, expect, it } from "vitest";
import { bodyText, formToQuery, recordTimeMs, logsApiQuery, volumeApiQuery, withRange, type LogForm } from "./params";
import { severityClass } from "./severity";

const blank: LogForm = { service: "", severity: "", q: "", traceId: "", spanId: "", limit: "100", lookback: "1h", start: null, end: null, attributes: [] };

describe("log search URL", () => {
  const now = Date.UTC(2026, 11, 2, 12, 0, 0);

  it("passes every /api/logs parameter and turns lookback into a window", () => {
    const q = new URLSearchParams("service=api&severity=WARN&q=boom&traceId=ab&spanId=cd&limit=20&attr.user=7&lookback=15m&cursor=x&bogus=1");
    const api = logsApiQuery(q, now);
    expect(Object.fromEntries(api)).toEqual({
      service: "api",
      severity: "WARN",
      q: "boom",
      traceId: "ab",
      spanId: "cd",
      limit: "20",
      "attr.user": "7",
      start: String(now - 15 * 60_000),
      end: String(now),
    });
    const volume = volumeApiQuery(q, now);
    expect(volume.has("limit")).toBe(false);
    expect(volume.get("attr.user")).toBe("7");
  });

  it("writes the form back: empty fields out, ids lowercased, absolute range when no preset", () => {
    expect(formToQuery(blank).toString()).toBe("lookback=1h");
    const full = formToQuery({ ...blank, service: "api", severity: "ERROR", q: " boom ", traceId: " ABC ", limit: "50", lookback: "", start: 1000.4, end: 2000.2, attributes: [["user", "7"], [" ", "x"], ["env", ""]] });
    expect(full.toString()).toBe("service=api&severity=ERROR&q=boom&traceId=abc&limit=50&start=1000&end=2001&attr.user=7&attr.env=");
  });

  it("replaces a preset and a cursor with a dragged range", () => {
    const next = withRange(new URLSearchParams("service=api&lookback=1h&cursor=c"), 10.5, 20.5);
    expect(next.toString()).toBe("service=api&start=10&end=21");
  });
});

describe("log values", () => {
  it("shows a body of any type", () => {
    expect(bodyText("text")).toBe("text");
    expect(bodyText({ k: [1, "a"] })).toBe('{"k":[1,"a"]}');
    expect(bodyText(42)).toBe("42");
    expect(bodyText(null)).toBe("");
  });

  it("dates a record by its time, else by when it was observed", () => {
    expect(recordTimeMs("5000000", "9000000")).toBe(5);
    expect(recordTimeMs("0", "9000000")).toBe(9);
    expect(recordTimeMs("", "9000000")).toBe(9);
    expect(recordTimeMs("0", "0")).toBe(0);
  });

  it("maps severity numbers to classes", () => {
    expect([0, 1, 4, 5, 9, 12, 13, 17, 21, 24, 25].map(severityClass)).toEqual(["UNSPECIFIED", "TRACE", "TRACE", "DEBUG", "INFO", "INFO", "WARN", "ERROR", "FATAL", "FATAL", "UNSPECIFIED"]);
  });
});
