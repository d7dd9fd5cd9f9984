// Reading trace data a user drops on the page: OTLP/JSON TracesData or
// ExportTraceServiceRequest (`resourceSpans` → `scopeSpans` → `spans`), a JSON array of those,
// or the Collector file exporter's output (one such object per line), turned into the native
// API's Span shape so every trace view draws a file exactly like a stored trace. What the
// server's own conversion does (SPEC §5) is mirrored: ids as lowercase hex, enums as names,
// 64-bit integers beyond 2^53 as decimal strings, bytes as base64, kvlists as objects.

import type { AttributeValue as AttrValue, Attributes, Span, SpanEvent, SpanKind, SpanLink, StatusCode } from "./model";
import { diffUs, isErrorSpan, parseNano } from "./model";

/** A file that is not JSON, or JSON that is not OTLP trace data; the message says where. */
export class OtlpFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OtlpFileError";
  }
}

export interface FileTrace {
  readonly traceId: string;
  readonly spans: Span[];
  /** The root span's (or, without one, the earliest span's) service and name. */
  readonly rootService: string;
  readonly rootName: string;
  readonly rootSpanMissing: boolean;
  readonly durationMs: number;
  readonly errorCount: number;
}

const SPAN_KINDS = [
  "SPAN_KIND_UNSPECIFIED",
  "SPAN_KIND_INTERNAL",
  "SPAN_KIND_SERVER",
  "SPAN_KIND_CLIENT",
  "SPAN_KIND_PRODUCER",
  "SPAN_KIND_CONSUMER",
] as const;
const STATUS_CODES = ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"] as const;
const UNKNOWN_SERVICE = "unknown_service";
const MAX_SAFE = 2n ** 53n;
const NON_FINITE = new Set(["NaN", "Infinity", "-Infinity"]);
const HEX = /^[0-9a-fA-F]+$/;
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;
const INTEGER = /^-?[0-9]+$/;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = { [key: string]: Json };

function isObj(value: unknown): value is Obj {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function fail(where: string, what: string): never {
  throw new OtlpFileError(`${where}: ${what}`);
}

function list(obj: Obj, key: string, where: string): Json[] {
  const value = obj[key];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) fail(`${where}.${key}`, "is not an array");
  return value;
}

function obj(value: Json | undefined, where: string): Obj {
  if (value === undefined || value === null) return {};
  if (!isObj(value)) fail(where, "is not an object");
  return value;
}

function str(o: Obj, key: string, where: string): string {
  const value = o[key];
  if (value === undefined || value === null) return "";
  if (typeof value !== "string") fail(`${where}.${key}`, "is not a string");
  return value;
}

/** uint32/int32 fields: proto3 JSON allows a number or a decimal string. */
function count(o: Obj, key: string, where: string): number {
  const value = o[key];
  if (value === undefined || value === null) return 0;
  if (typeof value === "number" && Number.isInteger(value)) return value;
  if (typeof value === "string" && INTEGER.test(value)) return Number(value);
  fail(`${where}.${key}`, `is not an integer: ${JSON.stringify(value)}`);
}

function base64ToHex(text: string): string | null {
  if (!BASE64.test(text)) return null;
  try {
    const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    let out = "";
    for (let i = 0; i < binary.length; i++) out += binary.charCodeAt(i).toString(16).padStart(2, "0");
    return out;
  } catch {
    // atob rejects bad padding: then the text is not base64 after all.
    return null;
  }
}

/**
 * A trace or span id as lowercase hex. OTLP/JSON writes ids as hex, but the generic protobuf
 * JSON mapping (which some tools emit) writes base64; the lengths cannot be confused
 * (32/16 hex digits against 24/12 base64 characters).
 */
function id(text: string, bytes: 16 | 8, where: string, optional: boolean): string {
  if (text === "") {
    if (optional) return "";
    fail(where, "is missing");
  }
  let hex: string | null = null;
  if (HEX.test(text) && (text.length === bytes * 2 || (bytes === 16 && text.length === 16))) {
    // A 64-bit trace id (Jaeger, Zipkin) is left-padded, as the API does.
    hex = text.toLowerCase().padStart(bytes * 2, "0");
  } else {
    const decoded = base64ToHex(text);
    if (decoded !== null && decoded.length === bytes * 2) hex = decoded;
  }
  if (hex === null) fail(where, `is not a ${bytes}-byte id in hex or base64: ${JSON.stringify(text)}`);
  // An all-zero id is the protocol's "no id"; for a parent that means a root span.
  if (optional && /^0+$/.test(hex)) return "";
  return hex;
}

/** A unix nanosecond time as the decimal string the API sends. */
function nanos(o: Obj, key: string, where: string): string {
  const value = o[key];
  if (value === undefined || value === null) return "0";
  if (typeof value === "string" && /^[0-9]+$/.test(value)) return value.replace(/^0+(?=.)/, "");
  if (typeof value === "number" && Number.isInteger(value) && value >= 0) return BigInt(value).toString();
  fail(`${where}.${key}`, `is not a unix time in nanoseconds: ${JSON.stringify(value)}`);
}

function enumValue<T extends string>(
  names: readonly T[],
  value: Json | undefined,
  where: string,
): T | number {
  if (value === undefined || value === null) return names[0]!;
  if (typeof value === "number" && Number.isInteger(value)) return names[value] ?? value;
  if (typeof value === "string") {
    if ((names as readonly string[]).includes(value)) return value as T;
    if (INTEGER.test(value)) return names[Number(value)] ?? Number(value);
  }
  fail(where, `is not one of ${names.join(", ")}: ${JSON.stringify(value)}`);
}

function intValue(value: Json, where: string): number | string {
  let big: bigint;
  if (typeof value === "number" && Number.isInteger(value)) big = BigInt(value);
  else if (typeof value === "string" && INTEGER.test(value)) big = BigInt(value);
  else fail(where, `is not a 64-bit integer: ${JSON.stringify(value)}`);
  if (big > 2n ** 63n - 1n || big < -(2n ** 63n)) fail(where, `is out of the 64-bit range: ${String(value)}`);
  // Past 2^53 a double would round it: the API, and so the views, keep such values as text.
  return big <= MAX_SAFE && big >= -MAX_SAFE ? Number(big) : big.toString();
}

function doubleValue(value: Json, where: string): number | string {
  if (typeof value === "number") return value;
  if (typeof value === "string") {
    if (NON_FINITE.has(value)) return value;
    const n = Number(value);
    if (value.trim() !== "" && Number.isFinite(n)) return n;
  }
  fail(where, `is not a double: ${JSON.stringify(value)}`);
}

/** An OTLP AnyValue as the plain JSON value the API uses for it. */
export function anyValue(value: Json | undefined, where: string): AttrValue {
  if (value === undefined || value === null) return null;
  if (!isObj(value)) fail(where, "is not an AnyValue object");
  if ("stringValue" in value) {
    const s = value.stringValue;
    if (typeof s !== "string") fail(`${where}.stringValue`, "is not a string");
    return s;
  }
  if ("boolValue" in value) {
    const b = value.boolValue;
    if (typeof b !== "boolean") fail(`${where}.boolValue`, "is not a boolean");
    return b;
  }
  if ("intValue" in value) return intValue(value.intValue ?? null, `${where}.intValue`);
  if ("doubleValue" in value) return doubleValue(value.doubleValue ?? null, `${where}.doubleValue`);
  if ("bytesValue" in value) {
    const b = value.bytesValue;
    if (typeof b !== "string" || !BASE64.test(b)) fail(`${where}.bytesValue`, "is not base64");
    return b;
  }
  if ("arrayValue" in value) {
    const arr = obj(value.arrayValue, `${where}.arrayValue`);
    return list(arr, "values", `${where}.arrayValue`).map((v, i) => anyValue(v, `${where}.arrayValue.values[${i}]`));
  }
  if ("kvlistValue" in value) {
    const kv = obj(value.kvlistValue, `${where}.kvlistValue`);
    return attributes(list(kv, "values", `${where}.kvlistValue`), `${where}.kvlistValue.values`);
  }
  // An AnyValue with no field set is the protocol's empty value.
  return null;
}

function attributes(values: Json[], where: string): Attributes {
  const out: Attributes = {};
  values.forEach((kv, i) => {
    const here = `${where}[${i}]`;
    if (!isObj(kv)) fail(here, "is not a key-value object");
    const key = kv.key;
    if (typeof key !== "string") fail(`${here}.key`, "is not a string");
    out[key] = anyValue(kv.value, `${here}.value`);
  });
  return out;
}

function attrsOf(o: Obj, where: string): Attributes {
  return attributes(list(o, "attributes", where), `${where}.attributes`);
}

function event(value: Json, where: string): SpanEvent {
  const e = obj(value, where);
  return {
    timeUnixNano: nanos(e, "timeUnixNano", where),
    name: str(e, "name", where),
    attributes: attrsOf(e, where),
    droppedAttributesCount: count(e, "droppedAttributesCount", where),
  };
}

function link(value: Json, where: string): SpanLink {
  const l = obj(value, where);
  return {
    traceId: id(str(l, "traceId", where), 16, `${where}.traceId`, false),
    spanId: id(str(l, "spanId", where), 8, `${where}.spanId`, false),
    traceState: str(l, "traceState", where),
    attributes: attrsOf(l, where),
    droppedAttributesCount: count(l, "droppedAttributesCount", where),
    flags: count(l, "flags", where),
  };
}

function durationMs(start: string, end: string): number {
  return Math.max(0, diffUs(parseNano(end), parseNano(start)) / 1000);
}

interface Context {
  readonly service: string;
  readonly resource: Attributes;
  readonly scope: Span["scope"];
}

function span(value: Json, ctx: Context, where: string): Span {
  const s = obj(value, where);
  const start = nanos(s, "startTimeUnixNano", where);
  const end = nanos(s, "endTimeUnixNano", where);
  const status = obj(s.status, `${where}.status`);
  return {
    traceId: id(str(s, "traceId", where), 16, `${where}.traceId`, false),
    spanId: id(str(s, "spanId", where), 8, `${where}.spanId`, false),
    parentSpanId: id(str(s, "parentSpanId", where), 8, `${where}.parentSpanId`, true),
    traceState: str(s, "traceState", where),
    flags: count(s, "flags", where),
    service: ctx.service,
    name: str(s, "name", where),
    kind: enumValue(SPAN_KINDS, s.kind, `${where}.kind`) as SpanKind,
    startTimeUnixNano: start,
    endTimeUnixNano: end,
    durationMs: durationMs(start, end),
    status: {
      code: enumValue(STATUS_CODES, status.code, `${where}.status.code`) as StatusCode,
      message: str(status, "message", `${where}.status`),
    },
    attributes: attrsOf(s, where),
    resource: ctx.resource,
    scope: ctx.scope,
    events: list(s, "events", where).map((e, i) => event(e, `${where}.events[${i}]`)),
    links: list(s, "links", where).map((l, i) => link(l, `${where}.links[${i}]`)),
    droppedAttributesCount: count(s, "droppedAttributesCount", where),
    droppedEventsCount: count(s, "droppedEventsCount", where),
    droppedLinksCount: count(s, "droppedLinksCount", where),
  };
}

/** The spans of one TracesData / ExportTraceServiceRequest object, appended to `out`. */
function tracesData(value: Json, where: string, out: Span[]): void {
  if (!isObj(value) || !("resourceSpans" in value)) {
    fail(where, "is not OTLP/JSON trace data (no resourceSpans)");
  }
  list(value, "resourceSpans", where).forEach((rsValue, r) => {
    const rsWhere = `${where === "file" ? "" : `${where}.`}resourceSpans[${r}]`;
    const rs = obj(rsValue, rsWhere);
    const resourceObj = obj(rs.resource, `${rsWhere}.resource`);
    const resource = attrsOf(resourceObj, `${rsWhere}.resource`);
    const name = resource["service.name"];
    const service = typeof name === "string" ? name : UNKNOWN_SERVICE;
    // Collectors before OTLP 0.19 wrote instrumentationLibrarySpans; files from them still exist.
    const scopeKey = "scopeSpans" in rs ? "scopeSpans" : "instrumentationLibrarySpans";
    list(rs, scopeKey, rsWhere).forEach((ssValue, si) => {
      const ssWhere = `${rsWhere}.${scopeKey}[${si}]`;
      const ss = obj(ssValue, ssWhere);
      const scopeObj = obj(ss.scope ?? ss.instrumentationLibrary, `${ssWhere}.scope`);
      const scope = {
        name: str(scopeObj, "name", `${ssWhere}.scope`),
        version: str(scopeObj, "version", `${ssWhere}.scope`),
        attributes: attrsOf(scopeObj, `${ssWhere}.scope`),
      };
      const ctx: Context = { service, resource, scope };
      list(ss, "spans", ssWhere).forEach((sp, i) => out.push(span(sp, ctx, `${ssWhere}.spans[${i}]`)));
    });
  });
}

function parseJson(text: string, where: string): Json {
  try {
    return JSON.parse(text) as Json;
  } catch (err) {
    throw new OtlpFileError(`${where} is not JSON (${err instanceof Error ? err.message : String(err)})`);
  }
}

/**
 * Every span in an OTLP/JSON file: one TracesData or ExportTraceServiceRequest object, a JSON
 * array of them, or JSON Lines (the Collector file exporter). Lines of other signals
 * (`resourceLogs`, `resourceMetrics`) in a file-exporter file are skipped; a file without any
 * span is an error, as is anything malformed, with the place it was found.
 */
export function parseOtlpSpans(text: string): Span[] {
  const out: Span[] = [];
  const trimmed = text.trim();
  if (trimmed === "") throw new OtlpFileError("the file is empty");
  let whole: Json | undefined;
  try {
    whole = JSON.parse(trimmed) as Json;
  } catch {
    whole = undefined;
  }
  if (whole !== undefined) {
    if (Array.isArray(whole)) whole.forEach((item, i) => tracesData(item, `item ${i}`, out));
    else tracesData(whole, "file", out);
  } else {
    const lines = trimmed.split(/\r?\n/);
    if (lines.length === 1) parseJson(trimmed, "the file");
    lines.forEach((line, i) => {
      if (line.trim() === "") return;
      const value = parseJson(line, `line ${i + 1}`);
      if (isObj(value) && !("resourceSpans" in value) && ("resourceLogs" in value || "resourceMetrics" in value)) return;
      tracesData(value, `line ${i + 1}`, out);
    });
  }
  if (out.length === 0) throw new OtlpFileError("the file holds no spans");
  return out;
}

/** The spans grouped by trace, in the order the traces first appear in the file. */
export function splitTraces(spans: readonly Span[]): FileTrace[] {
  const groups = new Map<string, Span[]>();
  for (const s of spans) {
    let g = groups.get(s.traceId);
    if (g === undefined) {
      g = [];
      groups.set(s.traceId, g);
    }
    g.push(s);
  }
  return [...groups].map(([traceId, group]) => summarize(traceId, group));
}

function summarize(traceId: string, spans: Span[]): FileTrace {
  let root: Span | undefined;
  let earliest = spans[0]!;
  let first = parseNano(earliest.startTimeUnixNano);
  let last = parseNano(earliest.endTimeUnixNano);
  let errorCount = 0;
  for (const s of spans) {
    const start = parseNano(s.startTimeUnixNano);
    const end = parseNano(s.endTimeUnixNano);
    if (diffUs(start, first) < 0) {
      first = start;
      earliest = s;
    }
    if (diffUs(end, last) > 0) last = end;
    if (s.parentSpanId === "" && (root === undefined || diffUs(start, parseNano(root.startTimeUnixNano)) < 0)) root = s;
    if (isErrorSpan(s)) errorCount++;
  }
  const shown = root ?? earliest;
  return {
    traceId,
    spans,
    rootService: shown.service,
    rootName: shown.name,
    rootSpanMissing: root === undefined,
    durationMs: Math.max(0, diffUs(last, first) / 1000),
    errorCount,
  };
}
