// The scatter plot's data: one dot per trace at (start, duration), ordered by start as uPlot
// needs its x values, with a map back to the trace; and hit-testing a pointer against dots.
import { nsToMs } from "../format";
import type { TraceSummary } from "../types";

export interface ScatterData {
  /** Trace start, ms since the epoch, ascending. */
  readonly xs: number[];
  /** Trace duration, ms. */
  readonly ys: number[];
  /** Whether the trace has error spans, per dot. */
  readonly errors: boolean[];
  /** The trace of each dot. */
  readonly traces: TraceSummary[];
}

export function prepareScatter(traces: readonly TraceSummary[]): ScatterData {
  const dots = traces.map((t) => ({ t, x: nsToMs(t.startTimeUnixNano) }));
  dots.sort((a, b) => a.x - b.x);
  return {
    xs: dots.map((d) => d.x),
    ys: dots.map((d) => d.t.durationMs),
    errors: dots.map((d) => d.t.errorCount > 0),
    traces: dots.map((d) => d.t),
  };
}

/** The x range to show: the dots' span padded by 2 % each side (a lone dot gets ±1 s). */
export function xRange(xs: readonly number[]): [number, number] {
  if (xs.length === 0) return [0, 1];
  const lo = xs[0] ?? 0;
  const hi = xs[xs.length - 1] ?? lo;
  const pad = hi > lo ? (hi - lo) * 0.02 : 1000;
  return [lo - pad, hi + pad];
}

/** The y range: from zero to a little above the longest duration. */
export function yRange(ys: readonly number[]): [number, number] {
  let max = 0;
  for (const y of ys) if (y > max) max = y;
  return [0, max > 0 ? max * 1.08 : 1];
}

/**
 * The dot nearest to (px, py) within `radius`, given each dot's position (same units);
 * the later one wins a tie, as it is drawn on top. Null when none is that close.
 */
export function nearestDot(
  xs: ArrayLike<number>,
  ys: ArrayLike<number>,
  px: number,
  py: number,
  radius: number,
): number | null {
  let best: number | null = null;
  let bestD = radius * radius;
  for (let i = 0; i < xs.length; i++) {
    const dx = (xs[i] ?? Infinity) - px;
    const dy = (ys[i] ?? Infinity) - py;
    const d = dx * dx + dy * dy;
    if (d <= bestD) {
      bestD = d;
      best = i;
    }
  }
  return best;
}
