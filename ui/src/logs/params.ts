// The log search URL (/ui/logs?<the /api/logs parameters>&lookback=) and what the form
// writes into it. Time presets and `attr.*` are read as the trace search reads them.
import { nsToMs } from "../format";
import { apiQuery } from "../search/params";

export const LOG_PARAMS = ["service", "severity", "q", "traceId", "spanId", "start", "end", "limit"] as const;
/** GET /api/logs/volume takes the filters without paging. */
export const VOLUME_PARAMS = ["service", "severity", "q", "traceId", "spanId", "start", "end"] as const;

export function logsApiQuery(query: URLSearchParams, now: number): URLSearchParams {
  return apiQuery(query, now, LOG_PARAMS);
}

export function volumeApiQuery(query: URLSearchParams, now: number): URLSearchParams {
  return apiQuery(query, now, VOLUME_PARAMS);
}

export interface LogForm {
  readonly service: string;
  readonly severity: string;
  readonly q: string;
  readonly traceId: string;
  readonly spanId: string;
  readonly limit: string;
  /** A preset such as `1h`, or "" for the absolute range below. */
  readonly lookback: string;
  /** Absolute range in ms (used when lookback is ""). */
  readonly start: number | null;
  readonly end: number | null;
  readonly attributes: readonly (readonly [string, string])[];
}

/** The page URL's query for a submitted form: empty fields left out, ids trimmed and
 * lowercased (the API's hex form), blank attribute rows dropped. */
export function formToQuery(form: LogForm): URLSearchParams {
  const next = new URLSearchParams();
  const set = (key: string, value: string) => {
    const text = value.trim();
    if (text) next.set(key, text);
  };
  set("service", form.service);
  set("severity", form.severity);
  set("q", form.q);
  set("traceId", form.traceId.toLowerCase());
  set("spanId", form.spanId.toLowerCase());
  if (form.limit.trim() && form.limit.trim() !== "100") set("limit", form.limit);
  if (form.lookback) next.set("lookback", form.lookback);
  else {
    if (form.start !== null) next.set("start", String(Math.floor(form.start)));
    if (form.end !== null) next.set("end", String(Math.ceil(form.end)));
  }
  for (const [key, value] of form.attributes) {
    if (key.trim()) next.append(`attr.${key.trim()}`, value);
  }
  return next;
}

/** The query after a drag over the histogram: the range replaces any preset, and a page
 * of results further down is no longer the question. */
export function withRange(query: URLSearchParams, start: number, end: number): URLSearchParams {
  const next = new URLSearchParams(query);
  next.delete("lookback");
  next.delete("cursor");
  next.set("start", String(Math.floor(start)));
  next.set("end", String(Math.ceil(end)));
  return next;
}

/** When a record happened (ms): its time, or when it was observed for a sender that left
 * the time unset ("0", as OpenTelemetry SDKs do unless given a timestamp). */
export function recordTimeMs(timeUnixNano: string, observedTimeUnixNano: string): number {
  const set = (ns: string) => ns !== "" && ns !== "0";
  return nsToMs(set(timeUnixNano) ? timeUnixNano : set(observedTimeUnixNano) ? observedTimeUnixNano : "0");
}

/** A log body (any OTLP AnyValue) as text: strings as they are, everything else as JSON. */
export function bodyText(body: unknown): string {
  if (typeof body === "string") return body;
  if (body === null || body === undefined) return "";
  return JSON.stringify(body);
}
