// The results as a table: sortable by any column (the sort is in the URL), services as
// coloured chips, and a checkbox per row to pick two traces to compare.
import { serviceColor } from "../colors";
import { formatDuration, formatTime, nsToMs } from "../format";
import { usePrefs } from "../prefs";
import { href } from "../router";
import type { TraceSummary } from "../types";
import type { Sort, SortKey } from "./sort";
import "./search.css";

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
  return (
    <table class="grid results-table" data-testid="trace-results">
      <thead>
        <tr>
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
        {traces.map((t) => {
          const checked = picked.includes(t.traceId);
          return (
            <tr key={t.traceId} data-trace-id={t.traceId} class={checked ? "picked" : undefined}>
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
              <td class="chips">
                {t.services.map((s) => (
                  <span key={s} class="chip" style={{ borderColor: serviceColor(s) }}>
                    <span class="chip-dot" style={{ background: serviceColor(s) }} />
                    {s}
                  </span>
                ))}
              </td>
              <td class="num">{t.spanCount}</td>
              <td class="num">{t.errorCount > 0 ? <span class="badge error">{t.errorCount}</span> : 0}</td>
              <td class="num">{formatDuration(t.durationMs)}</td>
              <td class="nowrap">{formatTime(nsToMs(t.startTimeUnixNano), timeZone)}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
