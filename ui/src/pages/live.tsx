// Live tail (/ui/live?signal=traces,logs&service=): spans and logs as they are committed,
// over /api/ws, with the traces they belong to one click away.
import { SendDataHint } from "../components/status";
import { useApi } from "../hooks";
import { formatDuration, formatTime } from "../format";
import type { Gap, LiveState } from "../live/connection";
import { LIVE_SIGNALS, liveFilters, subscribeMessage, type LiveRow, type LiveSignal, type TraceTally } from "../live/feed";
import "../live/live.css";
import "../logs/logs.css";
import { MAX_PAUSED, MAX_ROWS, useLive, type LiveView } from "../live/use-live";
import { SEVERITY_COLORS, severityClass, severityLabel } from "../logs/severity";
import { usePrefs } from "../prefs";
import { serviceNames } from "../services";
import { href, navigate, withQuery } from "../router";
import type { PageProps } from "./index";

const SIGNAL_LABELS: Record<LiveSignal, string> = { traces: "Spans", logs: "Logs" };

export function LivePage({ route, session }: PageProps) {
  const filters = liveFilters(route.query);
  const live = useLive(subscribeMessage(filters));
  const services = useApi((signal) => serviceNames(signal), []);
  const names = services.state === "ok" ? [...services.data] : [];
  if (filters.service && !names.includes(filters.service)) names.unshift(filters.service);
  // Services that started sending after the list was loaded are offered too.
  for (const row of live.rows) if (row.service && !names.includes(row.service)) names.push(row.service);

  const update = (patch: { signals?: LiveSignal[]; service?: string }) => {
    const signals = patch.signals ?? filters.signals;
    const query = withQuery(route.query, {
      signal: signals.length === LIVE_SIGNALS.length ? null : signals.join(","),
      service: patch.service ?? filters.service,
    });
    navigate(href("/live", query));
  };
  const toggleSignal = (s: LiveSignal, on: boolean) => {
    const next = LIVE_SIGNALS.filter((x) => (x === s ? on : filters.signals.includes(x)));
    if (next.length) update({ signals: next });
  };

  return (
    <div class="live-page">
      <div class="live-toolbar" role="toolbar" aria-label="Live tail controls">
        <ConnectionStatus state={live.state} subscribed={live.subscribed} />
        <fieldset class="live-signals">
          <legend class="visually-hidden">Signals</legend>
          {LIVE_SIGNALS.map((s) => (
            <label key={s} class="compact">
              <input type="checkbox" name={`signal-${s}`} checked={filters.signals.includes(s)} onChange={(e) => toggleSignal(s, e.currentTarget.checked)} />
              {SIGNAL_LABELS[s]}
            </label>
          ))}
        </fieldset>
        <label class="compact">
          Service
          <select name="service" value={filters.service} onChange={(e) => update({ service: e.currentTarget.value })}>
            <option value="">All services</option>
            {names.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
        <button type="button" aria-pressed={live.paused} onClick={() => live.setPaused(!live.paused)} data-testid="live-pause">
          {live.paused ? "Resume" : "Pause"}
        </button>
        {live.paused && (
          <span class="muted" data-testid="live-waiting" role="status">
            {live.waiting} new while paused
            {live.dropped > 0 && ` (only the newest ${MAX_PAUSED} will be shown)`}
          </span>
        )}
        <button type="button" onClick={live.clear}>
          Clear
        </button>
      </div>
      {live.serverError && (
        <div class="error-box" role="alert">
          The server refused the filter: {live.serverError}
        </div>
      )}
      <MissedNotice state={live.state} onDismiss={live.dismissGaps} />
      <div class="live-body">
        <section class="live-rows" aria-label="Live spans and logs">
          {live.rows.length === 0 ? (
            live.state.status === "open" ? (
              <>
                <p class="muted live-waiting-note">Waiting for spans and logs: whatever this server commits from now on appears here.</p>
                <SendDataHint session={session} signal="new spans or logs" />
              </>
            ) : (
              <p class="empty">Not connected yet.</p>
            )
          ) : (
            <LiveTable rows={live.rows} />
          )}
          {live.rows.length >= MAX_ROWS && <p class="muted">Showing the newest {MAX_ROWS} rows.</p>}
        </section>
        <aside class="live-traces" aria-label="New traces">
          <h3>New traces</h3>
          <TraceList traces={live.traces} />
        </aside>
      </div>
    </div>
  );
}

function ConnectionStatus({ state, subscribed }: { state: LiveState; subscribed: LiveView["subscribed"] }) {
  const text =
    state.status === "open"
      ? "Live"
      : state.status === "connecting"
        ? "Connecting…"
        : state.status === "reconnecting"
          ? `Disconnected; retrying${state.retryAt ? ` in ${Math.max(1, Math.round((state.retryAt - Date.now()) / 1000))}s` : ""} (attempt ${state.attempt})`
          : "Stopped";
  return (
    <span
      class={`live-status live-${state.status}`}
      role="status"
      aria-live="polite"
      data-testid="live-status"
      data-state={state.status}
      data-subscribed={subscribed ? `${subscribed.signals.join(",")}|${subscribed.service ?? ""}` : ""}
    >
      <span class="dot" aria-hidden="true" />
      {text}
      {state.status === "open" && subscribed && (
        <span class="muted">
          {" "}
          · {subscribed.signals.map((s) => (s === "traces" ? "spans" : s)).join(" and ")}
          {subscribed.service ? ` of ${subscribed.service}` : " of every service"}
        </span>
      )}
    </span>
  );
}

function MissedNotice({ state, onDismiss }: { state: LiveState; onDismiss: () => void }) {
  const { timeZone } = usePrefs();
  if (!state.gaps.length && !state.down) return null;
  const describe = (g: { code: number; reason: string }) =>
    g.code === 1013 ? "the server dropped this tab for falling behind" : g.reason ? `closed: ${g.reason} (${g.code})` : `connection lost (${g.code})`;
  const range = (g: Gap) => new URLSearchParams({ start: String(Math.floor(g.from)), end: String(Math.ceil(g.to)) });
  return (
    <div class="live-missed" role="alert" data-testid="missed-notice">
      {state.down && (
        <p>
          Disconnected since {formatTime(state.down.since, timeZone, false)} — {describe(state.down)}. Data sent meanwhile is missed here.
        </p>
      )}
      {state.gaps.map((g) => (
        <p key={g.from}>
          Missed data from {formatTime(g.from, timeZone, false)} to {formatTime(g.to, timeZone, false)} ({describe(g)}). Find it in{" "}
          <a href={href("/logs", range(g))}>logs</a> or <a href={href("/traces", range(g))}>traces</a>.
        </p>
      ))}
      {state.gaps.length > 0 && (
        <button type="button" class="link" onClick={onDismiss}>
          Dismiss
        </button>
      )}
    </div>
  );
}

function LiveTable({ rows }: { rows: readonly LiveRow[] }) {
  const { timeZone } = usePrefs();
  return (
    <table class="grid live-table" data-testid="live-rows">
      <thead>
        <tr>
          <th class="live-time">Time</th>
          <th class="live-kind">Kind</th>
          <th class="live-service">Service</th>
          <th>Span name / log body</th>
          <th class="live-trace">Trace</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((row) => (
          <tr key={row.id} data-kind={row.kind}>
            <td class="mono">{formatTime(row.timeMs, timeZone, false)}</td>
            <td>
              {row.kind === "span" ? (
                <span class={row.error ? "badge error" : "badge"}>{row.error ? "span ✕" : "span"}</span>
              ) : (
                <span class="severity" style={{ color: SEVERITY_COLORS[severityClass(row.severityNumber)], borderColor: SEVERITY_COLORS[severityClass(row.severityNumber)] }}>
                  {severityLabel(row.severityNumber, row.severityText)}
                </span>
              )}
            </td>
            <td>{row.service}</td>
            <td class="live-text">
              {row.kind === "span" ? (
                <>
                  {row.name || <span class="muted">span {row.spanId}</span>}
                  {row.durationMs !== null && <span class="muted"> {formatDuration(row.durationMs)}</span>}
                </>
              ) : (
                <span class="mono">{row.body}</span>
              )}
            </td>
            <td>
              {row.traceId && (
                <a class="mono" href={href(`/traces/${row.traceId}`, row.spanId ? new URLSearchParams({ span: row.spanId }) : undefined)}>
                  {row.traceId.slice(0, 8)}
                </a>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function TraceList({ traces }: { traces: readonly TraceTally[] }) {
  if (!traces.length) return <p class="muted">None yet.</p>;
  return (
    <ul class="live-trace-list" data-testid="live-traces">
      {traces.map((t) => (
        <li key={t.traceId}>
          <a href={href(`/traces/${t.traceId}`)} data-trace-id={t.traceId}>
            {t.service ? `${t.service}: ${t.name || "…"}` : t.traceId.slice(0, 16)}
          </a>
          <span class="muted">
            {" "}
            {t.spans} span{t.spans === 1 ? "" : "s"}
          </span>
          {t.errors > 0 && <span class="badge error">{t.errors} error{t.errors === 1 ? "" : "s"}</span>}
        </li>
      ))}
    </ul>
  );
}
