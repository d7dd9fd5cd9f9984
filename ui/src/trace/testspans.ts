// Hand-built spans for the trace logic tests: times are given in µs after a fixed instant.

import { type Attributes, type Span, addUs, formatNano } from "./model";

const BASE = { sec: 1_700_000_000, nano: 123_000 };

export interface SpanSpec {
  id: string;
  parent?: string;
  service?: string;
  name?: string;
  start: number;
  end: number;
  error?: boolean;
  attributes?: Attributes;
  resource?: Attributes;
  events?: { at: number; name: string; attributes?: Attributes }[];
}

export function at(us: number): string {
  return formatNano(addUs(BASE, us));
}

export function span(s: SpanSpec): Span {
  return {
    traceId: "0af7651916cd43dd8448eb211c80319c",
    spanId: s.id,
    parentSpanId: s.parent ?? "",
    traceState: "",
    flags: 1,
    service: s.service ?? "api",
    name: s.name ?? `op-${s.id}`,
    kind: "SPAN_KIND_INTERNAL",
    startTimeUnixNano: at(s.start),
    endTimeUnixNano: at(s.end),
    durationMs: (s.end - s.start) / 1000,
    status: { code: s.error ? "STATUS_CODE_ERROR" : "STATUS_CODE_UNSET", message: "" },
    attributes: s.attributes ?? {},
    resource: s.resource ?? { "service.name": s.service ?? "api" },
    scope: { name: "test", version: "1", attributes: {} },
    events: (s.events ?? []).map((e) => ({
      timeUnixNano: at(e.at),
      name: e.name,
      attributes: e.attributes ?? {},
    })),
    links: [],
    droppedAttributesCount: 0,
  };
}

export function spans(...specs: SpanSpec[]): Span[] {
  return specs.map(span);
}

/** A chain: each span the only child of the one before, every span 1 µs shorter at both ends. */
export function deepChain(n: number): Span[] {
  const out: Span[] = [];
  for (let i = 0; i < n; i++) {
    out.push(
      span({
        id: i.toString(16).padStart(16, "0"),
        parent: i === 0 ? undefined : (i - 1).toString(16).padStart(16, "0"),
        start: i,
        end: 2 * n - i,
        service: `svc${i % 3}`,
      }),
    );
  }
  return out;
}

/** A root with n - 1 children spread over time, listed in reverse so ordering is exercised. */
export function wideTrace(n: number): Span[] {
  const out: Span[] = [span({ id: "ffffffffffffffff", start: 0, end: n * 10 + 10 })];
  for (let i = n - 1; i >= 1; i--) {
    out.push(
      span({
        id: i.toString(16).padStart(16, "0"),
        parent: "ffffffffffffffff",
        start: i * 10,
        end: i * 10 + 15,
        service: `svc${i % 7}`,
        name: `op${i % 11}`,
      }),
    );
  }
  return out;
}

/**
 * Test options for the 50,000-span cases: they prove the work finishes without overflowing
 * the stack, so the limit is generous for a machine shared with other work.
 */
export const LARGE = { timeout: 30_000 };
