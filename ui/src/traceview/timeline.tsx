// The trace timeline: the span tree beside its bars on a time axis, virtualized (only the
// rows in view are in the DOM, at a fixed height) so a 50,000-span trace scrolls like a
// small one. Rows get plain values only (no closures over the tree), and one delegated
// handler on the list serves every row.
import { memo } from "preact/compat";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { serviceColor } from "../colors";
import { formatDuration } from "../format";
import { type CriticalSegment, criticalPath } from "../trace/critical";
import type { TraceNode, TraceTree } from "../trace/tree";
import { collapseAll, collapseToDepth, eventTimesUs, revealNode, toggleCollapsed, visibleRows } from "../trace/tree";
import { findMatches } from "./find";
import { navKey, stepMatch } from "./keys";
import { Minimap } from "./minimap";
import { useClientSize } from "./size";
import { type TimeView, isWholeView, rowWindow, scrollForRow, ticks } from "./viewport";
import "./timeline.css";

export const ROW_HEIGHT = 24;
/** Deeper levels stop indenting further (the level is still announced and shown on hover). */
const MAX_INDENT = 30;
const INDENT_PX = 12;

export type SelectHow = "click" | "key";

export interface TimelineProps {
  readonly tree: TraceTree;
  readonly selectedKey: string | null;
  readonly onSelect: (key: string, how: SelectHow) => void;
  readonly onOpen: () => void;
  readonly onClose: () => void;
}

export function Timeline({ tree, selectedKey, onSelect, onOpen, onClose }: TimelineProps) {
  const bounds = useMemo<TimeView>(() => ({ startUs: tree.startUs, endUs: tree.endUs }), [tree]);
  const [collapsed, setCollapsed] = useState<ReadonlySet<string>>(() => new Set());
  const [hidden, setHidden] = useState<ReadonlySet<string>>(() => new Set());
  const [view, setView] = useState<TimeView>(bounds);
  const [showCritical, setShowCritical] = useState(true);
  const [query, setQuery] = useState("");
  const [matchAt, setMatchAt] = useState(-1);
  const [scrollTop, setScrollTop] = useState(0);
  const scrollRef = useRef<HTMLDivElement>(null);
  const { height } = useClientSize(scrollRef);
  const findRef = useRef<HTMLInputElement>(null);

  useEffect(() => {
    setCollapsed(new Set());
    setHidden(new Set());
    setView(bounds);
  }, [tree, bounds]);

  const rows = useMemo(() => {
    const shown = hidden.size === 0 ? undefined : new Set(tree.services.filter((s) => !hidden.has(s)));
    return visibleRows(tree, collapsed, shown ? { services: shown } : {});
  }, [tree, collapsed, hidden]);
  const critical = useMemo(() => (showCritical ? criticalPath(tree) : null), [tree, showCritical]);
  const matches = useMemo(() => findMatches(tree, query), [tree, query]);
  const matchKeys = useMemo(() => new Set(matches.map((m) => m.key)), [matches]);
  const selectedIndex = useMemo(
    () => (selectedKey === null ? -1 : rows.findIndex((r) => r.key === selectedKey)),
    [rows, selectedKey],
  );

  // Handlers read the latest state through a ref so the list's one handler never goes stale.
  const live = useRef({ rows, selectedIndex, collapsed, onSelect, onOpen, onClose, height });
  live.current = { rows, selectedIndex, collapsed, onSelect, onOpen, onClose, height };

  // A selection made elsewhere (deep link, find, a link in the details) must be visible:
  // its ancestors open, and the list scrolled to it (centred the first time).
  const firstScroll = useRef(true);
  useEffect(() => {
    if (selectedKey === null) return;
    const node = tree.byKey.get(selectedKey);
    if (!node) return;
    if (selectedIndex < 0) {
      if (!hidden.has(node.span.service)) setCollapsed((c) => revealNode(tree, c, selectedKey));
      return;
    }
    const el = scrollRef.current;
    if (!el || height === 0) return;
    const top = scrollForRow(selectedIndex, el.scrollTop, el.clientHeight, ROW_HEIGHT, firstScroll.current);
    firstScroll.current = false;
    if (top !== null) {
      el.scrollTop = top;
      setScrollTop(el.scrollTop);
    }
  }, [selectedKey, selectedIndex, tree, hidden, height]);

  const frame = useRef(0);
  function onScroll() {
    if (frame.current) return;
    frame.current = requestAnimationFrame(() => {
      frame.current = 0;
      if (scrollRef.current) setScrollTop(scrollRef.current.scrollTop);
    });
  }
  useEffect(() => () => cancelAnimationFrame(frame.current), []);

  function onListClick(event: MouseEvent) {
    const target = event.target as HTMLElement;
    const row = target.closest<HTMLElement>("[data-key]");
    const key = row?.dataset.key;
    if (!key) return;
    if (target.closest("[data-toggle]")) {
      setCollapsed((c) => toggleCollapsed(c, key));
      return;
    }
    live.current.onSelect(key, "click");
    live.current.onOpen();
  }

  function onListKey(event: KeyboardEvent) {
    const { rows: r, selectedIndex: i, collapsed: c, height: h } = live.current;
    const action = navKey(event.key, r, i, c, Math.max(1, Math.floor(h / ROW_HEIGHT) - 1));
    if (action === null) return;
    event.preventDefault();
    if (action.collapse) setCollapsed((x) => toggleCollapsed(x, action.collapse!));
    if (action.expand) setCollapsed((x) => toggleCollapsed(x, action.expand!));
    if (action.select) live.current.onSelect(action.select, "key");
    if (action.open) live.current.onOpen();
    if (action.close) live.current.onClose();
  }

  // `/` anywhere on the page (outside a text field) goes to find, as in Jaeger and GitHub.
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
      const t = event.target as HTMLElement | null;
      if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable)) return;
      event.preventDefault();
      findRef.current?.focus();
      findRef.current?.select();
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, []);

  function goMatch(dir: 1 | -1) {
    const next = stepMatch(matches.length, matchAt, dir);
    setMatchAt(next);
    const node = matches[next];
    if (node) onSelect(node.key, "key");
  }

  const win = rowWindow(scrollTop, height, ROW_HEIGHT, rows.length);
  const items = [];
  for (let i = win.first; i < win.last; i++) {
    const n = rows[i]!;
    items.push(
      <Row
        key={n.key}
        node={n}
        tree={tree}
        top={i * ROW_HEIGHT}
        selected={n.key === selectedKey}
        collapsed={collapsed.has(n.key)}
        match={matchKeys.has(n.key)}
        segments={critical?.byKey.get(n.key)}
        viewStart={view.startUs}
        viewEnd={view.endUs}
      />,
    );
  }
  const axisTicks = ticks(view, tree.startUs, 6);
  const ready = height > 0;
  const zoomed = !isWholeView(view, bounds);

  return (
    <section class="tv-timeline" aria-label="Timeline" data-ready={ready ? "trace" : undefined}>
      <div class="tv-toolbar">
        <form
          class="tv-find"
          role="search"
          onSubmit={(e) => {
            e.preventDefault();
          }}
        >
          <input
            ref={findRef}
            type="search"
            aria-label="Find in trace"
            placeholder="Find: name, attribute, id  ( / )"
            value={query}
            onInput={(e) => {
              setQuery((e.target as HTMLInputElement).value);
              setMatchAt(-1);
            }}
            onKeyDown={(e) => {
              if (e.key === "Enter") {
                e.preventDefault();
                goMatch(e.shiftKey ? -1 : 1);
              } else if (e.key === "Escape") {
                (e.target as HTMLInputElement).blur();
                scrollRef.current?.focus();
              }
            }}
          />
          <span class="tv-count muted" data-testid="find-count" aria-live="polite">
            {matchLabel(query, matchAt, matches.length)}
          </span>
          <button type="button" aria-label="Previous match" disabled={matches.length === 0} onClick={() => goMatch(-1)}>
            ↑
          </button>
          <button type="button" aria-label="Next match" disabled={matches.length === 0} onClick={() => goMatch(1)}>
            ↓
          </button>
        </form>
        <div class="tv-tools">
          <button type="button" onClick={() => setCollapsed(collapseAll(tree))}>
            Collapse all
          </button>
          <button type="button" onClick={() => setCollapsed(new Set())}>
            Expand all
          </button>
          <label class="compact">
            Depth
            <select
              aria-label="Collapse to depth"
              value=""
              onChange={(e) => {
                const depth = Number((e.target as HTMLSelectElement).value);
                if (depth > 0) setCollapsed(collapseToDepth(tree, depth - 1));
              }}
            >
              <option value="">–</option>
              {Array.from({ length: Math.min(tree.maxDepth + 1, 20) }, (_, d) => (
                <option key={d} value={d + 1}>
                  {d + 1}
                </option>
              ))}
            </select>
          </label>
          <label class="compact">
            <input type="checkbox" checked={showCritical} onChange={() => setShowCritical((v) => !v)} />
            Critical path
          </label>
          <ServiceFilter services={tree.services} hidden={hidden} onChange={setHidden} />
          {zoomed && (
            <button type="button" onClick={() => setView(bounds)}>
              Reset zoom
            </button>
          )}
        </div>
      </div>
      <Minimap tree={tree} view={view} bounds={bounds} onView={setView} />
      <div class="tv-axis" aria-hidden="true">
        <div class="tv-label tv-axis-label muted">
          {rows.length === tree.nodes.length ? `${rows.length} spans` : `${rows.length} of ${tree.nodes.length} spans shown`}
        </div>
        <div class="tv-lane">
          {axisTicks.map((t) => (
            <span key={t.us} class="tv-tick" style={{ left: `${t.at * 100}%` }}>
              {t.label}
            </span>
          ))}
        </div>
      </div>
      <div
        ref={scrollRef}
        class="tv-scroll"
        data-testid="timeline-scroll"
        role="tree"
        aria-label="Spans"
        tabIndex={0}
        aria-activedescendant={selectedIndex >= 0 && selectedKey !== null ? rowId(selectedKey) : undefined}
        onScroll={onScroll}
        onClick={onListClick}
        onKeyDown={onListKey}
      >
        <div class="tv-spacer" style={{ height: `${rows.length * ROW_HEIGHT}px` }}>
          {items}
        </div>
      </div>
    </section>
  );
}

function matchLabel(query: string, at: number, count: number): string {
  if (query.trim() === "") return "";
  if (count === 0) return "no match";
  if (at >= 0) return `${at + 1} of ${count}`;
  return count === 1 ? "1 match" : `${count} matches`;
}

function rowId(key: string): string {
  return `tv-row-${key.replace(/[^0-9A-Za-z_-]/g, "_")}`;
}

function pct(us: number, view: TimeView): string {
  return `${((us - view.startUs) / (view.endUs - view.startUs)) * 100}%`;
}

/** The duration label goes after the bar, or before it when the bar reaches the right edge. */
function durationPlace(node: TraceNode, viewStart: number, viewEnd: number): Record<string, string> {
  const width = viewEnd - viewStart;
  const end = (node.endUs - viewStart) / width;
  if (end < 0.85) return { left: `calc(${end * 100}% + 4px)` };
  const start = Math.max(0, (node.startUs - viewStart) / width);
  return start > 0.15 ? { right: `calc(${(1 - start) * 100}% + 4px)` } : { left: `calc(${start * 100}% + 4px)`, color: "#fff" };
}

interface RowProps {
  readonly node: TraceNode;
  readonly tree: TraceTree;
  readonly top: number;
  readonly selected: boolean;
  readonly collapsed: boolean;
  readonly match: boolean;
  readonly segments: readonly CriticalSegment[] | undefined;
  readonly viewStart: number;
  readonly viewEnd: number;
}

const Row = memo(function Row({ node, tree, top, selected, collapsed, match, segments, viewStart, viewEnd }: RowProps) {
  const span = node.span;
  const view = { startUs: viewStart, endUs: viewEnd };
  const color = serviceColor(span.service);
  const hasChildren = node.children.length > 0;
  const width = Math.max(((node.endUs - node.startUs) / (viewEnd - viewStart)) * 100, 0.05);
  let cls = "tv-row";
  if (selected) cls += " selected";
  if (match) cls += " match";
  if (node.error) cls += " error";
  return (
    <div
      id={rowId(node.key)}
      class={cls}
      role="treeitem"
      aria-level={node.depth + 1}
      aria-expanded={hasChildren ? !collapsed : undefined}
      aria-selected={selected}
      data-key={node.key}
      data-span-id={node.spanId}
      style={{ top: `${top}px`, height: `${ROW_HEIGHT}px` }}
    >
      <div class="tv-label" style={{ paddingLeft: `${Math.min(node.depth, MAX_INDENT) * INDENT_PX + 4}px` }} title={`level ${node.depth + 1}`}>
        {hasChildren ? (
          <span class="tv-toggle" data-toggle="1" aria-hidden="true" title={collapsed ? `Expand (${node.descendants} below)` : "Collapse"}>
            {collapsed ? "▸" : "▾"}
          </span>
        ) : (
          <span class="tv-toggle" />
        )}
        <span class="tv-dot" style={{ background: color }} />
        <span class="tv-svc">{span.service}</span>
        <span class="tv-name">{span.name}</span>
        {node.error && <span class="badge error">error</span>}
        {node.skewed && (
          <span class="badge warn" title={`clock skew: drawn ${formatDuration(node.skewShiftUs / 1000)} from its reported time`}>
            skew
          </span>
        )}
        {node.orphan && <span class="badge" title="its parent span is not in this trace">orphan</span>}
        {collapsed && hasChildren && <span class="badge">+{node.descendants}</span>}
      </div>
      <div class="tv-lane">
        <div
          class="tv-bar"
          style={{ left: pct(node.startUs, view), width: `${width}%`, background: node.error ? undefined : color }}
        />
        {segments?.map((s) => (
          <div
            key={s.startUs}
            class="tv-crit"
            style={{ left: pct(s.startUs, view), width: `${Math.max(((s.endUs - s.startUs) / (viewEnd - viewStart)) * 100, 0.05)}%` }}
          />
        ))}
        {span.events.length > 0 &&
          eventTimesUs(tree, node).map((e, i) => (
            <span key={i} class="tv-event" style={{ left: pct(e.timeUs, view) }} title={e.name} data-event={e.name} />
          ))}
        <span class="tv-dur" style={durationPlace(node, viewStart, viewEnd)}>
          {formatDuration(span.durationMs)}
        </span>
      </div>
    </div>
  );
});

function ServiceFilter({
  services,
  hidden,
  onChange,
}: {
  services: readonly string[];
  hidden: ReadonlySet<string>;
  onChange: (next: ReadonlySet<string>) => void;
}) {
  const shown = services.length - hidden.size;
  return (
    <details class="tv-filter">
      <summary>
        Services {shown === services.length ? "(all)" : `(${shown} of ${services.length})`}
      </summary>
      <fieldset>
        <legend class="muted">Show spans of</legend>
        {services.map((s) => (
          <label key={s}>
            <input
              type="checkbox"
              checked={!hidden.has(s)}
              onChange={() => {
                const next = new Set(hidden);
                if (!next.delete(s)) next.add(s);
                onChange(next);
              }}
            />
            <span class="tv-dot" style={{ background: serviceColor(s) }} />
            {s}
          </label>
        ))}
      </fieldset>
    </details>
  );
}
