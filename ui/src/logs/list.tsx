// The log records, newest first: one line each (time, severity, service, body) that opens,
// by click or keyboard, to everything the record carries.
import { useState } from "preact/hooks";
import { formatTime, nsToMs } from "../format";
import { usePrefs } from "../prefs";
import { href } from "../router";
import type { Attributes, AttributeValue, LogRecord } from "../types";
import { bodyText, recordTimeMs } from "./params";
import { SEVERITY_COLORS, severityClass, severityLabel } from "./severity";

export function LogTable({ logs }: { logs: readonly LogRecord[] }) {
  const { timeZone } = usePrefs();
  const [open, setOpen] = useState<ReadonlySet<number>>(new Set());
  const toggle = (i: number) => {
    const next = new Set(open);
    if (next.has(i)) next.delete(i);
    else next.add(i);
    setOpen(next);
  };
  const onKey = (event: KeyboardEvent, i: number) => {
    const row = event.currentTarget as HTMLElement;
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      toggle(i);
    } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const rows = Array.from(row.closest("tbody")?.querySelectorAll<HTMLElement>("tr.log-row") ?? []);
      rows[rows.indexOf(row) + (event.key === "ArrowDown" ? 1 : -1)]?.focus();
    }
  };
  return (
    <table class="grid log-table" data-testid="log-results" aria-label="Log records">
      <thead>
        <tr>
          <th class="log-time">Time</th>
          <th>Severity</th>
          <th>Service</th>
          <th>Body</th>
        </tr>
      </thead>
      <tbody>
        {logs.flatMap((log, i) => {
          const isOpen = open.has(i);
          const cls = severityClass(log.severityNumber);
          const rows = [
            <tr
              key={`r${i}`}
              class="log-row"
              tabIndex={0}
              aria-expanded={isOpen}
              data-severity={cls}
              onClick={() => toggle(i)}
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
            </tr>,
          ];
          if (isOpen) {
            rows.push(
              <tr key={`d${i}`} class="log-details">
                <td colSpan={4}>
                  <LogDetails log={log} />
                </td>
              </tr>,
            );
          }
          return rows;
        })}
      </tbody>
    </table>
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
