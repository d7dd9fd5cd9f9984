// The log records, newest first: one line each (time, severity, service, body), of which
// only those in view are rendered, so every "Load more" costs the rows on screen, not all
// loaded so far. A row opens, by click or keyboard, to everything the record carries in a
// panel under the list (rows keep one height, which the windowing relies on).
import { useEffect, useRef, useState } from "preact/hooks";
import { formatTime, nsToMs } from "../format";
import { usePrefs } from "../prefs";
import { href } from "../router";
import { useVisibleRows } from "../search/use-virtual";
import { scrollToShow } from "../search/virtual";
import type { Attributes, AttributeValue, LogRecord } from "../types";
import { bodyText, recordTimeMs } from "./params";
import { SEVERITY_COLORS, severityClass, severityLabel } from "./severity";

/** Must match `.log-table tbody tr` in logs.css. */
const ROW_HEIGHT = 28;
const OVERSCAN = 20;
const PANEL_ID = "log-detail-panel";

export function LogTable({ logs }: { logs: readonly LogRecord[] }) {
  const { timeZone } = usePrefs();
  const [open, setOpen] = useState<number | null>(null);
  // The row Tab reaches (one per list) and the one keyboard moves go to.
  const [active, setActive] = useState(0);
  const focusPending = useRef<number | null>(null);
  const { scroller, first, last } = useVisibleRows(logs.length, ROW_HEIGHT, OVERSCAN);

  // A row moved to by keyboard may only be rendered once the list has scrolled to it.
  useEffect(() => {
    const index = focusPending.current;
    if (index === null) return;
    const row = scroller.current?.querySelector<HTMLElement>(`tr[data-index="${index}"]`);
    if (row) {
      focusPending.current = null;
      row.focus({ preventScroll: true });
    }
  });

  const toggle = (i: number) => setOpen(open === i ? null : i);
  const moveTo = (to: number) => {
    const next = Math.max(0, Math.min(logs.length - 1, to));
    const el = scroller.current;
    if (el) {
      const head = el.querySelector("thead")?.offsetHeight ?? 0;
      el.scrollTop = scrollToShow(next, ROW_HEIGHT, el.scrollTop, el.clientHeight, head);
    }
    setActive(next);
    focusPending.current = next;
  };
  const page = () => Math.max(1, Math.floor((scroller.current?.clientHeight ?? ROW_HEIGHT) / ROW_HEIGHT) - 1);
  const onKey = (event: KeyboardEvent, i: number) => {
    const moves: Record<string, number> = {
      ArrowDown: i + 1,
      ArrowUp: i - 1,
      PageDown: i + page(),
      PageUp: i - page(),
      Home: 0,
      End: logs.length - 1,
    };
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      toggle(i);
    } else if (event.key in moves) {
      event.preventDefault();
      moveTo(moves[event.key] ?? i);
    }
  };
  // Tab reaches the list at the last row used, or the first in view when that one is not.
  const tabStop = active >= first && active < last ? active : first;
  const shown = open !== null ? logs[open] : undefined;
  return (
    <>
      <div class="log-scroll" ref={scroller} data-testid="log-scroll">
        <table class="grid log-table" data-testid="log-results" aria-label="Log records" aria-rowcount={logs.length + 1}>
          <thead>
            <tr aria-rowindex={1}>
              <th class="log-time">Time</th>
              <th>Severity</th>
              <th>Service</th>
              <th>Body</th>
            </tr>
          </thead>
          <tbody>
            {first > 0 && <tr class="spacer" aria-hidden="true" style={{ height: `${first * ROW_HEIGHT}px` }} />}
            {logs.slice(first, last).map((log, n) => {
              const i = first + n;
              const isOpen = open === i;
              const cls = severityClass(log.severityNumber);
              return (
                <tr
                  key={i}
                  class="log-row"
                  data-index={i}
                  aria-rowindex={i + 2}
                  tabIndex={i === tabStop ? 0 : -1}
                  aria-expanded={isOpen}
                  aria-controls={isOpen ? PANEL_ID : undefined}
                  data-severity={cls}
                  onClick={() => {
                    setActive(i);
                    toggle(i);
                  }}
                  onFocus={() => setActive(i)}
                  onKeyDown={(e) => onKey(e, i)}
                >
                  <td class="log-time mono">{formatTime(recordTimeMs(log.timeUnixNano, log.observedTimeUnixNano), timeZone)}</td>
                  <td>
                    <span class="severity" style={{ color: SEVERITY_COLORS[cls], borderColor: SEVERITY_COLORS[cls] }}>
                      {severityLabel(log.severityNumber, log.severityText)}
                    </span>
                  </td>
                  <td>{log.service}</td>
                  <td class="log-body">{bodyText(log.body)}</td>
                </tr>
              );
            })}
            {last < logs.length && <tr class="spacer" aria-hidden="true" style={{ height: `${(logs.length - last) * ROW_HEIGHT}px` }} />}
          </tbody>
        </table>
      </div>
      {shown && open !== null && (
        <section class="log-detail-panel" id={PANEL_ID} aria-label="Log record details">
          <div class="log-detail-head">
            <span class="muted">
              Record {open + 1} of {logs.length}
            </span>
            <button type="button" class="link" onClick={() => setOpen(null)}>
              Close
            </button>
          </div>
          <LogDetails log={shown} />
        </section>
      )}
    </>
  );
}

function LogDetails({ log }: { log: LogRecord }) {
  const { timeZone } = usePrefs();
  return (
    <div class="log-detail-body" data-testid="log-details">
      <pre class="log-full-body">{typeof log.body === "string" ? log.body : JSON.stringify(log.body, null, 2)}</pre>
      <dl class="log-ids">
        {log.traceId && (
          <>
            <dt>Trace</dt>
            <dd>
              <a class="mono" href={href(`/traces/${log.traceId}`, log.spanId ? new URLSearchParams({ span: log.spanId }) : undefined)} data-testid="log-trace-link">
                {log.traceId}
              </a>
            </dd>
          </>
        )}
        {log.spanId && (
          <>
            <dt>Span</dt>
            <dd class="mono">{log.spanId}</dd>
          </>
        )}
        {log.eventName && (
          <>
            <dt>Event</dt>
            <dd>{log.eventName}</dd>
          </>
        )}
        <dt>Severity</dt>
        <dd>
          {log.severityText || "–"} ({log.severityNumber})
        </dd>
        <dt>Observed</dt>
        <dd>{log.observedTimeUnixNano && log.observedTimeUnixNano !== "0" ? formatTime(nsToMs(log.observedTimeUnixNano), timeZone) : "–"}</dd>
        <dt>Scope</dt>
        <dd>
          {log.scope.name || "–"}
          {log.scope.version && <span class="muted"> {log.scope.version}</span>}
        </dd>
        {log.flags ? (
          <>
            <dt>Flags</dt>
            <dd>{log.flags}</dd>
          </>
        ) : null}
      </dl>
      <AttributeTable title="Attributes" attributes={log.attributes} />
      <AttributeTable title="Resource" attributes={log.resource} />
    </div>
  );
}

function AttributeTable({ title, attributes }: { title: string; attributes: Attributes }) {
  const entries = Object.entries(attributes);
  return (
    <section class="log-attrs">
      <h4>{title}</h4>
      {entries.length === 0 ? (
        <span class="muted">none</span>
      ) : (
        <table class="kv">
          <tbody>
            {entries.map(([key, value]) => (
              <tr key={key}>
                <th class="mono">{key}</th>
                <td class="mono">{valueText(value)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function valueText(value: AttributeValue): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}
