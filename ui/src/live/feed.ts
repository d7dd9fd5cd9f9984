// The live feed's messages (SPEC §5 "Live": spanAdded, logAdded, subscribed, error) as the
// rows the live view shows, the traces they belong to, and the view's URL.
import { nsToMs } from "../format";
import { bodyText, recordTimeMs } from "../logs/params";

export type LiveSignal = "traces" | "logs";
export const LIVE_SIGNALS: readonly LiveSignal[] = ["traces", "logs"];

export interface SpanRow {
  readonly kind: "span";
  readonly id: number;
  readonly timeMs: number;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly service: string;
  /** "" when the message carried only ids. */
  readonly name: string;
  readonly durationMs: number | null;
  readonly error: boolean;
}

export interface LogRow {
  readonly kind: "log";
  readonly id: number;
  readonly timeMs: number;
  readonly service: string;
  readonly severityNumber: number;
  readonly severityText: string;
  readonly body: string;
  readonly traceId: string;
  readonly spanId: string;
}

export type LiveRow = SpanRow | LogRow;

export type FeedEvent =
  | { readonly type: "rows"; readonly rows: LiveRow[] }
  | { readonly type: "subscribed"; readonly signals: string[]; readonly service: string | null }
  | { readonly type: "error"; readonly message: string }
  | { readonly type: "other" };

type Json = Record<string, unknown>;

const str = (v: unknown): string => (typeof v === "string" ? v : "");
const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

let nextId = 1;

/** One server message, parsed; rows come out oldest first (in commit order). */
export function parseFeedMessage(text: string): FeedEvent {
  let msg: Json;
  try {
    msg = JSON.parse(text) as Json;
  } catch {
    return { type: "error", message: "the server sent a message that is not JSON" };
  }
  const details = (msg.details ?? {}) as Json;
  switch (msg.type) {
    case "spanAdded":
      return { type: "rows", rows: spanRows(details) };
    case "logAdded":
      return { type: "rows", rows: (Array.isArray(details.newLogs) ? details.newLogs : []).map((l) => logRow(l as Json)) };
    case "subscribed":
      return { type: "subscribed", signals: (details.signals as string[] | undefined) ?? [], service: (details.service as string | null | undefined) ?? null };
    case "error":
      return { type: "error", message: str(details.message) || "the server refused a message" };
    default:
      return { type: "other" };
  }
}

function spanRows(details: Json): SpanRow[] {
  const spans = Array.isArray(details.spans) ? (details.spans as Json[]) : null;
  if (spans) return spans.map(spanRow);
  // Only [traceId, spanId] pairs: enough to link to the trace.
  const ids = Array.isArray(details.newSpans) ? (details.newSpans as unknown[][]) : [];
  return ids.map(([traceId, spanId]) => ({
    kind: "span",
    id: nextId++,
    timeMs: Date.now(),
    traceId: str(traceId),
    spanId: str(spanId),
    parentSpanId: "",
    service: "",
    name: "",
    durationMs: null,
    error: false,
  }));
}

function spanRow(span: Json): SpanRow {
  const status = (span.status ?? {}) as Json;
  return {
    kind: "span",
    id: nextId++,
    timeMs: nsToMs(str(span.startTimeUnixNano) || "0"),
    traceId: str(span.traceId),
    spanId: str(span.spanId),
    parentSpanId: str(span.parentSpanId),
    service: str(span.service),
    name: str(span.name),
    durationMs: num(span.durationMs),
    error: status.code === "STATUS_CODE_ERROR",
  };
}

function logRow(log: Json): LogRow {
  return {
    kind: "log",
    id: nextId++,
    timeMs: recordTimeMs(str(log.timeUnixNano), str(log.observedTimeUnixNano)),
    service: str(log.service),
    severityNumber: num(log.severityNumber) ?? 0,
    severityText: str(log.severityText),
    body: bodyText(log.body),
    traceId: str(log.traceId),
    spanId: str(log.spanId),
  };
}

/** A trace seen on the feed: what the "new traces" list shows. */
export interface TraceTally {
  readonly traceId: string;
  readonly spans: number;
  readonly errors: number;
  /** The root span's service and name once it has arrived, else the first span's. */
  readonly service: string;
  readonly name: string;
  readonly rootSeen: boolean;
  readonly lastSeen: number;
}

/** Fold new spans into the list of traces (most recently active first, at most `cap`). */
export function tallyTraces(list: readonly TraceTally[], rows: readonly LiveRow[], now: number, cap: number): TraceTally[] {
  const byId = new Map(list.map((t) => [t.traceId, t]));
  const touched: string[] = [];
  for (const row of rows) {
    if (row.kind !== "span" || !row.traceId) continue;
    const prev = byId.get(row.traceId);
    const isRoot = row.parentSpanId === "" && row.name !== "";
    const keepPrevName = prev && (prev.rootSeen || (!isRoot && prev.name !== ""));
    byId.set(row.traceId, {
      traceId: row.traceId,
      spans: (prev?.spans ?? 0) + 1,
      errors: (prev?.errors ?? 0) + (row.error ? 1 : 0),
      service: keepPrevName ? prev.service : row.service,
      name: keepPrevName ? prev.name : row.name,
      rootSeen: (prev?.rootSeen ?? false) || isRoot,
      lastSeen: now,
    });
    touched.push(row.traceId);
  }
  if (!touched.length) return [...list];
  const fresh = [...new Set(touched.reverse())];
  const freshSet = new Set(fresh);
  const ordered = [...fresh, ...list.map((t) => t.traceId).filter((id) => !freshSet.has(id))];
  return ordered.slice(0, cap).map((id) => byId.get(id) as TraceTally);
}

/** The view's filters from its URL: `signal=traces,logs` (both when absent), `service=`. */
export function liveFilters(query: URLSearchParams): { signals: LiveSignal[]; service: string } {
  const raw = query.get("signal");
  const given = raw === null ? LIVE_SIGNALS : raw.split(",").map((s) => s.trim());
  const signals = LIVE_SIGNALS.filter((s) => given.includes(s));
  return { signals: signals.length ? signals : [...LIVE_SIGNALS], service: query.get("service") ?? "" };
}

/** The subscribe message for the filters. */
export function subscribeMessage(filters: { signals: readonly LiveSignal[]; service: string }): string {
  return JSON.stringify({ type: "subscribe", signals: filters.signals, service: filters.service || null });
}
