// Compare two traces (/ui/compare/{traceIdA}/{traceIdB}), as Jaeger's trace diff: both headers,
// then the merged (service: operation) structure with what B added, removed or changed and the
// mean durations on each side. The same pair's flame graphs and statistics are a tab away.
import { useMemo, useRef, useState } from "preact/hooks";
import { ApiError, apiGet } from "../api";
import { serviceColor } from "../colors";
import { DropZone } from "../components/dropzone";
import { ErrorBox, Loading } from "../components/status";
import { formatDuration, formatTime } from "../format";
import type { Loaded } from "../hooks";
import { useApi } from "../hooks";
import { usePrefs } from "../prefs";
import { href, navigate, withQuery } from "../router";
import type { DiffNode, DiffState, TraceDiff } from "../trace/diff";
import { diffTraces } from "../trace/diff";
import { droppedTrace } from "../trace/dropped";
import type { Span, TraceResponse } from "../trace/model";
import { nanoToEpochMs } from "../trace/model";
import type { TraceTree } from "../trace/tree";
import { buildTree } from "../trace/tree";
import { deltaText, diffRows, differsBelow } from "../traceviews/compareview";
import { FlameGraph } from "../traceviews/flame";
import { TraceStatsView } from "../traceviews/stats";
import type { PageProps } from "./index";
import "./compare.css";

interface Loaded1 {
  readonly spans: Span[];
  readonly tree: TraceTree;
  readonly fromFile: boolean;
}

async function loadTrace(traceId: string, fromFile: boolean, signal: AbortSignal): Promise<Loaded1> {
  if (fromFile) {
    const kept = droppedTrace(traceId);
    if (kept === undefined) throw new Error("This trace came from a file that is no longer open in this tab; open the file again.");
    return { spans: kept, tree: buildTree(kept), fromFile: true };
  }
  const data = await apiGet<TraceResponse>(`/api/traces/${encodeURIComponent(traceId)}`, undefined, signal);
  return { spans: data.spans, tree: buildTree(data.spans), fromFile: false };
}

const VIEWS = [
  ["structure", "Structure"],
  ["flamegraph", "Flame graphs"],
  ["stats", "Statistics"],
] as const;
type View = (typeof VIEWS)[number][0];

export function ComparePage({ route }: PageProps) {
  const idA = route.params.a ?? "";
  const idB = route.params.b ?? "";
  // `sourceA=file` / `sourceB=file`: that side is a trace opened from a file in this tab.
  const fileA = route.query.get("sourceA") === "file";
  const fileB = route.query.get("sourceB") === "file";
  const a = useApi((signal) => loadTrace(idA, fileA, signal), [idA, fileA]);
  const b = useApi((signal) => loadTrace(idB, fileB, signal), [idB, fileB]);
  const viewParam = route.query.get("view");
  const view: View = VIEWS.some(([v]) => v === viewParam) ? (viewParam as View) : "structure";
  const ready = a.state === "ok" && b.state === "ok";

  function setQuery(patch: Record<string, string | null>, replace = false) {
    navigate(href(route.path, withQuery(route.query, patch)), { replace });
  }

  return (
    <div class="compare-page" data-ready={ready ? "compare" : undefined}>
      <h1 class="compare-title">Compare traces</h1>
      <CompareForm key={`${idA}/${idB}`} idA={idA} idB={idB} query={route.query} />
      <DropZone
        label="Compare a trace from an OTLP/JSON file as A"
        linkTo={(id) => comparePath(id, idB, withQuery(route.query, { sourceA: "file" }))}
      />
      <div class="compare-headers">
        <TraceCard side="A" traceId={idA} loaded={a} />
        <TraceCard side="B" traceId={idB} loaded={b} />
      </div>
      {ready && (
        <>
          <div role="tablist" aria-label="Comparison views" class="compare-tabs">
            {VIEWS.map(([v, label]) => (
              <button
                key={v}
                type="button"
                role="tab"
                aria-selected={view === v}
                onClick={() => setQuery({ view: v === "structure" ? null : v })}
              >
                {label}
              </button>
            ))}
          </div>
          <div role="tabpanel" class="compare-panel">
            {view === "structure" && <DiffView a={a.data.tree} b={b.data.tree} idA={idA} idB={idB} />}
            {view !== "structure" &&
              (
                [
                  ["A", idA, a.data, "spanA"],
                  ["B", idB, b.data, "spanB"],
                ] as const
              ).map(([side, id, t, param]) => {
                const props = {
                  spans: t.spans,
                  tree: t.tree,
                  traceId: id,
                  selectedSpanId: route.query.get(param),
                  onSelect: (spanId: string) => setQuery({ [param]: spanId }, true),
                };
                return (
                  <section key={side} class="compare-side-view" aria-label={`Trace ${side}`}>
                    <h2>
                      {side} · <code>{id}</code>
                    </h2>
                    {view === "flamegraph" ? <FlameGraph {...props} /> : <TraceStatsView {...props} />}
                  </section>
                );
              })}
          </div>
        </>
      )}
    </div>
  );
}

function comparePath(a: string, b: string, query: URLSearchParams): string {
  return href(`/compare/${encodeURIComponent(a)}/${encodeURIComponent(b)}`, query);
}

function CompareForm({ idA, idB, query }: { idA: string; idB: string; query: URLSearchParams }) {
  const [ids, setIds] = useState({ a: idA, b: idB });
  const submit = () => {
    const a = ids.a.trim();
    const b = ids.b.trim();
    if (!a || !b) return;
    // A side keeps coming from its file only while its id is unchanged.
    const patch = {
      spanA: null,
      spanB: null,
      sourceA: a === idA ? query.get("sourceA") : null,
      sourceB: b === idB ? query.get("sourceB") : null,
    };
    navigate(comparePath(a, b, withQuery(query, patch)));
  };
  const swap = () =>
    navigate(
      comparePath(
        idB,
        idA,
        withQuery(query, { spanA: query.get("spanB"), spanB: query.get("spanA"), sourceA: query.get("sourceB"), sourceB: query.get("sourceA") }),
      ),
    );
  return (
    <form
      class="compare-form"
      aria-label="Traces to compare"
      onSubmit={(e) => {
        e.preventDefault();
        submit();
      }}
    >
      <label>
        Trace A
        <input name="a" value={ids.a} onInput={(e) => setIds({ ...ids, a: (e.target as HTMLInputElement).value })} spellcheck={false} />
      </label>
      <label>
        Trace B
        <input name="b" value={ids.b} onInput={(e) => setIds({ ...ids, b: (e.target as HTMLInputElement).value })} spellcheck={false} />
      </label>
      <button type="submit" class="primary">
        Compare
      </button>
      <button type="button" onClick={swap} title="Make B the baseline">
        Swap A and B
      </button>
    </form>
  );
}

function TraceCard({ side, traceId, loaded }: { side: "A" | "B"; traceId: string; loaded: Loaded<Loaded1> }) {
  const prefs = usePrefs();
  if (loaded.state === "loading") return <div class="compare-card"><Loading what={`trace ${side}`} /></div>;
  if (loaded.state === "error") {
    const missing = loaded.error instanceof ApiError && loaded.error.status === 404;
    return (
      <div class="compare-card" data-testid={`compare-card-${side}`}>
        <ErrorBox error={loaded.error} title={missing ? `Trace ${side} (${traceId}) was not found` : `Trace ${side} could not be loaded`} />
      </div>
    );
  }
  const { tree, spans, fromFile } = loaded.data;
  const top = tree.root ?? tree.roots[0];
  const startMs = nanoToEpochMs(tree.base) + tree.startUs / 1000;
  return (
    <div class="compare-card" data-testid={`compare-card-${side}`}>
      <div class="compare-card-side">{side}</div>
      <div>
        <a href={href(`/traces/${traceId}`, fromFile ? new URLSearchParams({ source: "file" }) : undefined)} class="compare-card-name">
          {top ? `${top.span.service}: ${top.span.name}` : "(no spans)"}
        </a>
        {tree.rootMissing && <span class="badge error">root span missing</span>}
        {fromFile && <span class="badge">from a file</span>}
      </div>
      <div class="muted">
        <code>{traceId}</code>
      </div>
      <div>
        {formatTime(startMs, prefs.timeZone)} · {formatDuration((tree.endUs - tree.startUs) / 1000)} · {spans.length} spans
        {tree.errorCount > 0 && <span class="badge error">{tree.errorCount} errors</span>}
      </div>
      <div class="compare-services">
        {tree.services.map((s) => (
          <span key={s} class="compare-service">
            <span class="compare-swatch" style={{ background: serviceColor(s) }} aria-hidden="true" />
            {s}
          </span>
        ))}
      </div>
    </div>
  );
}

const STATES: readonly [DiffState, string][] = [
  ["added", "only in B"],
  ["removed", "only in A"],
  ["changed", "called a different number of times, or (when chosen) slower or faster beyond the threshold"],
  ["same", "the same in both"],
];

const THRESHOLDS: readonly [string, string][] = [
  ["", "count differs"],
  ["0.1", "count differs or mean ±10%"],
  ["0.2", "count differs or mean ±20%"],
  ["0.5", "count differs or mean ±50%"],
];

const ROW = 26;

function DiffView({ a, b, idA, idB }: { a: TraceTree; b: TraceTree; idA: string; idB: string }) {
  const [threshold, setThreshold] = useState("0.2");
  const diff = useMemo<TraceDiff>(
    () => diffTraces(a, b, threshold === "" ? {} : { durationChange: Number(threshold) }),
    [a, b, threshold],
  );
  const [collapsed, setCollapsed] = useState<ReadonlySet<number>>(new Set());
  const [onlyDiffs, setOnlyDiffs] = useState(false);
  const differing = useMemo(() => (onlyDiffs ? differsBelow(diff) : null), [diff, onlyDiffs]);
  const rows = useMemo(() => diffRows(diff, collapsed, differing), [diff, collapsed, differing]);
  const [active, setActive] = useState(0);
  const [scrollTop, setScrollTop] = useState(0);
  const scrollRef = useRef<HTMLDivElement>(null);
  const viewHeight = scrollRef.current?.clientHeight || 800;
  const first = Math.max(0, Math.floor(scrollTop / ROW) - 5);
  const last = Math.min(rows.length, Math.ceil((scrollTop + viewHeight) / ROW) + 5);
  const activeRow = rows[Math.min(active, rows.length - 1)];

  function toggle(n: DiffNode) {
    const next = new Set(collapsed);
    if (!next.delete(n.id)) next.add(n.id);
    setCollapsed(next);
  }

  function moveTo(index: number) {
    const i = Math.max(0, Math.min(rows.length - 1, index));
    setActive(i);
    const el = scrollRef.current;
    if (el === null) return;
    if (i * ROW < el.scrollTop) el.scrollTop = i * ROW;
    else if ((i + 1) * ROW > el.scrollTop + el.clientHeight) el.scrollTop = (i + 1) * ROW - el.clientHeight;
  }

  function onKey(e: KeyboardEvent) {
    if (activeRow === undefined) return;
    const at = rows.indexOf(activeRow);
    const open = activeRow.children.length > 0 && !collapsed.has(activeRow.id);
    if (e.key === "ArrowDown") moveTo(at + 1);
    else if (e.key === "ArrowUp") moveTo(at - 1);
    else if (e.key === "Home") moveTo(0);
    else if (e.key === "End") moveTo(rows.length - 1);
    else if (e.key === "ArrowRight" && activeRow.children.length > 0) {
      if (open) moveTo(at + 1);
      else toggle(activeRow);
    } else if (e.key === "ArrowLeft") {
      if (open) toggle(activeRow);
      else if (activeRow.parent !== null) moveTo(rows.indexOf(activeRow.parent));
    } else if ((e.key === "Enter" || e.key === " ") && activeRow.children.length > 0) toggle(activeRow);
    else return;
    e.preventDefault();
  }

  return (
    <div class="diff" data-testid="trace-diff">
      <div class="diff-bar">
        <ul class="diff-legend" aria-label="Legend">
          {STATES.map(([state, meaning]) => (
            <li key={state}>
              <span class={`diff-state diff-${state}`}>{state}</span> {meaning} ({diff.counts[state]})
            </li>
          ))}
        </ul>
        <div class="diff-options">
          <label>
            Changed means
            <select value={threshold} onChange={(e) => setThreshold((e.target as HTMLSelectElement).value)}>
              {THRESHOLDS.map(([v, label]) => (
                <option key={v} value={v}>
                  {label}
                </option>
              ))}
            </select>
          </label>
          <label>
            <input type="checkbox" checked={onlyDiffs} onChange={(e) => setOnlyDiffs((e.target as HTMLInputElement).checked)} />
            Only differences
          </label>
          <button type="button" onClick={() => setCollapsed(new Set())}>
            Expand all
          </button>
          <button type="button" onClick={() => setCollapsed(new Set(diff.nodes.filter((n) => n.children.length > 0).map((n) => n.id)))}>
            Collapse all
          </button>
        </div>
      </div>
      <div class="diff-row diff-head" aria-hidden="true">
        <span>Service: operation</span>
        <span class="num">Calls A</span>
        <span class="num">Calls B</span>
        <span class="num">Mean A</span>
        <span class="num">Mean B</span>
        <span class="num">B − A</span>
      </div>
      <div
        class="diff-scroll"
        ref={scrollRef}
        role="tree"
        aria-label="Merged structure of A and B"
        tabIndex={0}
        aria-activedescendant={activeRow ? `diff-${activeRow.id}` : undefined}
        onKeyDown={onKey}
        onScroll={(e) => setScrollTop((e.currentTarget as HTMLDivElement).scrollTop)}
      >
        {rows.length === 0 && <div class="muted diff-empty">{onlyDiffs ? "No differences." : "Both traces are empty."}</div>}
        <div style={{ height: `${rows.length * ROW}px`, position: "relative" }}>
          {rows.slice(first, last).map((n, i) => (
            <DiffRow
              key={n.id}
              n={n}
              top={(first + i) * ROW}
              active={n === activeRow}
              collapsed={collapsed.has(n.id)}
              onToggle={() => toggle(n)}
              onActivate={() => setActive(first + i)}
              idA={idA}
              idB={idB}
            />
          ))}
        </div>
      </div>
    </div>
  );
}

function DiffRow(props: {
  n: DiffNode;
  top: number;
  active: boolean;
  collapsed: boolean;
  onToggle: () => void;
  onActivate: () => void;
  idA: string;
  idB: string;
}) {
  const { n } = props;
  const hasChildren = n.children.length > 0;
  const spanA = n.a[0]?.spanId;
  const spanB = n.b[0]?.spanId;
  return (
    <div
      id={`diff-${n.id}`}
      role="treeitem"
      aria-level={n.depth + 1}
      aria-expanded={hasChildren ? !props.collapsed : undefined}
      aria-selected={props.active}
      class={`diff-row diff-node diff-row-${n.state}${props.active ? " active" : ""}`}
      style={{ top: `${props.top}px` }}
      data-state={n.state}
      onClick={props.onActivate}
    >
      <span class="diff-name" style={{ paddingLeft: `${Math.min(n.depth, 40) * 14}px` }}>
        <button
          type="button"
          class="link diff-toggle"
          tabIndex={-1}
          aria-hidden="true"
          disabled={!hasChildren}
          onClick={(e) => {
            e.stopPropagation();
            props.onToggle();
          }}
        >
          {hasChildren ? (props.collapsed ? "▸" : "▾") : ""}
        </button>
        <span class={`diff-state diff-${n.state}`}>{n.state}</span>
        <span class="compare-swatch" style={{ background: serviceColor(n.service) }} aria-hidden="true" />
        <span class="diff-label">
          {n.service}: {n.operation}
        </span>
        {spanA !== undefined && (
          <a class="diff-jump" href={href(`/traces/${props.idA}`, new URLSearchParams({ span: spanA }))} tabIndex={-1} title="Open this span in trace A">
            A
          </a>
        )}
        {spanB !== undefined && (
          <a class="diff-jump" href={href(`/traces/${props.idB}`, new URLSearchParams({ span: spanB }))} tabIndex={-1} title="Open this span in trace B">
            B
          </a>
        )}
      </span>
      <span class="num" data-col="countA">{n.countA}</span>
      <span class="num" data-col="countB">{n.countB}</span>
      <span class="num" data-col="meanA">{n.meanUsA === null ? "–" : formatDuration(n.meanUsA / 1000)}</span>
      <span class="num" data-col="meanB">{n.meanUsB === null ? "–" : formatDuration(n.meanUsB / 1000)}</span>
      <span class={`num ${n.deltaUs !== null && n.deltaUs > 0 ? "diff-slower" : n.deltaUs !== null && n.deltaUs < 0 ? "diff-faster" : ""}`} data-col="delta">
        {deltaText(n)}
      </span>
    </div>
  );
}
