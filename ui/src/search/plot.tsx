// The results as a scatter plot (uPlot): x = trace start, y = duration, one dot per trace in
// its root service's colour, error traces as red triangles. Hover tells the trace, a click
// opens it, a horizontal drag narrows the search window to the dragged time range.
import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import { ERROR_COLOR, serviceColor } from "../colors";
import { formatDuration, formatTime, nsToMs } from "../format";
import { usePrefs } from "../prefs";
import type { TimeZone } from "../prefs";
import type { TraceSummary } from "../types";
import type { ScatterData } from "./scatter";
import { nearestDot, prepareScatter, xRange, yRange } from "./scatter";
import "./search.css";

const HEIGHT = 200;
const HIT_RADIUS = 10;
const DOT = 4;

export interface ScatterProps {
  readonly traces: readonly TraceSummary[];
  readonly onOpen: (traceId: string) => void;
  readonly onZoom: (fromMs: number, toMs: number) => void;
}

interface Hover {
  readonly trace: TraceSummary;
  readonly left: number;
  readonly top: number;
}

function cssVar(el: Element, name: string, fallback: string): string {
  return getComputedStyle(el).getPropertyValue(name).trim() || fallback;
}

function drawDots(u: uPlot, data: ScatterData) {
  const ctx = u.ctx;
  const r = DOT * uPlot.pxRatio;
  ctx.save();
  ctx.beginPath();
  // Dots at the plot's edge (a zero duration) are drawn whole, not cut in half.
  const m = r * 1.5;
  ctx.rect(u.bbox.left - m, u.bbox.top - m, u.bbox.width + 2 * m, u.bbox.height + 2 * m);
  ctx.clip();
  for (let i = 0; i < data.xs.length; i++) {
    const x = u.valToPos(data.xs[i] ?? 0, "x", true);
    const y = u.valToPos(data.ys[i] ?? 0, "y", true);
    const trace = data.traces[i];
    if (!trace) continue;
    ctx.beginPath();
    if (data.errors[i]) {
      ctx.moveTo(x, y - r * 1.3);
      ctx.lineTo(x + r * 1.2, y + r);
      ctx.lineTo(x - r * 1.2, y + r);
      ctx.closePath();
      ctx.fillStyle = ERROR_COLOR;
    } else {
      ctx.arc(x, y, r, 0, 2 * Math.PI);
      ctx.fillStyle = serviceColor(trace.rootService);
    }
    ctx.globalAlpha = 0.8;
    ctx.fill();
  }
  ctx.restore();
}

function options(width: number, zone: TimeZone, muted: string, grid: string, data: () => ScatterData, hooks: uPlot.Hooks.Arrays): uPlot.Options {
  const axis = { stroke: muted, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
  return {
    width,
    height: HEIGHT,
    ms: 1,
    ...(zone === "utc" ? { tzDate: (ts: number) => uPlot.tzDate(new Date(ts), "Etc/UTC") } : {}),
    legend: { show: false },
    cursor: {
      drag: { x: true, y: false, setScale: false },
      points: { show: false },
      y: false,
    },
    scales: {
      x: { time: true, range: () => xRange(data().xs) },
      y: { range: () => yRange(data().ys) },
    },
    axes: [
      { ...axis },
      { ...axis, size: 64, values: (_u, splits) => splits.map((v) => (v === 0 ? "0" : formatDuration(v))) },
    ],
    // The dots are drawn by the draw hook (shapes per status); the series only sets scales.
    series: [{}, { paths: () => null, points: { show: false } }],
    hooks,
  };
}

export function ScatterPlot({ traces, onOpen, onZoom }: ScatterProps) {
  const wrap = useRef<HTMLDivElement>(null);
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const data = useRef<ScatterData>(prepareScatter(traces));
  const handlers = useRef({ onOpen, onZoom });
  handlers.current = { onOpen, onZoom };
  const [hover, setHover] = useState<Hover | null>(null);
  const { timeZone } = usePrefs();

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    let down: { x: number; y: number } | null = null;
    let hovered: TraceSummary | null = null;
    let dotsX = new Float64Array(0);
    let dotsY = new Float64Array(0);
    const hit = (u: uPlot, left: number, top: number): number | null => {
      const d = data.current;
      if (dotsX.length !== d.xs.length) {
        dotsX = new Float64Array(d.xs.length);
        dotsY = new Float64Array(d.xs.length);
      }
      for (let i = 0; i < d.xs.length; i++) {
        dotsX[i] = u.valToPos(d.xs[i] ?? 0, "x");
        dotsY[i] = u.valToPos(d.ys[i] ?? 0, "y");
      }
      return nearestDot(dotsX, dotsY, left, top, HIT_RADIUS);
    };
    const u = new uPlot(
      options(el.clientWidth || 800, timeZone, cssVar(el, "--fg-muted", "#888"), cssVar(el, "--border", "#ddd"), () => data.current, {
        draw: [(self) => drawDots(self, data.current)],
        setCursor: [
          (self) => {
            const { left, top } = self.cursor;
            const i = left === undefined || top === undefined || left < 0 ? null : hit(self, left, top);
            const trace = i === null ? undefined : data.current.traces[i];
            hovered = trace ?? null;
            self.over.style.cursor = trace ? "pointer" : "crosshair";
            if (!trace || left === undefined || top === undefined) return setHover(null);
            const over = self.over.getBoundingClientRect();
            const outer = wrap.current?.getBoundingClientRect() ?? over;
            setHover({ trace, left: left + over.left - outer.left, top: top + over.top - outer.top });
          },
        ],
        setSelect: [
          (self) => {
            const { left, width } = self.select;
            if (width < 3) return;
            self.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            handlers.current.onZoom(self.posToVal(left, "x"), self.posToVal(left + width, "x"));
          },
        ],
      }),
      [data.current.xs, data.current.ys],
      el,
    );
    plot.current = u;
    // A click opens the dot under it; a press that moved was a drag (the zoom), not a click.
    const onDown = (e: MouseEvent) => {
      down = { x: e.clientX, y: e.clientY };
    };
    const onUp = (e: MouseEvent) => {
      if (!down || Math.abs(e.clientX - down.x) > 3 || Math.abs(e.clientY - down.y) > 3) return;
      down = null;
      // The dot the tooltip shows is the one a click opens.
      if (hovered) handlers.current.onOpen(hovered.traceId);
    };
    u.over.addEventListener("mousedown", onDown);
    u.over.addEventListener("mouseup", onUp);
    const resize = new ResizeObserver(() => {
      if (el.clientWidth > 0 && el.clientWidth !== u.width) u.setSize({ width: el.clientWidth, height: HEIGHT });
    });
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [timeZone]);

  useEffect(() => {
    data.current = prepareScatter(traces);
    plot.current?.setData([data.current.xs, data.current.ys]);
  }, [traces]);

  const errors = traces.reduce((n, t) => n + (t.errorCount > 0 ? 1 : 0), 0);
  return (
    <figure class="scatter" aria-label="Traces by start time and duration">
      <div class="scatter-plot" ref={wrap} data-testid="scatter">
        <div ref={box} />
        {hover && (
          <div class="scatter-tip" role="tooltip" data-testid="scatter-tip" style={{ left: `${hover.left + 12}px`, top: `${hover.top + 12}px` }}>
            <strong>
              {hover.trace.rootService}: {hover.trace.rootName}
            </strong>
            <div>
              {formatDuration(hover.trace.durationMs)} · {hover.trace.spanCount} spans
              {hover.trace.errorCount > 0 && <span class="error-text"> · {hover.trace.errorCount} errors</span>}
            </div>
            <div class="muted">{formatTime(nsToMs(hover.trace.startTimeUnixNano), timeZone)}</div>
          </div>
        )}
      </div>
      <figcaption class="muted">
        <span class="legend-dot" aria-hidden="true" /> {traces.length - errors} traces without errors{" "}
        <span class="legend-err" aria-hidden="true" /> {errors} with errors · drag across the plot to narrow the time range
      </figcaption>
    </figure>
  );
}
