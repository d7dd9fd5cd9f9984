// The results as a table: sortable by any column (the sort is in the URL), services as
// coloured chips, and a checkbox per row to pick two traces to compare. Rows have one
// height and only those in view (plus a margin) are rendered, so 1,000 results cost as
// little as 50.
import { serviceColor } from "../colors";
import { formatDuration, formatTime, nsToMs } from "../format";
import { usePrefs } from "../prefs";
import { href } from "../router";
import type { TraceSummary } from "../types";
import type { Sort, SortKey } from "./sort";
import { useVisibleRows } from "./use-virtual";
import "./search.css";

/** Must match `.results-table tbody tr` in search.css. */
const ROW_HEIGHT = 28;
const OVERSCAN = 20;

const COLUMNS: readonly { key: SortKey; label: string; num?: boolean }[] = [
  { key: "root", label: "Root" },
  { key: "services", label: "Services" },
  { key: "spans", label: "Spans", num: true },
  { key: "errors", label: "Errors", num: true },
  { key: "duration", label: "Duration", num: true },
  { key: "start", label: "Start" },
];

export interface TableProps {
  readonly traces: readonly TraceSummary[];
  readonly sort: Sort | null;
  readonly onSort: (key: SortKey) => void;
  readonly picked: readonly string[];
  readonly onPick: (traceId: string, on: boolean) => void;
}

export function ResultTable({ traces, sort, onSort, picked, onPick }: TableProps) {
  const { timeZone } = usePrefs();
  const full = picked.length >= 2;
  const { scroller, first, last } = useVisibleRows(traces.length, ROW_HEIGHT, OVERSCAN);
  return (
    <div class="results-scroll" ref={scroller} data-testid="results-scroll">
      <table class="grid results-table" data-testid="trace-results" aria-rowcount={traces.length + 1}>
        <thead>
          <tr aria-rowindex={1}>
            <th class="pick">
              <span class="visually-hidden">Compare</span>
            </th>
            {COLUMNS.map((c) => {
              const on = sort?.key === c.key;
              return (
                <th
                  key={c.key}
                  class={c.num ? "num" : undefined}
                  aria-sort={on ? (sort.desc ? "descending" : "ascending") : "none"}
                >
                  <button type="button" class="sort" data-sort={c.key} onClick={() => onSort(c.key)}>
                    {c.label}
                    <span aria-hidden="true">{on ? (sort.desc ? " ▼" : " ▲") : ""}</span>
                  </button>
                </th>
              );
            })}
          </tr>
        </thead>
        <tbody>
          {first > 0 && <tr class="spacer" aria-hidden="true" style={{ height: `${first * ROW_HEIGHT}px` }} />}
          {traces.slice(first, last).map((t, i) => {
            const checked = picked.includes(t.traceId);
            return (
              <tr
                key={t.traceId}
                data-trace-id={t.traceId}
                aria-rowindex={first + i + 2}
                class={checked ? "picked" : undefined}
              >
                <td class="pick">
                  <input
                    type="checkbox"
                    aria-label={`Pick trace ${t.traceId} to compare`}
                    checked={checked}
                    disabled={!checked && full}
                    onChange={(e) => onPick(t.traceId, (e.target as HTMLInputElement).checked)}
                  />
                </td>
                <td>
                  <a href={href(`/traces/${t.traceId}`)}>
                    <span class="root-service">{t.rootService}</span>: {t.rootName}
                  </a>
                  {t.rootSpanMissing && <span class="badge">root span missing</span>}
                </td>
                <td title={t.services.join(", ")}>
                  <div class="chips">
                    {t.services.map((s) => (
                      <span key={s} class="chip" style={{ borderColor: serviceColor(s) }}>
                        <span class="chip-dot" style={{ background: serviceColor(s) }} />
                        {s}
                      </span>
                    ))}
                  </div>
                </td>
                <td class="num">{t.spanCount}</td>
                <td class="num">{t.errorCount > 0 ? <span class="badge error">{t.errorCount}</span> : 0}</td>
                <td class="num">{formatDuration(t.durationMs)}</td>
                <td class="nowrap">{formatTime(nsToMs(t.startTimeUnixNano), timeZone)}</td>
              </tr>
            );
          })}
          {last < traces.length && (
            <tr class="spacer" aria-hidden="true" style={{ height: `${(traces.length - last) * ROW_HEIGHT}px` }} />
          )}
        </tbody>
      </table>
    </div>
  );
}
