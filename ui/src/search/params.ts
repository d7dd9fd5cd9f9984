// The trace search form's state is the page URL's query: the /api/traces parameters
// themselves, plus `lookback` (a preset such as `1h`, Jaeger's name for it) that is turned
// into `start` when the search runs, so a shared "last hour" link stays the last hour.
export const TRACE_PARAMS = [
  "service",
  "operation",
  "status",
  "minDuration",
  "maxDuration",
  "minTraceDuration",
  "maxTraceDuration",
  "start",
  "end",
  "limit",
] as const;

const LOOKBACK = /^(\d+)(m|h|d)$/;
const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

export const DEFAULT_LOOKBACK = "1h";

/** The presets the search forms offer for `lookback`. */
export const LOOKBACKS: readonly (readonly [string, string])[] = [
  ["5m", "Last 5 minutes"],
  ["15m", "Last 15 minutes"],
  ["1h", "Last hour"],
  ["6h", "Last 6 hours"],
  ["24h", "Last 24 hours"],
  ["2d", "Last 2 days"],
  ["7d", "Last 7 days"],
];

export function lookbackMs(value: string | null): number | null {
  const match = LOOKBACK.exec(value ?? "");
  if (!match) return null;
  return Number(match[1]) * (UNIT_MS[match[2] ?? "h"] ?? 0);
}

/** The API query for a page URL's query, at time `now` (ms); `passthrough` names the
 * endpoint's own parameters (the trace search's by default, the log search's for logs). */
export function apiQuery(query: URLSearchParams, now: number, passthrough: readonly string[] = TRACE_PARAMS): URLSearchParams {
  const api = new URLSearchParams();
  for (const key of passthrough) {
    const value = query.get(key);
    if (value) api.set(key, value);
  }
  for (const [key, value] of query) {
    if (key.startsWith("attr.") && key.length > 5 && value !== "") api.append(key, value);
  }
  if (!api.has("start")) {
    // An end alone (a link cut short) still gets a window of the lookback before it.
    const end = parseTimeParam(api.get("end")) ?? now;
    const back = lookbackMs(query.get("lookback") ?? DEFAULT_LOOKBACK) ?? 3_600_000;
    api.set("start", String(Math.floor(end - back)));
    if (!api.has("end")) api.set("end", String(Math.ceil(now)));
  }
  return api;
}

/** `attr.<key>=<value>` pairs of a query, in order. */
export function attributeFilters(query: URLSearchParams): [string, string][] {
  const found: [string, string][] = [];
  for (const [key, value] of query) if (key.startsWith("attr.")) found.push([key.slice(5), value]);
  return found;
}

/** Keys of the page URL that change how results look, not which traces are fetched. */
export const VIEW_PARAMS: readonly string[] = ["sort"];

/** The part of a page URL that decides the results: a new value means a new search. */
export function searchKey(query: URLSearchParams): string {
  const copy = new URLSearchParams(query);
  for (const key of VIEW_PARAMS) copy.delete(key);
  return copy.toString();
}

/** A `start`/`end` value as the API reads it (RFC 3339 or unix by size) -> ms; null if neither. */
export function parseTimeParam(value: string | null): number | null {
  const text = (value ?? "").trim();
  if (!text) return null;
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n < 1e11) return n * 1000;
    if (n < 1e14) return n;
    if (n < 1e17) return n / 1e3;
    return n / 1e6;
  }
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : ms;
}

export interface AttrRow {
  readonly key: string;
  readonly value: string;
}

/** The lookback value that means "the absolute range in start/end". */
export const CUSTOM_RANGE = "custom";

/** The search form as the user edits it; the URL is written from it on submit. */
export interface SearchForm {
  readonly service: string;
  readonly operation: string;
  readonly status: string;
  readonly minDuration: string;
  readonly maxDuration: string;
  readonly minTraceDuration: string;
  readonly maxTraceDuration: string;
  readonly attrs: readonly AttrRow[];
  /** A preset such as `1h`, or CUSTOM_RANGE. */
  readonly lookback: string;
  /** ms since the epoch; used when lookback is CUSTOM_RANGE. */
  readonly start: number | null;
  readonly end: number | null;
  readonly limit: string;
}

type TextField = Exclude<(typeof TRACE_PARAMS)[number], "start" | "end">;
const TEXT_FIELDS = TRACE_PARAMS.filter((k): k is TextField => k !== "start" && k !== "end");

export function formFromQuery(query: URLSearchParams): SearchForm {
  const start = parseTimeParam(query.get("start"));
  const end = parseTimeParam(query.get("end"));
  const custom = start !== null || end !== null;
  const text = Object.fromEntries(TEXT_FIELDS.map((k) => [k, query.get(k) ?? ""])) as Record<TextField, string>;
  return {
    ...text,
    attrs: attributeFilters(query).map(([key, value]) => ({ key, value })),
    lookback: custom ? CUSTOM_RANGE : (query.get("lookback") ?? DEFAULT_LOOKBACK),
    start,
    end,
  };
}

/**
 * The page URL's query for a submitted form. View keys of `current` (the sort) are kept;
 * empty fields and attribute rows without a key are left out, and the default lookback
 * is implied rather than written, so links stay short.
 */
export function queryFromForm(form: SearchForm, current?: URLSearchParams): URLSearchParams {
  const next = new URLSearchParams();
  for (const key of TEXT_FIELDS) {
    const value = form[key].trim();
    if (value) next.set(key, value);
  }
  for (const row of form.attrs) {
    const key = row.key.trim();
    if (key) next.append(`attr.${key}`, row.value.trim());
  }
  if (form.lookback === CUSTOM_RANGE) {
    if (form.start !== null) next.set("start", new Date(form.start).toISOString());
    if (form.end !== null) next.set("end", new Date(form.end).toISOString());
  } else if (form.lookback && form.lookback !== DEFAULT_LOOKBACK) {
    next.set("lookback", form.lookback);
  }
  for (const key of VIEW_PARAMS) {
    const value = current?.get(key);
    if (value) next.set(key, value);
  }
  return next;
}

/**
 * The window (ms) a form would search, as `start`/`end` for the suggestion endpoints, so
 * they offer what the search can find (and scan no more than it will).
 */
export function formWindow(form: SearchForm, now: number): { start: number; end: number | null } {
  if (form.lookback === CUSTOM_RANGE) {
    const end = form.end;
    const start = form.start ?? (end ?? now) - 3_600_000;
    return { start, end };
  }
  return { start: Math.floor(now - (lookbackMs(form.lookback) ?? 3_600_000)), end: null };
}

/** The page URL's query narrowed to [from, to] ms (a drag on the scatter plot). */
export function zoomQuery(query: URLSearchParams, from: number, to: number): URLSearchParams {
  const next = new URLSearchParams(query);
  next.delete("lookback");
  next.delete("cursor");
  next.set("start", new Date(Math.floor(Math.min(from, to))).toISOString());
  next.set("end", new Date(Math.ceil(Math.max(from, to))).toISOString());
  return next;
}

/** The trace id a user typed, as the API's 32 lowercase hex digits, or why it is not one. */
export function normalizeTraceId(text: string): { id: string } | { error: string } {
  const id = text.trim().toLowerCase();
  if (!id) return { error: "Enter a trace id." };
  if (!/^[0-9a-f]+$/.test(id)) return { error: "A trace id is hexadecimal: digits 0-9 and letters a-f only." };
  if (id.length === 16) return { id: id.padStart(32, "0") };
  if (id.length !== 32) return { error: `A trace id has 32 hex digits (or 16, as some tracers send); this has ${id.length}.` };
  if (/^0+$/.test(id)) return { error: "An all-zero trace id is invalid in OpenTelemetry." };
  return { id };
}
