// Sorting the loaded results by a table column. The API returns newest first; a sort is a
// view of the pages loaded so far (kept in the URL as `sort=duration` / `sort=-duration`).
import type { TraceSummary } from "../types";

export const SORT_KEYS = ["root", "services", "spans", "errors", "duration", "start"] as const;
export type SortKey = (typeof SORT_KEYS)[number];

export interface Sort {
  readonly key: SortKey;
  readonly desc: boolean;
}

export function parseSort(value: string | null): Sort | null {
  if (!value) return null;
  const desc = value.startsWith("-");
  const key = desc ? value.slice(1) : value;
  return (SORT_KEYS as readonly string[]).includes(key) ? { key: key as SortKey, desc } : null;
}

export function formatSort(sort: Sort): string {
  return (sort.desc ? "-" : "") + sort.key;
}

/** A header click: the same column flips; a new one starts with the largest or A first. */
export function nextSort(current: Sort | null, key: SortKey): Sort {
  if (current?.key === key) return { key, desc: !current.desc };
  return { key, desc: key !== "root" && key !== "services" };
}

/** Decimal nanosecond strings compared exactly (a double loses the last digits). */
export function compareNs(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

const text = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

function compare(a: TraceSummary, b: TraceSummary, key: SortKey): number {
  switch (key) {
    case "root":
      return text.compare(a.rootService, b.rootService) || text.compare(a.rootName, b.rootName);
    case "services":
      return a.services.length - b.services.length || text.compare(a.services.join(","), b.services.join(","));
    case "spans":
      return a.spanCount - b.spanCount;
    case "errors":
      return a.errorCount - b.errorCount;
    case "duration":
      return a.durationMs - b.durationMs;
    case "start":
      return compareNs(a.startTimeUnixNano, b.startTimeUnixNano);
  }
}

/** A sorted copy (ties keep the API's order); null keeps the API's order. */
export function sortTraces(traces: readonly TraceSummary[], sort: Sort | null): readonly TraceSummary[] {
  if (!sort) return traces;
  const sign = sort.desc ? -1 : 1;
  return traces
    .map((t, i) => ({ t, i }))
    .sort((a, b) => sign * compare(a.t, b.t, sort.key) || a.i - b.i)
    .map((e) => e.t);
}
