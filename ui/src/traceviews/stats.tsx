// Trace statistics (Jaeger's "Trace Statistics"): per service or per service and operation,
// the span count, total, average, minimum and maximum duration, self time and errors, with
// sortable columns. Grouping and order are this view's own state, not part of the URL.
import { useMemo, useState } from "preact/hooks";
import { serviceColor } from "../colors";
import { formatDuration } from "../format";
import { traceStats } from "../trace/stats";
import type { TraceViewProps } from "../traceview/views";
import type { Grouping, StatsColumn, StatsRow, StatsSort } from "./statsview";
import { DEFAULT_SORT, nextSort, sortRows, statsRows } from "./statsview";
import "./stats.css";

interface Column {
  readonly key: StatsColumn;
  readonly label: string;
  readonly cell: (row: StatsRow) => string;
  readonly numeric: boolean;
}

const us = (v: number): string => formatDuration(v / 1000);

const COLUMNS: readonly Column[] = [
  { key: "count", label: "Spans", cell: (r) => String(r.count), numeric: true },
  { key: "totalUs", label: "Total", cell: (r) => us(r.totalUs), numeric: true },
  { key: "avgUs", label: "Avg", cell: (r) => us(r.avgUs), numeric: true },
  { key: "minUs", label: "Min", cell: (r) => us(r.minUs), numeric: true },
  { key: "maxUs", label: "Max", cell: (r) => us(r.maxUs), numeric: true },
  { key: "selfUs", label: "Self total", cell: (r) => us(r.selfUs), numeric: true },
  { key: "selfAvgUs", label: "Self avg", cell: (r) => us(r.selfAvgUs), numeric: true },
  { key: "selfPercent", label: "Self % of trace", cell: (r) => `${r.selfPercent.toFixed(1)}%`, numeric: true },
  { key: "errorCount", label: "Errors", cell: (r) => String(r.errorCount), numeric: true },
];

export function TraceStatsView({ tree }: TraceViewProps) {
  const stats = useMemo(() => traceStats(tree), [tree]);
  const [grouping, setGrouping] = useState<Grouping>("service");
  const [sort, setSort] = useState<StatsSort>(DEFAULT_SORT);
  const rows = useMemo(() => sortRows(statsRows(stats, grouping), sort), [stats, grouping, sort]);
  const columns: Column[] = [
    { key: "service", label: "Service", cell: (r) => r.service, numeric: false },
    ...(grouping === "operation" ? [{ key: "operation" as const, label: "Operation", cell: (r: StatsRow) => r.operation, numeric: false }] : []),
    ...COLUMNS,
  ];
  const sortBy = (key: StatsColumn) => setSort(nextSort(sort, key));

  return (
    <div class="trace-stats" data-testid="trace-stats">
      <div class="trace-stats-bar" role="radiogroup" aria-label="Group by">
        <span class="muted">Group by</span>
        {(["service", "operation"] as const).map((g) => (
          <label key={g}>
            <input type="radio" name="stats-grouping" checked={grouping === g} onChange={() => setGrouping(g)} />
            {g === "service" ? "Service" : "Service and operation"}
          </label>
        ))}
        <span class="muted">
          {tree.nodes.length} spans · trace {formatDuration(stats.durationUs / 1000)}
        </span>
      </div>
      <table class="grid trace-stats-table">
        <thead>
          <tr>
            {columns.map((c) => {
              const active = sort.column === c.key;
              return (
                <th
                  key={c.key}
                  class={c.numeric ? "num" : undefined}
                  aria-sort={active ? (sort.descending ? "descending" : "ascending") : "none"}
                >
                  <button type="button" class="link" onClick={() => sortBy(c.key)}>
                    {c.label}
                    {active ? (sort.descending ? " ▼" : " ▲") : ""}
                  </button>
                </th>
              );
            })}
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={`${r.service}\u0000${r.operation}`} data-testid="stats-row">
              {columns.map((c) =>
                c.key === "service" ? (
                  <td key={c.key}>
                    <span class="stats-swatch" style={{ background: serviceColor(r.service) }} aria-hidden="true" />
                    {r.service}
                  </td>
                ) : (
                  <td key={c.key} class={c.numeric ? (c.key === "errorCount" && r.errorCount > 0 ? "num stats-error" : "num") : undefined} data-col={c.key}>
                    {c.cell(r)}
                  </td>
                ),
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
