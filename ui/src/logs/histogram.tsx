// The log volume over the window as stacked bars by severity (uPlot), with a legend of
// each class's count; dragging across the bars narrows the page's time range.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { formatTime } from "../format";
import { usePrefs } from "../prefs";
import { SEVERITY_COLORS } from "./severity";
import { dragRange, stackVolume, type LogVolume } from "./volume";

const HEIGHT = 120;

export function VolumeChart({ volume, onRange }: { volume: LogVolume; onRange: (start: number, end: number) => void }) {
  const { timeZone, theme } = usePrefs();
  const box = useRef<HTMLDivElement>(null);
  const [hover, setHover] = useState<number | null>(null);
  const data = useMemo(() => stackVolume(volume), [volume]);
  // The latest callback without rebuilding the chart when the parent re-renders.
  const rangeRef = useRef(onRange);
  rangeRef.current = onRange;

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const axis = getComputedStyle(el).color;
    const grid = "rgba(128, 128, 128, 0.18)";
    const opts: uPlot.Options = {
      width: el.clientWidth || 600,
      height: HEIGHT,
      ms: 1,
      // Axis labels in the zone the user chose, as every time in the UI.
      ...(timeZone === "utc" ? { tzDate: (ms: number) => uPlot.tzDate(new Date(ms), "Etc/UTC") } : {}),
      legend: { show: false },
      cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
      scales: {
        x: { time: true, range: [volume.startUnixMs, volume.endUnixMs + volume.stepMs] },
        y: { range: (_u, _min, max) => [0, Math.max(1, max)] },
      },
      axes: [
        { stroke: axis, grid: { stroke: grid }, ticks: { stroke: grid } },
        { stroke: axis, grid: { stroke: grid }, ticks: { stroke: grid }, size: 44 },
      ],
      series: [
        {},
        ...data.classes.map((cls) => ({
          label: cls,
          stroke: SEVERITY_COLORS[cls],
          fill: SEVERITY_COLORS[cls],
          width: 0,
          paths: uPlot.paths.bars?.({ size: [0.9, 64, 1], align: 1 }),
          points: { show: false },
        })),
      ],
      hooks: {
        setCursor: [(u) => setHover(u.cursor.idx ?? null)],
        setSelect: [
          (u) => {
            const { left, width } = u.select;
            const range = dragRange(u.posToVal(left, "x"), u.posToVal(left + width, "x"), volume.stepMs, 4, width);
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            if (range) rangeRef.current(range.start, range.end);
          },
        ],
      },
    };
    const plot = new uPlot(opts, [data.x, ...data.stacked], el);
    const resize = new ResizeObserver(() => plot.setSize({ width: el.clientWidth, height: HEIGHT }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
    // The theme changes the axis colour read above.
  }, [data, volume, timeZone, theme]);

  const at = hover === null ? null : data.x[hover];
  return (
    <figure class="log-volume" aria-label="Log volume by severity">
      <div ref={box} class="log-volume-chart" data-testid="volume-chart" title="Drag across the bars to narrow the time range" />
      <figcaption>
        <ul class="volume-legend" data-testid="volume-legend">
          {data.totals.map(([cls, n]) => (
            <li key={cls} data-severity={cls}>
              <span class="swatch" style={{ background: SEVERITY_COLORS[cls] }} />
              {cls} <span class="count">{n}</span>
            </li>
          ))}
          <li class="muted">
            total <span class="count" data-testid="volume-total">{volume.total}</span> · {formatStep(volume.stepMs)} bars
          </li>
        </ul>
        <div class="volume-hover muted" aria-live="off">
          {at !== undefined && at !== null
            ? `${formatTime(at, timeZone)}: ` +
              data.classes
                .map((cls, i) => [cls, data.own[i]?.[hover ?? 0] ?? 0] as const)
                .filter(([, n]) => n > 0)
                .reverse()
                .map(([cls, n]) => `${cls} ${n}`)
                .join(" · ")
            : " "}
        </div>
      </figcaption>
    </figure>
  );
}

function formatStep(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
