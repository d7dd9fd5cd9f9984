import { describe, expect, it } from "vitest";
import { liveFilters, parseFeedMessage, subscribeMessage, tallyTraces, type LiveRow, type SpanRow } from "./feed";

const span = (traceId: string, spanId: string, parent: string, name: string, error = false) => ({
  traceId,
  spanId,
  parentSpanId: parent,
  service: "checkout",
  name,
  startTimeUnixNano: "1764676800123456789",
  durationMs: 12.5,
  status: { code: error ? "STATUS_CODE_ERROR" : "STATUS_CODE_UNSET", message: "" },
});

describe("feed messages", () => {
  it("reads spans with their details, in commit order", () => {
    const text = JSON.stringify({ type: "spanAdded", details: { newSpans: [["t1", "s1"], ["t1", "s2"]], spans: [span("t1", "s1", "", "GET /"), span("t1", "s2", "s1", "db", true)] } });
    const event = parseFeedMessage(text);
    if (event.type !== "rows") throw new Error(event.type);
    expect(event.rows.map((r) => (r as SpanRow).name)).toEqual(["GET /", "db"]);
    const [a, b] = event.rows as SpanRow[];
    expect(a?.timeMs).toBeCloseTo(1764676800123.4568, 3);
    expect(a?.error).toBe(false);
    expect(b?.error).toBe(true);
    expect(b?.durationMs).toBe(12.5);
    expect(a?.id).not.toBe(b?.id);
  });

  it("makes rows from span ids alone when that is all a message carries", () => {
    const event = parseFeedMessage(JSON.stringify({ type: "spanAdded", details: { newSpans: [["t9", "s9"]] } }));
    if (event.type !== "rows") throw new Error(event.type);
    expect(event.rows[0]).toMatchObject({ kind: "span", traceId: "t9", spanId: "s9", name: "" });
  });

  it("reads logs: any body as text, the observed time when the time is unset", () => {
    const log = { timeUnixNano: "0", observedTimeUnixNano: "2000000000", service: "api", severityNumber: 17, severityText: "ERROR", body: { a: [1, true] }, traceId: "", spanId: "" };
    const event = parseFeedMessage(JSON.stringify({ type: "logAdded", details: { newLogs: [log, { ...log, body: "plain" }] } }));
    if (event.type !== "rows") throw new Error(event.type);
    expect(event.rows.map((r) => (r.kind === "log" ? r.body : ""))).toEqual(['{"a":[1,true]}', "plain"]);
    expect(event.rows[0]?.timeMs).toBe(2000);
  });

  it("reports subscribe answers, refusals and garbage", () => {
    expect(parseFeedMessage('{"type":"subscribed","details":{"signals":["logs"],"service":"api"}}')).toEqual({ type: "subscribed", signals: ["logs"], service: "api" });
    expect(parseFeedMessage('{"type":"error","details":{"message":"bad"}}')).toEqual({ type: "error", message: "bad" });
    expect(parseFeedMessage("{nope").type).toBe("error");
    expect(parseFeedMessage('{"type":"metricAdded","details":{}}').type).toBe("other");
  });
});

describe("trace tally", () => {
  const rows = (specs: [string, string, string, string, boolean?][]): LiveRow[] => {
    const event = parseFeedMessage(JSON.stringify({ type: "spanAdded", details: { spans: specs.map(([t, s, p, n, e]) => span(t, s, p, n, e)) } }));
    if (event.type !== "rows") throw new Error(event.type);
    return event.rows;
  };

  it("counts spans and errors per trace, most recently active first, named by the root", () => {
    let list = tallyTraces([], rows([["t1", "a", "x", "child"], ["t2", "b", "", "root2"]]), 1, 10);
    expect(list.map((t) => t.traceId)).toEqual(["t2", "t1"]);
    expect(list[1]).toMatchObject({ name: "child", rootSeen: false, spans: 1 });
    list = tallyTraces(list, rows([["t1", "r", "", "GET /cart"], ["t1", "c", "r", "later", true]]), 2, 10);
    expect(list.map((t) => t.traceId)).toEqual(["t1", "t2"]);
    expect(list[0]).toMatchObject({ name: "GET /cart", rootSeen: true, spans: 3, errors: 1, lastSeen: 2 });
  });

  it("keeps at most cap traces", () => {
    const many = rows(Array.from({ length: 30 }, (_, i): [string, string, string, string] => [`t${i}`, "s", "", "n"]));
    const list = tallyTraces([], many, 1, 5);
    expect(list.map((t) => t.traceId)).toEqual(["t29", "t28", "t27", "t26", "t25"]);
  });
});

describe("live URL", () => {
  it("reads signals and service, defaulting to both signals", () => {
    expect(liveFilters(new URLSearchParams(""))).toEqual({ signals: ["traces", "logs"], service: "" });
    expect(liveFilters(new URLSearchParams("signal=logs&service=api"))).toEqual({ signals: ["logs"], service: "api" });
    expect(liveFilters(new URLSearchParams("signal=bogus"))).toEqual({ signals: ["traces", "logs"], service: "" });
    expect(subscribeMessage({ signals: ["logs"], service: "" })).toBe('{"type":"subscribe","signals":["logs"],"service":null}');
  });
});
