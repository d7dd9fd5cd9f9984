// Trace search (/ui/traces?<the /api/traces parameters>&lookback=&sort=): the form, a trace
// id lookup, a trace opened from an OTLP/JSON file, the results as a scatter plot and a
// sortable table, paging by cursor, and picking two traces to compare. The URL holds the
// whole state (SPEC §9).
import { useEffect, useMemo, useState } from "preact/hooks";
import { ApiError, apiGet } from "../api";
import { DropZone } from "../components/dropzone";
import { Empty, ErrorBox, Loading, SendDataHint } from "../components/status";
import { useApi } from "../hooks";
import { href, navigate, withQuery } from "../router";
import { SearchFormView } from "../search/form";
import { LookupForm } from "../search/lookup";
import { apiQuery, queryFromForm, searchKey, zoomQuery } from "../search/params";
import { ScatterPlot } from "../search/plot";
import { formatSort, nextSort, parseSort, sortTraces } from "../search/sort";
import type { SortKey } from "../search/sort";
import { ResultTable } from "../search/table";
import type { TraceSearchPage, TraceSummary } from "../types";
import type { PageProps } from "./index";

interface More {
  /** Pages loaded by "Load more" belong to the one request (window and all) they follow. */
  readonly api: URLSearchParams | null;
  readonly traces: readonly TraceSummary[];
  readonly cursor: string | null;
  readonly busy: boolean;
  readonly error: unknown;
}

/** The URL parameter an API 400 message names (`minDuration: ...`), to mark its field. */
function invalidParam(error: unknown): string | null {
  if (!(error instanceof ApiError) || error.status !== 400) return null;
  return /^(attr\.[^:]+|[A-Za-z]+):/.exec(error.message)?.[1] ?? null;
}

export function TracesPage({ route, session }: PageProps) {
  const query = route.query;
  const key = searchKey(query);
  // The same search submitted again (a relative window moves on) asks the server again.
  const [rerun, setRerun] = useState(0);
  // A cursor is bound to its query: later pages must send the very window of the first.
  const api = useMemo(() => apiQuery(query, Date.now()), [key, rerun]);
  const results = useApi((signal) => apiGet<TraceSearchPage>("/api/traces", api, signal), [api]);
  const [more, setMore] = useState<More>({ api: null, traces: [], cursor: null, busy: false, error: null });
  const [picked, setPicked] = useState<readonly string[]>([]);
  useEffect(() => setPicked([]), [key]);

  const ok = results.state === "ok" ? results.data : null;
  const extra = more.api === api && ok ? more : null;
  const traces = useMemo(
    () => (ok ? (extra?.traces.length ? [...ok.traces, ...extra.traces] : ok.traces) : []),
    [ok, extra?.traces],
  );
  const cursor = ok ? (extra?.traces.length ? extra.cursor : ok.nextCursor) : null;
  const sort = parseSort(query.get("sort"));
  const sorted = useMemo(() => sortTraces(traces, sort), [traces, sort?.key, sort?.desc]);

  async function loadMore() {
    if (!cursor || !ok) return;
    const base = extra ?? { api, traces: [], cursor: null, busy: false, error: null };
    setMore({ ...base, busy: true, error: null });
    try {
      const page = await apiGet<TraceSearchPage>("/api/traces", withQuery(api, { cursor }));
      setMore({ api, traces: [...base.traces, ...page.traces], cursor: page.nextCursor, busy: false, error: null });
    } catch (error) {
      setMore({ ...base, busy: false, error });
    }
  }

  function onSort(column: SortKey) {
    // A sort re-orders what is loaded; it is not a new search, so it adds no history entry.
    navigate(href("/traces", withQuery(query, { sort: formatSort(nextSort(sort, column)) })), { replace: true });
  }

  function onPick(traceId: string, on: boolean) {
    setPicked((list) => (on ? [...list.filter((id) => id !== traceId), traceId].slice(-2) : list.filter((id) => id !== traceId)));
  }

  // With no condition but time, nothing found means nothing was sent here (in that window).
  const filtered = [...query.keys()].some((k) => !["lookback", "start", "end", "sort", "limit"].includes(k));
  const error = results.state === "error" ? results.error : null;

  return (
    <div class="search-page">
      <SearchFormView
        query={query}
        invalid={invalidParam(error)}
        onSearch={(form) => {
          const next = href("/traces", queryFromForm(form, query));
          if (next === location.pathname + location.search) setRerun((n) => n + 1);
          else navigate(next);
        }}
      />
      <section class="results" aria-label="Results" data-ready={results.state === "ok" ? "search" : undefined}>
        <div class="search-tools">
          <LookupForm />
          <DropZone />
        </div>
        {results.state === "loading" && <Loading what="traces" />}
        {error !== null && <ErrorBox error={error} title="Trace search failed" />}
        {ok && traces.length === 0 &&
          (filtered ? (
            <Empty>
              <p data-testid="no-match">No traces match these conditions in this time window. Widen the window or drop a condition.</p>
            </Empty>
          ) : (
            <SendDataHint session={session} signal="traces" />
          ))}
        {ok && traces.length > 0 && (
          <>
            <ScatterPlot
              traces={traces}
              onOpen={(id) => navigate(href(`/traces/${id}`))}
              onZoom={(from, to) => navigate(href("/traces", zoomQuery(query, from, to)))}
            />
            <div class="results-bar">
              <span data-testid="result-count">
                {traces.length} trace{traces.length === 1 ? "" : "s"}
                {cursor ? " (more available)" : ""}
              </span>
              <button
                type="button"
                disabled={picked.length !== 2}
                onClick={() => navigate(href(`/compare/${picked[0] ?? ""}/${picked[1] ?? ""}`))}
                title="Pick two traces in the table to compare them"
              >
                Compare{picked.length ? ` (${picked.length}/2)` : ""}
              </button>
            </div>
            <ResultTable traces={sorted} sort={sort} onSort={onSort} picked={picked} onPick={onPick} />
          </>
        )}
        {extra?.error != null && <ErrorBox error={extra.error} title="Loading more traces failed" />}
        {cursor && (
          <button type="button" disabled={extra?.busy === true} onClick={() => void loadMore()}>
            {extra?.busy === true ? "Loading…" : "Load more"}
          </button>
        )}
      </section>
    </div>
  );
}
