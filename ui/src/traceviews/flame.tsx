// The flame graph of a trace: one row per tree depth, each span inside its parent, coloured
// by service, errors marked. Painted on a canvas sized to the visible rows only (a sticky
// canvas over a spacer as tall as all rows), so a 50,000-span or 50,000-deep trace costs one
// viewport of drawing per frame. Click selects, double-click or Enter zooms into a subtree.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ERROR_COLOR, serviceColor } from "../colors";
import { formatDuration } from "../format";
import { flameLayout } from "../trace/flame";
import type { FlameRect } from "../trace/flame";
import type { FlameWindow } from "./flameview";
import { breadcrumb, fitLabel, neighbour, placeRows, spanAt, zoomTo } from "./flameview";
import type { TraceViewProps } from "./props";
import "./flame.css";

const ROW = 20;
const FONT = "12px system-ui, -apple-system, sans-serif";
const LABEL_MIN_PX = 24;

interface Hover {
  readonly rect: FlameRect;
  readonly x: number;
  readonly y: number;
}

export function FlameGraph({ tree, selectedSpanId, onSelect }: TraceViewProps) {
  const layout = useMemo(() => flameLayout(tree), [tree]);
  const [focusKey, setFocusKey] = useState<string | null>(null);
  const win = useMemo(() => zoomTo(layout, tree, focusKey), [layout, tree, focusKey]);
  const [hover, setHover] = useState<Hover | null>(null);
  const [size, setSize] = useState({ width: 0, height: 0 });
  const [scrollTop, setScrollTop] = useState(0);
  const scrollRef = useRef<HTMLDivElement>(null);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const selectedKey = selectedSpanId === null ? null : (tree.bySpanId.get(selectedSpanId)?.key ?? null);
  const rows = layout.rows.length;

  useEffect(() => setFocusKey(null), [tree]);

  useEffect(() => {
    const el = scrollRef.current;
    if (el === null) return;
    const observer = new ResizeObserver(() => setSize({ width: el.clientWidth, height: el.clientHeight }));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);

  const viewHeight = Math.min(size.height, rows * ROW);

  useEffect(() => {
    const canvas = canvasRef.current;
    if (canvas === null || size.width === 0) return;
    paint(canvas, layout, win, size.width, viewHeight, scrollTop, selectedKey, hover?.rect.key ?? null);
  }, [layout, win, size.width, viewHeight, scrollTop, selectedKey, hover?.rect.key]);

  function hitAt(event: MouseEvent): FlameRect | null {
    const canvas = canvasRef.current;
    if (canvas === null || size.width === 0) return null;
    const box = canvas.getBoundingClientRect();
    const depth = Math.floor((event.clientY - box.top + scrollTop) / ROW);
    return spanAt(layout, tree, win, (event.clientX - box.left) / size.width, depth);
  }

  function zoom(key: string | null) {
    setFocusKey(key);
    setHover(null);
  }

  function onKey(event: KeyboardEvent) {
    const moves: Record<string, "up" | "down" | "left" | "right"> = {
      ArrowUp: "up",
      ArrowDown: "down",
      ArrowLeft: "left",
      ArrowRight: "right",
    };
    const move = moves[event.key];
    if (move !== undefined) {
      event.preventDefault();
      const from = selectedKey ?? tree.nodes[0]?.key;
      if (from === undefined) return;
      const to = selectedKey === null ? from : neighbour(layout, tree, from, move);
      const node = to === null ? undefined : tree.byKey.get(to);
      if (node !== undefined) {
        onSelect(node.spanId);
        scrollRowIntoView(node.depth);
      }
    } else if (event.key === "Enter" && selectedKey !== null) {
      zoom(selectedKey);
    } else if (event.key === "Escape" && win.focus !== null) {
      zoom(win.focus.parent?.key ?? null);
    }
  }

  function scrollRowIntoView(depth: number) {
    const el = scrollRef.current;
    if (el === null) return;
    const top = depth * ROW;
    if (top < el.scrollTop) el.scrollTop = top;
    else if (top + ROW > el.scrollTop + el.clientHeight) el.scrollTop = top + ROW - el.clientHeight;
  }

  const crumbs = breadcrumb(win);
  const selected = selectedKey === null ? undefined : tree.byKey.get(selectedKey);
  return (
    <div class="flame" data-testid="flame">
      <div class="flame-bar">
        <nav aria-label="Flame graph zoom" class="flame-crumbs">
          <button type="button" class="link" disabled={win.focus === null} onClick={() => zoom(null)}>
            Whole trace
          </button>
          {crumbs.map((n) => (
            <span key={n.key}>
              {" › "}
              <button type="button" class="link" disabled={n === win.focus} onClick={() => zoom(n.key)}>
                {n.span.service}: {n.span.name}
              </button>
            </span>
          ))}
        </nav>
        <button type="button" disabled={selectedKey === null || selectedKey === focusKey} onClick={() => zoom(selectedKey)}>
          Zoom to selected span
        </button>
        <span class="muted flame-help">Click selects · double-click or Enter zooms · Esc zooms out · arrows move</span>
      </div>
      <div
        class="flame-scroll"
        ref={scrollRef}
        onScroll={(e) => setScrollTop((e.currentTarget as HTMLDivElement).scrollTop)}
      >
        <canvas
          ref={canvasRef}
          class="flame-canvas"
          tabIndex={0}
          role="img"
          aria-label={`Flame graph of ${tree.nodes.length} spans${selected ? `; selected: ${selected.span.service} ${selected.span.name}` : ""}`}
          data-testid="flame-canvas"
          onMouseMove={(e) => {
            const r = hitAt(e);
            setHover(r === null ? null : { rect: r, x: e.offsetX, y: e.offsetY + scrollTop });
          }}
          onMouseLeave={() => setHover(null)}
          onClick={(e) => {
            const r = hitAt(e);
            if (r !== null) onSelect(r.spanId);
          }}
          onDblClick={(e) => {
            const r = hitAt(e);
            if (r !== null) zoom(r.key);
          }}
          onKeyDown={onKey}
        />
        <div class="flame-spacer" style={{ height: `${Math.max(0, rows * ROW - viewHeight)}px` }} />
        {hover !== null && <Tooltip hover={hover} width={size.width} bottom={scrollTop + size.height} />}
      </div>
    </div>
  );
}

const TOOLTIP_HEIGHT = 96;

function Tooltip({ hover, width, bottom }: { hover: Hover; width: number; bottom: number }) {
  const r = hover.rect;
  const left = Math.min(hover.x + 12, Math.max(0, width - 280));
  // Below the pointer, or above it near the bottom, so it never widens the scroll area.
  const below = hover.y + 16 + TOOLTIP_HEIGHT <= bottom;
  const top = below ? hover.y + 16 : Math.max(0, hover.y - 8 - TOOLTIP_HEIGHT);
  return (
    <div class="flame-tooltip" role="tooltip" data-testid="flame-tooltip" style={{ left: `${left}px`, top: `${top}px` }}>
      <div class="flame-tooltip-name">{r.label}</div>
      <div>
        <span class="flame-swatch" style={{ background: serviceColor(r.service) }} /> {r.service}
      </div>
      <div>Duration {formatDuration((r.endUs - r.startUs) / 1000)}</div>
      <div>Self time {formatDuration(r.selfUs / 1000)}</div>
      {r.error && <div class="flame-tooltip-error">Error</div>}
    </div>
  );
}

function paint(
  canvas: HTMLCanvasElement,
  layout: ReturnType<typeof flameLayout>,
  win: FlameWindow,
  width: number,
  height: number,
  scrollTop: number,
  selectedKey: string | null,
  hoverKey: string | null,
): void {
  const dpr = window.devicePixelRatio || 1;
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const pw = Math.round(width * dpr);
  const ph = Math.round(height * dpr);
  if (canvas.width !== pw) canvas.width = pw;
  if (canvas.height !== ph) canvas.height = ph;
  const ctx = canvas.getContext("2d");
  if (ctx === null) return;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = FONT;
  ctx.textBaseline = "middle";
  // The canvas's CSS colour is the theme's accent (light-dark() resolved by the browser).
  const accent = getComputedStyle(canvas).color;
  const first = Math.floor(scrollTop / ROW);
  const last = Math.ceil((scrollTop + height) / ROW);
  const placed = placeRows(layout, win, width, first, last);
  const widthCache = new Map<string, number>();
  const measure = (s: string): number => {
    let w = widthCache.get(s);
    if (w === undefined) {
      w = ctx.measureText(s).width;
      widthCache.set(s, w);
    }
    return w;
  };
  let outline: { x: number; y: number; w: number; color: string } | null = null;
  for (const p of placed) {
    const r = p.rect;
    const y = r.depth * ROW - scrollTop;
    const w = Math.max(p.width, 1);
    ctx.globalAlpha = p.ancestor ? 0.45 : 1;
    ctx.fillStyle = serviceColor(r.service);
    ctx.fillRect(p.left, y + 1, w, ROW - 2);
    if (r.error) {
      ctx.fillStyle = ERROR_COLOR;
      ctx.fillRect(p.left, y + 1, Math.min(w, 4), ROW - 2);
      ctx.fillRect(p.left, y + ROW - 4, w, 3);
    }
    if (p.width >= LABEL_MIN_PX) {
      const text = fitLabel(r.label, p.width - 10, measure);
      if (text !== "") {
        ctx.fillStyle = "#15191d";
        ctx.fillText(text, p.left + 6, y + ROW / 2);
      }
    }
    ctx.globalAlpha = 1;
    if (w > 2 && (r.key === hoverKey || r.key === selectedKey)) {
      ctx.strokeStyle = "rgba(0,0,0,0.5)";
      ctx.lineWidth = 1;
      ctx.strokeRect(p.left + 0.5, y + 1.5, w - 1, ROW - 3);
    }
    if (r.key === selectedKey) outline = { x: p.left, y, w, color: accent };
  }
  if (outline !== null) {
    ctx.strokeStyle = outline.color;
    ctx.lineWidth = 2;
    ctx.strokeRect(outline.x + 1, outline.y + 1, Math.max(outline.w - 2, 1), ROW - 2);
  }
}
