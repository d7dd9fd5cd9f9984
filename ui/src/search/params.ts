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
    const back = lookbackMs(query.get("lookback") ?? DEFAULT_LOOKBACK) ?? 3_600_000;
    api.set("start", String(Math.floor(now - back)));
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
