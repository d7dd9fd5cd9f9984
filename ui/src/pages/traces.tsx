// Trace search (/ui/traces?<the /api/traces parameters>): the form, the results, paging.
import { useState } from "preact/hooks";
import { apiGet } from "../api";
import { ErrorBox, Loading, SendDataHint } from "../components/status";
import { formatDuration, formatTime, nsToMs } from "../format";
import { useApi } from "../hooks";
import { usePrefs } from "../prefs";
import { href, navigate, withQuery } from "../router";
import { apiQuery, attributeFilters, DEFAULT_LOOKBACK } from "../search/params";
import type { TraceSearchPage, TraceSummary } from "../types";
import type { PageProps } from "./index";

const LOOKBACKS: readonly [string, string][] = [
  ["5m", "Last 5 minutes"],
  ["15m", "Last 15 minutes"],
  ["1h", "Last hour"],
  ["6h", "Last 6 hours"],
  ["24h", "Last 24 hours"],
  ["2d", "Last 2 days"],
  ["7d", "Last 7 days"],
];

export function TracesPage({ route, session }: PageProps) {
  const query = route.query;
  const key = query.toString();
  const services = useApi((signal) => apiGet<{ services: { name: string }[] }>("/api/services", { start: Date.now() - 7 * 86_400_000 }, signal), []);
  const [extra, setExtra] = useState<{ key: string; pages: TraceSummary[]; cursor: string | null }>({ key: "", pages: [], cursor: null });
  const results = useApi((signal) => apiGet<TraceSearchPage>("/api/traces", apiQuery(query, Date.now()), signal), [key]);

  function submit(event: Event) {
    event.preventDefault();
    const form = new FormData(event.target as HTMLFormElement);
    const patch: Record<string, string | string[] | null> = {};
    for (const name of ["service", "operation", "status", "minDuration", "maxDuration", "minTraceDuration", "maxTraceDuration", "limit", "lookback"]) {
      patch[name] = String(form.get(name) ?? "");
    }
    const next = withQuery(new URLSearchParams(), patch);
    for (const line of String(form.get("attrs") ?? "").split("\n")) {
      const at = line.indexOf("=");
      if (at > 0) next.append(`attr.${line.slice(0, at).trim()}`, line.slice(at + 1).trim());
    }
    navigate(href("/traces", next));
  }

  const more = extra.key === key ? extra : { key, pages: [], cursor: null };
  const traces = results.state === "ok" ? [...results.data.traces, ...more.pages] : [];
  const cursor = results.state === "ok" ? (more.pages.length ? more.cursor : results.data.nextCursor) : null;

  async function loadMore() {
    if (!cursor) return;
    const page = await apiGet<TraceSearchPage>("/api/traces", withQuery(apiQuery(query, Date.now()), { cursor }));
    setExtra({ key, pages: [...more.pages, ...page.traces], cursor: page.nextCursor });
  }

  return (
    <div class="search-page">
      <form class="search-form" onSubmit={submit} aria-label="Trace search">
        <label>
          Service
          <select name="service" value={query.get("service") ?? ""}>
            <option value="">All services</option>
            {services.state === "ok" && services.data.services.map((s) => <option key={s.name} value={s.name}>{s.name}</option>)}
          </select>
        </label>
        <label>
          Operation
          <input name="operation" value={query.get("operation") ?? ""} placeholder="substring of the span name" />
        </label>
        <label>
          Status
          <select name="status" value={query.get("status") ?? ""}>
            <option value="">Any</option>
            <option value="error">Error</option>
            <option value="ok">OK</option>
            <option value="unset">Unset</option>
          </select>
        </label>
        <label>
          Span duration
          <span class="pair">
            <input name="minDuration" value={query.get("minDuration") ?? ""} placeholder="min, e.g. 100ms" />
            <input name="maxDuration" value={query.get("maxDuration") ?? ""} placeholder="max" />
          </span>
        </label>
        <label>
          Trace duration
          <span class="pair">
            <input name="minTraceDuration" value={query.get("minTraceDuration") ?? ""} placeholder="min" />
            <input name="maxTraceDuration" value={query.get("maxTraceDuration") ?? ""} placeholder="max" />
          </span>
        </label>
        <label>
          Attributes
          <textarea name="attrs" rows={2} placeholder="http.status_code=500" value={attributeFilters(query).map(([k, v]) => `${k}=${v}`).join("\n")} />
        </label>
        <label>
          Time
          <select name="lookback" value={query.get("lookback") ?? DEFAULT_LOOKBACK}>
            {LOOKBACKS.map(([value, label]) => <option key={value} value={value}>{label}</option>)}
          </select>
        </label>
        <label>
          Limit
          <input name="limit" type="number" min={1} max={1000} value={query.get("limit") ?? "100"} />
        </label>
        <button type="submit">Find traces</button>
      </form>
      <section class="results" aria-label="Results">
        {results.state === "loading" && <Loading what="traces" />}
        {results.state === "error" && <ErrorBox error={results.error} title="Trace search failed" />}
        {results.state === "ok" && traces.length === 0 && <SendDataHint session={session} signal="traces" />}
        {results.state === "ok" && traces.length > 0 && <ResultTable traces={traces} />}
        {cursor && (
          <button type="button" onClick={() => void loadMore()}>
            More results
          </button>
        )}
        {results.state === "ok" && <span data-ready="search" hidden />}
      </section>
    </div>
  );
}

function ResultTable({ traces }: { traces: readonly TraceSummary[] }) {
  const { timeZone } = usePrefs();
  return (
    <table class="grid" data-testid="trace-results">
      <thead>
        <tr>
          <th>Root</th>
          <th>Services</th>
          <th>Spans</th>
          <th>Errors</th>
          <th>Duration</th>
          <th>Start</th>
        </tr>
      </thead>
      <tbody>
        {traces.map((t) => (
          <tr key={t.traceId}>
            <td>
              <a href={href(`/traces/${t.traceId}`)}>
                {t.rootService}: {t.rootName}
              </a>
              {t.rootSpanMissing && <span class="badge">root span missing</span>}
            </td>
            <td>{t.services.join(", ")}</td>
            <td class="num">{t.spanCount}</td>
            <td class="num">{t.errorCount}</td>
            <td class="num">{formatDuration(t.durationMs)}</td>
            <td>{formatTime(nsToMs(t.startTimeUnixNano), timeZone)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
