// One trace (/ui/traces/{traceId}?span=&view=): the header, the view tabs, the timeline with
// the selected span's details beside it, and the trace's logs. The selected span and the
// view live in the URL, so a copied link opens the same span in the same view.
import { useCallback, useMemo, useState } from "preact/hooks";
import { ApiError, apiGet } from "../api";
import { ErrorBox, Loading } from "../components/status";
import { useApi } from "../hooks";
import { href, navigate, withQuery } from "../router";
import type { Span, TraceResponse } from "../trace/model";
import { addUs, nanoToEpochMs } from "../trace/model";
import { buildTree } from "../trace/tree";
import type { TraceTree } from "../trace/tree";
import { droppedSpans } from "../traceview/dropped";
import { SpanDetails } from "../traceview/details";
import { TraceHeader } from "../traceview/header";
import { LogList } from "../traceview/logs";
import { type SelectHow, Timeline } from "../traceview/timeline";
import { VIEWS, type ViewId, viewOf } from "../traceview/views";
import "../traceview/page.css";
import type { PageProps } from "./index";

async function loadSpans(traceId: string, fromFile: boolean, signal: AbortSignal): Promise<Span[]> {
  if (fromFile) {
    const spans = droppedSpans(traceId);
    if (spans === undefined) throw new Error("This trace came from a dropped file that is no longer open in this tab; drop the file again.");
    return spans;
  }
  const body = await apiGet<TraceResponse>(`/api/traces/${encodeURIComponent(traceId)}`, undefined, signal);
  return body.spans;
}

type Built = { ok: true; tree: TraceTree; spans: readonly Span[] } | { ok: false; error: unknown };

export function TracePage({ route }: PageProps) {
  const traceId = (route.params.traceId ?? "").toLowerCase();
  const fromFile = route.query.get("source") === "file";
  const loaded = useApi((signal) => loadSpans(traceId, fromFile, signal), [traceId, fromFile]);
  const built = useMemo<Built | null>(() => {
    if (loaded.state !== "ok") return null;
    try {
      return { ok: true, tree: buildTree(loaded.data), spans: loaded.data };
    } catch (error) {
      // A malformed time in a dropped file: say which value, rather than draw nonsense.
      return { ok: false, error };
    }
  }, [loaded]);

  if (loaded.state === "loading") return <Loading what={`trace ${traceId}`} />;
  if (loaded.state === "error") {
    const err = loaded.error;
    if (err instanceof ApiError && err.status === 404) {
      return (
        <div class="error-box" role="alert" data-testid="trace-not-found">
          <strong>No trace with this id</strong>
          <div>
            There is no trace <code>{traceId}</code> on this server (for this tenant). It may have expired, or its spans
            have not arrived yet. <a href={href("/traces")}>Search traces</a>
          </div>
        </div>
      );
    }
    return <ErrorBox error={err} title={`Trace ${traceId} could not be loaded`} />;
  }
  if (built === null) return <Loading what={`trace ${traceId}`} />;
  if (!built.ok) return <ErrorBox error={built.error} title="This trace cannot be drawn" />;
  return <TraceView traceId={traceId} tree={built.tree} spans={built.spans} query={route.query} />;
}

function TraceView({
  traceId,
  tree,
  spans,
  query,
}: {
  traceId: string;
  tree: TraceTree;
  spans: readonly Span[];
  query: URLSearchParams;
}) {
  const view: ViewId = viewOf(query.get("view"));
  const spanParam = query.get("span");
  const selected = spanParam ? (tree.bySpanId.get(spanParam.toLowerCase()) ?? null) : null;
  const [detailsOpen, setDetailsOpen] = useState(true);
  const path = `/traces/${traceId}`;

  // The latest query through a ref would also do; the callbacks only need the current URL.
  const select = useCallback(
    (key: string, how: SelectHow) => {
      const node = tree.byKey.get(key);
      if (!node) return;
      const current = new URLSearchParams(location.search);
      navigate(href(path, withQuery(current, { span: node.spanId })), { replace: how === "key" });
    },
    [tree, path],
  );
  const selectSpanId = useCallback(
    (spanId: string) => {
      const current = new URLSearchParams(location.search);
      navigate(href(path, withQuery(current, { span: spanId })));
      setDetailsOpen(true);
    },
    [path],
  );
  const open = useCallback(() => setDetailsOpen(true), []);
  const close = useCallback(() => setDetailsOpen(false), []);

  const windowMs = useMemo(
    () => ({
      startMs: nanoToEpochMs(addUs(tree.base, tree.startUs)),
      endMs: nanoToEpochMs(addUs(tree.base, tree.endUs)) + 1,
    }),
    [tree],
  );

  const current = VIEWS.find((v) => v.id === view) ?? VIEWS[0]!;
  let body;
  if (current.id === "timeline") {
    body = (
      <div class="tv-body">
        <Timeline tree={tree} selectedKey={selected?.key ?? null} onSelect={select} onOpen={open} onClose={close} />
        {selected && detailsOpen && (
          <SpanDetails tree={tree} node={selected} traceId={traceId} windowMs={windowMs} onClose={close} />
        )}
      </div>
    );
  } else {
    const Other = current.component!;
    body = (
      <div class="tv-body tv-other">
        <Other spans={spans} tree={tree} selectedSpanId={selected?.spanId ?? null} onSelect={selectSpanId} traceId={traceId} />
      </div>
    );
  }

  return (
    <div class="tv-page">
      <TraceHeader tree={tree} traceId={traceId} />
      {spanParam && selected === null && (
        <div class="error-box" role="status">
          This trace has no span <code>{spanParam}</code>.
        </div>
      )}
      <div class="tv-tabs" role="tablist" aria-label="Trace views">
        {VIEWS.map((v) => (
          <button
            key={v.id}
            type="button"
            role="tab"
            aria-selected={v.id === current.id}
            onClick={() => navigate(href(path, withQuery(new URLSearchParams(location.search), { view: v.id })))}
          >
            {v.label}
          </button>
        ))}
      </div>
      {body}
      <TraceLogs traceId={traceId} windowMs={windowMs} />
    </div>
  );
}

/** Collapsed at first and loaded on first opening, so a large trace opens without waiting on logs. */
function TraceLogs({ traceId, windowMs }: { traceId: string; windowMs: { startMs: number; endMs: number } }) {
  const [opened, setOpened] = useState(false);
  return (
    <details class="tv-trace-logs" onToggle={(e) => (e.currentTarget as HTMLDetailsElement).open && setOpened(true)}>
      <summary>Logs of this trace</summary>
      {opened && (
        <LogList scope={{ traceId, startMs: windowMs.startMs, endMs: windowMs.endMs }} empty="No logs carry this trace's id." />
      )}
    </details>
  );
}
