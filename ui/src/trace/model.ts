// The span shape of GET /api/traces/{traceId} (SPEC §5) and the time arithmetic on its
// nanosecond strings. Times are split into whole seconds and nanoseconds so that relative
// microseconds stay exact in a double without BigInt (seconds since 1970 fit in 2^53 easily).

import type { AttributeValue, Attributes } from "../types";

export type { AttributeValue, Attributes };

/** OTLP enum names; a value the server does not know stays a number. */
export type SpanKind =
  | "SPAN_KIND_UNSPECIFIED"
  | "SPAN_KIND_INTERNAL"
  | "SPAN_KIND_SERVER"
  | "SPAN_KIND_CLIENT"
  | "SPAN_KIND_PRODUCER"
  | "SPAN_KIND_CONSUMER"
  | number;
export type StatusCode = "STATUS_CODE_UNSET" | "STATUS_CODE_OK" | "STATUS_CODE_ERROR" | number;

export interface SpanStatus {
  code: StatusCode;
  message: string;
}

export interface SpanScope {
  name: string;
  version: string;
  attributes: Attributes;
}

export interface SpanEvent {
  timeUnixNano: string;
  name: string;
  attributes: Attributes;
  droppedAttributesCount?: number;
}

export interface SpanLink {
  traceId: string;
  spanId: string;
  traceState: string;
  attributes: Attributes;
  droppedAttributesCount?: number;
  flags?: number;
}

export interface Span {
  traceId: string;
  spanId: string;
  /** "" for a root span. */
  parentSpanId: string;
  traceState: string;
  flags: number;
  service: string;
  name: string;
  kind: SpanKind;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  durationMs: number;
  status: SpanStatus;
  attributes: Attributes;
  resource: Attributes;
  scope: SpanScope;
  events: SpanEvent[];
  links: SpanLink[];
  droppedAttributesCount: number;
  droppedEventsCount?: number;
  droppedLinksCount?: number;
}

/** The body of GET /api/traces/{traceId}. */
export interface TraceResponse {
  traceId: string;
  spans: Span[];
}

/** A unix time in nanoseconds split so each part is exact as a double. */
export interface NanoTime {
  readonly sec: number;
  readonly nano: number;
}

const DIGITS = /^[0-9]+$/;

/**
 * Parses a decimal nanosecond string (or a number, as OTLP/JSON also allows). Anything else
 * is an Error naming the value, so a malformed dropped file is reported, not drawn at 1970.
 */
export function parseNano(value: string | number): NanoTime {
  if (typeof value === "number") {
    if (!Number.isFinite(value) || value < 0) throw new Error(`not a unix nanosecond time: ${value}`);
    const sec = Math.floor(value / 1e9);
    return { sec, nano: value - sec * 1e9 };
  }
  if (!DIGITS.test(value)) throw new Error(`not a unix nanosecond time: ${JSON.stringify(value)}`);
  const cut = Math.max(0, value.length - 9);
  return { sec: cut === 0 ? 0 : Number(value.slice(0, cut)), nano: Number(value.slice(cut)) };
}

/** a - b in microseconds (fractional below 1 µs). */
export function diffUs(a: NanoTime, b: NanoTime): number {
  return (a.sec - b.sec) * 1e6 + (a.nano - b.nano) / 1e3;
}

export function compareNano(a: NanoTime, b: NanoTime): number {
  return a.sec !== b.sec ? a.sec - b.sec : a.nano - b.nano;
}

/** Milliseconds since the epoch, for Date and display (sub-millisecond digits dropped). */
export function nanoToEpochMs(t: NanoTime): number {
  return t.sec * 1e3 + Math.floor(t.nano / 1e6);
}

/** Adds microseconds to a time, e.g. to turn a position on the axis back into a wall time. */
export function addUs(t: NanoTime, us: number): NanoTime {
  const totalNano = t.nano + Math.round(us * 1e3);
  const carry = Math.floor(totalNano / 1e9);
  return { sec: t.sec + carry, nano: totalNano - carry * 1e9 };
}

/** The decimal nanosecond string of a time (inverse of parseNano). */
export function formatNano(t: NanoTime): string {
  if (t.sec === 0) return String(t.nano);
  return String(t.sec) + String(t.nano).padStart(9, "0");
}

/** The earliest start among spans; null for no spans. */
export function traceStart(spans: readonly Span[]): NanoTime | null {
  let best: NanoTime | null = null;
  for (const s of spans) {
    const t = parseNano(s.startTimeUnixNano);
    if (best === null || compareNano(t, best) < 0) best = t;
  }
  return best;
}

export function isErrorSpan(span: Span): boolean {
  return span.status.code === "STATUS_CODE_ERROR" || span.status.code === 2;
}

/** An attribute value as plain text (search, copy, tables). */
export function attrText(value: AttributeValue): string {
  if (typeof value === "string") return value;
  if (value === null || typeof value === "number" || typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}
