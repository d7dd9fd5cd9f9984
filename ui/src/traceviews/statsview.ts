// The statistics table's rows and their order: per service or per service and operation,
// sorted by any column, ties broken by name so the order never depends on the input order.
import type { DurationStats, TraceStats } from "../trace/stats";

export type Grouping = "service" | "operation";

export type StatsColumn =
  | "service"
  | "operation"
  | "count"
  | "totalUs"
  | "avgUs"
  | "minUs"
  | "maxUs"
  | "selfUs"
  | "selfAvgUs"
  | "selfPercent"
  | "errorCount";

export interface StatsRow extends DurationStats {
  readonly service: string;
  /** "" when grouped by service only. */
  readonly operation: string;
}

export interface StatsSort {
  readonly column: StatsColumn;
  readonly descending: boolean;
}

export const DEFAULT_SORT: StatsSort = { column: "totalUs", descending: true };

export function statsRows(stats: TraceStats, grouping: Grouping): StatsRow[] {
  return grouping === "service"
    ? stats.services.map((s) => ({ ...s, operation: "" }))
    : stats.operations.map((o) => ({ ...o }));
}

export function sortRows(rows: readonly StatsRow[], sort: StatsSort): StatsRow[] {
  const sign = sort.descending ? -1 : 1;
  const col = sort.column;
  const byName = (a: StatsRow, b: StatsRow): number =>
    a.service.localeCompare(b.service) || a.operation.localeCompare(b.operation);
  return [...rows].sort((a, b) => {
    const x = a[col];
    const y = b[col];
    const primary = typeof x === "string" && typeof y === "string" ? x.localeCompare(y) : (x as number) - (y as number);
    return sign * primary || byName(a, b);
  });
}

/** Clicking a header: the same column flips its direction; a new one starts with the largest (names A→Z). */
export function nextSort(current: StatsSort, column: StatsColumn): StatsSort {
  if (current.column === column) return { column, descending: !current.descending };
  return { column, descending: column !== "service" && column !== "operation" };
}
