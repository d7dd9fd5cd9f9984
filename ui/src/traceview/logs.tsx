// Logs next to the spans that wrote them: GET /api/logs by trace id (and span id) over the
// trace's time window, newest first, paged by cursor; a row opens to its attributes.
import { useState } from "preact/hooks";
import { apiGet } from "../api";
import { ErrorBox, Loading } from "../components/status";
import { formatTime } from "../format";
import { useApi } from "../hooks";
import { bodyText, recordTimeMs } from "../logs/params";
import { SEVERITY_COLORS, severityClass, severityLabel } from "../logs/severity";
import { usePrefs } from "../prefs";
import type { LogPage, LogRecord } from "../types";
import { AttrTable } from "./attrs";
import { type LogScope, logQuery } from "./logquery";
import "./logs.css";

/** Resolves after `ms` unless aborted first (then it rejects with the abort). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new DOMException("aborted", "AbortError"));
    });
  });
}

/**
 * `settleMs` waits before asking, so moving the selection through many spans with the
 * keyboard sends one request for the span it stops on instead of one per row passed.
 */
export function LogList({ scope, empty, settleMs = 0 }: { scope: LogScope; empty: string; settleMs?: number }) {
  const key = `${scope.traceId}/${scope.spanId ?? ""}/${scope.startMs}/${scope.endMs}`;
  const first = useApi(async (signal) => {
    if (settleMs > 0) await pause(settleMs, signal);
    return apiGet<LogPage>("/api/logs", logQuery(scope), signal);
  }, [key]);
  const [more, setMore] = useState<{ key: string; logs: LogRecord[]; cursor: string | null; error: unknown }>({
    key: "",
    logs: [],
    cursor: null,
    error: null,
  });
  const [busy, setBusy] = useState(false);
  if (first.state === "loading") return <Loading what="logs" />;
  if (first.state === "error") return <ErrorBox error={first.error} title="The logs could not be loaded" />;
  const extra = more.key === key ? more : { key, logs: [], cursor: null, error: null };
  const logs = [...first.data.logs, ...extra.logs];
  const cursor = extra.logs.length > 0 ? extra.cursor : first.data.nextCursor;

  async function loadMore() {
    if (!cursor) return;
    setBusy(true);
    try {
      const page = await apiGet<LogPage>("/api/logs", logQuery(scope, cursor));
      setMore({ key, logs: [...extra.logs, ...page.logs], cursor: page.nextCursor, error: null });
    } catch (error) {
      setMore({ ...extra, error });
    } finally {
      setBusy(false);
    }
  }

  if (logs.length === 0) return <p class="muted tv-logs-empty">{empty}</p>;
  return (
    <div class="tv-logs" data-testid={scope.spanId ? "span-logs" : "trace-logs"}>
      <ul class="tv-log-list">
        {logs.map((log, i) => (
          <LogRow key={i} log={log} />
        ))}
      </ul>
      {extra.error !== null && <ErrorBox error={extra.error} title="More logs could not be loaded" />}
      {cursor && (
        <button type="button" disabled={busy} onClick={() => void loadMore()}>
          {busy ? "Loading…" : "More logs"}
        </button>
      )}
    </div>
  );
}

function LogRow({ log }: { log: LogRecord }) {
  const { timeZone } = usePrefs();
  // The same time, severity and body text as the Logs page shows for this record.
  const cls = severityClass(log.severityNumber);
  return (
    <li class="tv-log">
      <details>
        <summary>
          <span class="mono muted tv-log-time">{formatTime(recordTimeMs(log.timeUnixNano, log.observedTimeUnixNano), timeZone, false)}</span>
          <span class="tv-sev" data-severity={cls} style={{ color: SEVERITY_COLORS[cls] }}>
            {severityLabel(log.severityNumber, log.severityText)}
          </span>
          <span class="tv-log-svc muted">{log.service}</span>
          <span class="tv-log-body">{bodyText(log.body)}</span>
        </summary>
        <div class="tv-log-more">
          {log.spanId && (
            <div class="muted mono">
              span {log.spanId}
              {log.eventName ? ` · event ${log.eventName}` : ""}
            </div>
          )}
          <h5>Attributes</h5>
          <AttrTable attrs={log.attributes} />
          <h5>Resource</h5>
          <AttrTable attrs={log.resource} />
          {log.scope.name && (
            <div class="muted">
              scope {log.scope.name} {log.scope.version}
            </div>
          )}
        </div>
      </details>
    </li>
  );
}
