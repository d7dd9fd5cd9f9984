// Log search (/ui/logs?<the /api/logs parameters>&lookback=): the form, the volume by
// severity over the window, and the records newest first with cursor paging.
import { useMemo, useState } from "preact/hooks";
import { apiGet } from "../api";
import { ErrorBox, Loading, SendDataHint } from "../components/status";
import { useApi } from "../hooks";
import { LogSearchForm } from "../logs/form";
import { VolumeChart } from "../logs/histogram";
import { LogTable } from "../logs/list";
import "../logs/logs.css";
import { logsApiQuery, volumeApiQuery, withRange } from "../logs/params";
import type { LogVolume } from "../logs/volume";
import { href, navigate, withQuery } from "../router";
import type { LogPage, LogRecord } from "../types";
import type { PageProps } from "./index";

export function LogsPage({ route, session }: PageProps) {
  const query = route.query;
  const key = query.toString();
  const [refreshed, setRefreshed] = useState(0);
  // One "now" per question: the list, its next pages (a cursor is bound to its query) and
  // the histogram all read the same window.
  const now = useMemo(() => Date.now(), [key, refreshed]);
  const api = useMemo(() => logsApiQuery(query, now), [key, now]);
  const results = useApi((signal) => apiGet<LogPage>("/api/logs", api, signal), [api]);
  const volume = useApi((signal) => apiGet<LogVolume>("/api/logs/volume", volumeApiQuery(query, now), signal), [key, now]);
  const [extra, setExtra] = useState<{ api: URLSearchParams | null; logs: LogRecord[]; cursor: string | null }>({ api: null, logs: [], cursor: null });
  const [moreError, setMoreError] = useState<{ api: URLSearchParams; error: unknown } | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);

  const more = extra.api === api ? extra : { api, logs: [], cursor: null };
  const logs = results.state === "ok" ? [...results.data.logs, ...more.logs] : [];
  const cursor = results.state === "ok" ? (more.logs.length ? more.cursor : results.data.nextCursor) : null;

  async function loadMore() {
    if (!cursor) return;
    setLoadingMore(true);
    try {
      const page = await apiGet<LogPage>("/api/logs", withQuery(api, { cursor }));
      setExtra({ api, logs: [...more.logs, ...page.logs], cursor: page.nextCursor });
      setMoreError(null);
    } catch (error) {
      setMoreError({ api, error });
    } finally {
      setLoadingMore(false);
    }
  }

  // The same search submitted again is asked again: a relative window ends now, and the
  // pages loaded so far belong to the old window (navigate() ignores an unchanged URL).
  const search = (next: URLSearchParams) => {
    const url = href("/logs", next);
    if (url === location.pathname + location.search) setRefreshed((n) => n + 1);
    else navigate(url);
  };

  return (
    <div class="search-page logs-page">
      <LogSearchForm query={query} onSearch={search} />
      <section class="results" aria-label="Logs">
        <div class="logs-toolbar">
          <button type="button" onClick={() => setRefreshed((n) => n + 1)}>
            Refresh
          </button>
        </div>
        {volume.state === "loading" && <Loading what="log volume" />}
        {volume.state === "error" && <ErrorBox error={volume.error} title="Log volume failed" />}
        {volume.state === "ok" && volume.data.total > 0 && <VolumeChart volume={volume.data} onRange={(start, end) => search(withRange(query, start, end))} />}
        {results.state === "loading" && <Loading what="logs" />}
        {results.state === "error" && <ErrorBox error={results.error} title="Log search failed" />}
        {results.state === "ok" && logs.length === 0 && <SendDataHint session={session} signal="logs" />}
        {results.state === "ok" && logs.length > 0 && <LogTable key={`${key}@${now}`} logs={logs} />}
        {moreError && moreError.api === api && <ErrorBox error={moreError.error} title="Loading more logs failed" />}
        {cursor && (
          <button type="button" onClick={() => void loadMore()} disabled={loadingMore}>
            Load more
          </button>
        )}
        {results.state === "ok" && (
          <span class="muted log-count" data-ready="logs">
            {logs.length} record{logs.length === 1 ? "" : "s"}
            {cursor ? " (more available)" : ""}
          </span>
        )}
      </section>
    </div>
  );
}
