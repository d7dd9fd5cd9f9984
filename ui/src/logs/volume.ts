// GET /api/logs/volume's answer turned into what the stacked bar chart draws. uPlot draws
// each series from zero, so the stack is made of running sums drawn tallest first: every
// class's bar is the sum of itself and the classes below it, and the smaller ones painted
// over it leave exactly its own share visible.
import { VOLUME_ORDER, type SeverityClass } from "./severity";

export interface VolumeBucket {
  readonly timeUnixMs: number;
  readonly counts: Readonly<Partial<Record<SeverityClass, number>>>;
  readonly total: number;
}

export interface LogVolume {
  readonly stepMs: number;
  readonly startUnixMs: number;
  readonly endUnixMs: number;
  readonly buckets: readonly VolumeBucket[];
  readonly total: number;
}

export interface StackedVolume {
  /** Bucket start times (ms), the chart's x values. */
  readonly x: number[];
  /** Classes drawn, top of the stack first (the order of the chart's series). */
  readonly classes: SeverityClass[];
  /** Per class in `classes`: the running sum up to and including it, per bucket. */
  readonly stacked: number[][];
  /** Per class in `classes`: its own count per bucket (what a tooltip shows). */
  readonly own: number[][];
  /** Per class, bottom first: its count over the whole window (the legend). */
  readonly totals: [SeverityClass, number][];
}

export function stackVolume(volume: LogVolume): StackedVolume {
  const x = volume.buckets.map((b) => b.timeUnixMs);
  const totals = VOLUME_ORDER.map((cls): [SeverityClass, number] => [
    cls,
    volume.buckets.reduce((sum, b) => sum + (b.counts[cls] ?? 0), 0),
  ]);
  // Classes with nothing in the window are left out of the chart (and its legend stays
  // short); the stack order among the others is unchanged.
  const present = totals.filter(([, n]) => n > 0).map(([cls]) => cls);
  const running = volume.buckets.map(() => 0);
  const bottomUp: { cls: SeverityClass; own: number[]; stacked: number[] }[] = [];
  for (const cls of present) {
    const own = volume.buckets.map((b) => b.counts[cls] ?? 0);
    own.forEach((n, i) => {
      running[i] = (running[i] ?? 0) + n;
    });
    bottomUp.push({ cls, own, stacked: [...running] });
  }
  bottomUp.reverse();
  return {
    x,
    classes: bottomUp.map((s) => s.cls),
    stacked: bottomUp.map((s) => s.stacked),
    own: bottomUp.map((s) => s.own),
    totals: totals.filter(([, n]) => n > 0),
  };
}

/** The time range (ms) a drag over the chart selected, or null when it is too small to
 * mean a range (a click). Bucket edges are where the data is, so the range is widened to
 * the buckets it touches. */
export function dragRange(from: number, to: number, stepMs: number, minPx: number, widthPx: number): { start: number; end: number } | null {
  if (widthPx < minPx || !(to > from)) return null;
  const start = Math.floor(from / stepMs) * stepMs;
  const end = Math.ceil(to / stepMs) * stepMs;
  return end > start ? { start, end } : null;
}
