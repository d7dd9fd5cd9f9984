import { describe, expect, it } from "vitest";
import { OtlpFileError, anyValue, parseOtlpSpans, splitTraces } from "./otlp";

// An ExportTraceServiceRequest as an SDK's OTLP/JSON exporter writes it: ids in hex, enums
// as integers, int64 as strings, every AnyValue kind, events and links.
const TRACE = "5b8efff798038103d269b633813fc60c";
const OTHER = "0af7651916cd43dd8448eb211c80319c";
const SAMPLE = {
  resourceSpans: [
    {
      resource: {
        attributes: [
          { key: "service.name", value: { stringValue: "checkout" } },
          { key: "host.cores", value: { intValue: "8" } },
        ],
        droppedAttributesCount: 0,
      },
      scopeSpans: [
        {
          scope: {
            name: "io.opentelemetry.http",
            version: "1.2.3",
            attributes: [{ key: "lib.flag", value: { boolValue: true } }],
          },
          spans: [
            {
              traceId: TRACE,
              spanId: "EEE19B7EC3C1B174",
              parentSpanId: "",
              name: "POST /checkout",
              kind: 2,
              startTimeUnixNano: "1544712660000000000",
              endTimeUnixNano: "1544712661000000000",
              traceState: "vendor=1",
              flags: 257,
              attributes: [
                { key: "http.status_code", value: { intValue: "500" } },
                { key: "big", value: { intValue: "9007199254740993" } },
                { key: "negative.big", value: { intValue: "-9223372036854775808" } },
                { key: "exact.limit", value: { intValue: "9007199254740992" } },
                { key: "ratio", value: { doubleValue: 0.25 } },
                { key: "nan", value: { doubleValue: "NaN" } },
                { key: "payload", value: { bytesValue: "3q2+7w==" } },
                {
                  key: "tags",
                  value: { arrayValue: { values: [{ stringValue: "a" }, { intValue: 2 }, { boolValue: false }] } },
                },
                {
                  key: "user",
                  value: {
                    kvlistValue: {
                      values: [
                        { key: "id", value: { intValue: "42" } },
                        { key: "nested", value: { kvlistValue: { values: [{ key: "deep", value: { doubleValue: 1.5 } }] } } },
                      ],
                    },
                  },
                },
                { key: "empty", value: {} },
              ],
              droppedAttributesCount: 2,
              events: [
                {
                  timeUnixNano: "1544712660500000000",
                  name: "exception",
                  attributes: [{ key: "exception.message", value: { stringValue: "boom" } }],
                  droppedAttributesCount: 1,
                },
              ],
              droppedEventsCount: 3,
              links: [
                {
                  traceId: OTHER,
                  spanId: "b7ad6b7169203331",
                  traceState: "",
                  attributes: [{ key: "link.kind", value: { stringValue: "follows" } }],
                  flags: 1,
                },
              ],
              status: { code: 2, message: "payment failed" },
            },
            {
              traceId: TRACE,
              spanId: "1111111111111111",
              parentSpanId: "eee19b7ec3c1b174",
              name: "charge",
              kind: "SPAN_KIND_CLIENT",
              startTimeUnixNano: "1544712660100000000",
              endTimeUnixNano: "1544712660100000250",
              status: {},
            },
          ],
        },
      ],
    },
    {
      resource: { attributes: [{ key: "telemetry.sdk.language", value: { stringValue: "go" } }] },
      scopeSpans: [
        {
          scope: { name: "worker" },
          spans: [
            {
              traceId: OTHER,
              spanId: "b7ad6b7169203331",
              name: "consume",
              kind: 5,
              startTimeUnixNano: 1544712670000000000,
              endTimeUnixNano: 1544712670002000000,
            },
          ],
        },
      ],
    },
  ],
};

describe("parseOtlpSpans", () => {
  const spans = parseOtlpSpans(JSON.stringify(SAMPLE));

  it("reads every span with its resource, scope and service", () => {
    expect(spans.map((s) => s.name)).toEqual(["POST /checkout", "charge", "consume"]);
    const [root, child, worker] = spans;
    expect(root!.service).toBe("checkout");
    expect(root!.resource).toEqual({ "service.name": "checkout", "host.cores": 8 });
    expect(root!.scope).toEqual({ name: "io.opentelemetry.http", version: "1.2.3", attributes: { "lib.flag": true } });
    expect(child!.scope).toBe(root!.scope);
    // No service.name in the resource: the SDK's default name, as the server stores it.
    expect(worker!.service).toBe("unknown_service");
    expect(worker!.scope).toEqual({ name: "worker", version: "", attributes: {} });
  });

  it("keeps ids as lowercase hex and an empty parent for a root", () => {
    const [root, child] = spans;
    expect(root!.traceId).toBe(TRACE);
    expect(root!.spanId).toBe("eee19b7ec3c1b174");
    expect(root!.parentSpanId).toBe("");
    expect(child!.parentSpanId).toBe("eee19b7ec3c1b174");
    expect(root!.links[0]).toEqual({
      traceId: OTHER,
      spanId: "b7ad6b7169203331",
      traceState: "",
      attributes: { "link.kind": "follows" },
      droppedAttributesCount: 0,
      flags: 1,
    });
  });

  it("turns enums into names, whether written as integers or names", () => {
    expect(spans.map((s) => s.kind)).toEqual(["SPAN_KIND_SERVER", "SPAN_KIND_CLIENT", "SPAN_KIND_CONSUMER"]);
    expect(spans[0]!.status).toEqual({ code: "STATUS_CODE_ERROR", message: "payment failed" });
    expect(spans[1]!.status).toEqual({ code: "STATUS_CODE_UNSET", message: "" });
    expect(spans[2]!.status.code).toBe("STATUS_CODE_UNSET");
  });

  it("converts every AnyValue kind to the API's plain JSON value", () => {
    expect(spans[0]!.attributes).toEqual({
      "http.status_code": 500,
      big: "9007199254740993",
      "negative.big": "-9223372036854775808",
      "exact.limit": 9007199254740992,
      ratio: 0.25,
      nan: "NaN",
      payload: "3q2+7w==",
      tags: ["a", 2, false],
      user: { id: 42, nested: { deep: 1.5 } },
      empty: null,
    });
  });

  it("keeps times exact as decimal strings and computes the duration from them", () => {
    const [root, child, worker] = spans;
    expect(root!.startTimeUnixNano).toBe("1544712660000000000");
    expect(root!.durationMs).toBe(1000);
    expect(child!.durationMs).toBeCloseTo(0.00025, 9);
    expect(worker!.startTimeUnixNano).toBe("1544712670000000000");
    // A time written as a JSON number past 2^53 is already rounded by JSON.parse (which is
    // why OTLP/JSON writes strings): close, not exact.
    expect(worker!.durationMs).toBeCloseTo(2, 3);
  });

  it("reads events and the dropped counts", () => {
    const root = spans[0]!;
    expect(root.events).toEqual([
      { timeUnixNano: "1544712660500000000", name: "exception", attributes: { "exception.message": "boom" }, droppedAttributesCount: 1 },
    ]);
    expect(root.droppedAttributesCount).toBe(2);
    expect(root.droppedEventsCount).toBe(3);
    expect(root.droppedLinksCount).toBe(0);
    expect(root.traceState).toBe("vendor=1");
    expect(root.flags).toBe(257);
  });

  it("reads the Collector file exporter's JSON Lines, skipping other signals", () => {
    const lines = [
      JSON.stringify({ resourceSpans: [SAMPLE.resourceSpans[0]] }),
      JSON.stringify({ resourceLogs: [] }),
      "",
      JSON.stringify({ resourceSpans: [SAMPLE.resourceSpans[1]] }),
    ].join("\n");
    expect(parseOtlpSpans(lines).map((s) => s.spanId)).toEqual(spans.map((s) => s.spanId));
  });

  it("reads a JSON array of TracesData objects", () => {
    const text = JSON.stringify([{ resourceSpans: [SAMPLE.resourceSpans[1]] }, { resourceSpans: [SAMPLE.resourceSpans[0]] }]);
    expect(parseOtlpSpans(text).map((s) => s.name)).toEqual(["consume", "POST /checkout", "charge"]);
  });

  it("accepts ids written in base64 by the generic protobuf JSON mapping, and 64-bit trace ids", () => {
    const text = JSON.stringify({
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                { traceId: "W47/95gDgQPSabYzgT/GDA==", spanId: "7uGbfsPBsXQ=", parentSpanId: "AAAAAAAAAAA=", name: "x" },
                { traceId: "D269B633813FC60C", spanId: "eee19b7ec3c1b174", name: "y" },
              ],
            },
          ],
        },
      ],
    });
    const [a, b] = parseOtlpSpans(text);
    expect(a!.traceId).toBe(TRACE);
    expect(a!.spanId).toBe("eee19b7ec3c1b174");
    expect(a!.parentSpanId).toBe("");
    expect(b!.traceId).toBe("0000000000000000d269b633813fc60c");
  });

  it("reads files from collectors that still wrote instrumentationLibrarySpans", () => {
    const text = JSON.stringify({
      resourceSpans: [
        {
          instrumentationLibrarySpans: [
            { instrumentationLibrary: { name: "old", version: "0.1" }, spans: [{ traceId: TRACE, spanId: "1111111111111111", name: "legacy" }] },
          ],
        },
      ],
    });
    const [s] = parseOtlpSpans(text);
    expect(s!.scope.name).toBe("old");
    expect(s!.name).toBe("legacy");
  });

  it("says what is wrong and where", () => {
    expect(() => parseOtlpSpans("")).toThrow("the file is empty");
    expect(() => parseOtlpSpans("{not json")).toThrow(/^the file is not JSON/);
    expect(() => parseOtlpSpans('{"resourceSpans":[]}\n{oops')).toThrow(/^line 2 is not JSON/);
    expect(() => parseOtlpSpans('{"a":1}\n{"b":2}')).toThrow("line 1: is not OTLP/JSON trace data");
    expect(() => parseOtlpSpans('{"resourceLogs":[]}')).toThrow("file: is not OTLP/JSON trace data (no resourceSpans)");
    expect(() => parseOtlpSpans('{"resourceSpans":[]}')).toThrow("the file holds no spans");
    const bad = (spanPatch: object) =>
      JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: TRACE, spanId: "1111111111111111", ...spanPatch }] }] }] });
    expect(() => parseOtlpSpans(bad({ spanId: "xyz" }))).toThrow(
      'resourceSpans[0].scopeSpans[0].spans[0].spanId: is not a 8-byte id in hex or base64: "xyz"',
    );
    expect(() => parseOtlpSpans(bad({ traceId: undefined }))).toThrow("spans[0].traceId: is missing");
    expect(() => parseOtlpSpans(bad({ kind: "SERVER" }))).toThrow("spans[0].kind: is not one of");
    expect(() => parseOtlpSpans(bad({ startTimeUnixNano: "yesterday" }))).toThrow("startTimeUnixNano: is not a unix time");
    expect(() => parseOtlpSpans(bad({ attributes: [{ key: "n", value: { intValue: "1.5" } }] }))).toThrow(
      "attributes[0].value.intValue: is not a 64-bit integer",
    );
    expect(() => parseOtlpSpans(bad({ attributes: [{ key: "n", value: { intValue: "9223372036854775808" } }] }))).toThrow(
      "out of the 64-bit range",
    );
    expect(() => parseOtlpSpans("[1]")).toThrow("item 0: is not OTLP/JSON trace data");
    for (const text of ["{not json", '{"resourceSpans":[]}']) {
      expect(() => parseOtlpSpans(text)).toThrow(OtlpFileError);
    }
  });
});

describe("anyValue", () => {
  it("keeps integers within ±2^53 as numbers and the rest as decimal strings", () => {
    expect(anyValue({ intValue: "-9007199254740992" }, "v")).toBe(-9007199254740992);
    expect(anyValue({ intValue: "-9007199254740993" }, "v")).toBe("-9007199254740993");
    expect(anyValue({ intValue: 7 }, "v")).toBe(7);
    expect(anyValue({ doubleValue: "-Infinity" }, "v")).toBe("-Infinity");
    expect(anyValue({ doubleValue: "2.5" }, "v")).toBe(2.5);
  });
});

describe("splitTraces", () => {
  it("groups spans by trace in file order and names each by its root", () => {
    const traces = splitTraces(parseOtlpSpans(JSON.stringify(SAMPLE)));
    expect(traces.map((t) => [t.traceId, t.spans.length, t.rootService, t.rootName, t.rootSpanMissing, t.errorCount])).toEqual([
      [TRACE, 2, "checkout", "POST /checkout", false, 1],
      [OTHER, 1, "unknown_service", "consume", false, 0],
    ]);
    expect(traces[0]!.durationMs).toBe(1000);
  });

  it("names a trace without a root by its earliest span", () => {
    const text = JSON.stringify({
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                { traceId: TRACE, spanId: "2222222222222222", parentSpanId: "1111111111111111", name: "late", startTimeUnixNano: "20", endTimeUnixNano: "30" },
                { traceId: TRACE, spanId: "3333333333333333", parentSpanId: "1111111111111111", name: "early", startTimeUnixNano: "10", endTimeUnixNano: "15" },
              ],
            },
          ],
        },
      ],
    });
    const [t] = splitTraces(parseOtlpSpans(text));
    expect(t!.rootSpanMissing).toBe(true);
    expect(t!.rootName).toBe("early");
    expect(t!.durationMs).toBeCloseTo(0.00002, 9);
  });
});
