// The time axis of trace views: tick positions at 1-2-5 steps with labels in µs, ms or s, the
// zoom/pan viewport (a [from, to] window over the trace in fractions of its duration, as the
// minimap shows it), and the conversions between pixels and microseconds.

export interface Tick {
  /** Position in µs on the same scale as the window passed in. */
  readonly us: number;
  readonly label: string;
}

/** The smallest 1, 2 or 5 × 10^k step that cuts `rangeUs` into at most `maxTicks` pieces. */
export function niceStep(rangeUs: number, maxTicks: number): number {
  if (!(rangeUs > 0) || !(maxTicks >= 1)) return 1;
  const raw = rangeUs / maxTicks;
  const pow = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) {
    // The tolerance keeps 0.3 / 3 (= 0.09999…) from jumping to the next step.
    if (m * pow >= raw * (1 - 1e-9)) return m * pow;
  }
  return 10 * pow;
}

const UNITS = [
  { size: 1, suffix: "µs" },
  { size: 1e3, suffix: "ms" },
  { size: 1e6, suffix: "s" },
] as const;

function unitFor(us: number): (typeof UNITS)[number] {
  const a = Math.abs(us);
  return a >= 1e6 ? UNITS[2] : a >= 1e3 ? UNITS[1] : UNITS[0];
}

function trimmed(value: number, decimals: number): string {
  const text = value.toFixed(decimals);
  return text.includes(".") ? text.replace(/\.?0+$/, "") : text;
}

/**
 * An axis label: the offset in µs, ms or s by its size, with as many decimals as the step
 * needs so neighbouring ticks never print alike. (Durations elsewhere use format.ts.)
 */
export function tickLabel(us: number, stepUs: number): string {
  if (us === 0) return "0";
  const unit = unitFor(us);
  const decimals = stepUs > 0 ? Math.max(0, Math.ceil(-Math.log10(stepUs / unit.size) - 1e-9)) : 0;
  return trimmed(us / unit.size, Math.min(decimals, 6)) + unit.suffix;
}

/** Ticks at the multiples of a nice step inside [startUs, endUs]. */
export function ticks(startUs: number, endUs: number, maxTicks: number): Tick[] {
  if (!(endUs > startUs)) return [{ us: startUs, label: tickLabel(startUs, 1) }];
  const step = niceStep(endUs - startUs, maxTicks);
  const out: Tick[] = [];
  const first = Math.ceil(startUs / step - 1e-9);
  for (let k = first; ; k++) {
    // Rounded to 12 digits so 3 × 0.1 is 0.3, on the axis and in the label.
    const us = Number((k * step).toPrecision(12));
    if (us > endUs + step * 1e-9) break;
    out.push({ us, label: tickLabel(us, step) });
  }
  return out;
}

/** A visible window over the trace, in fractions of its duration (0 = start, 1 = end). */
export interface Viewport {
  readonly from: number;
  readonly to: number;
}

export const FULL_VIEW: Viewport = { from: 0, to: 1 };

/** Smallest window width by default: 1/100,000 of the trace, still several pixels of 1 µs on a 1 s trace. */
export const MIN_VIEW_WIDTH = 1e-5;

/** Puts a window inside [0, 1], at least `minWidth` wide, keeping its centre where it can. */
export function clampViewport(v: Viewport, minWidth: number = MIN_VIEW_WIDTH): Viewport {
  let from = Math.min(v.from, v.to);
  const to = Math.max(v.from, v.to);
  const min = Math.min(Math.max(minWidth, 0), 1);
  const width = Math.min(Math.max(to - from, min), 1);
  if (to - from < min) from = (from + to) / 2 - width / 2;
  if (from < 0) from = 0;
  if (from + width > 1) return { from: 1 - width, to: 1 };
  return { from, to: from + width };
}

/**
 * Zooms by `factor` (< 1 in, > 1 out) around `anchor`, a fraction of the current window
 * (0 = its left edge, 1 = its right edge) that stays under the pointer.
 */
export function zoomViewport(
  v: Viewport,
  factor: number,
  anchor = 0.5,
  minWidth: number = MIN_VIEW_WIDTH,
): Viewport {
  const width = v.to - v.from;
  const min = Math.min(Math.max(minWidth, 0), 1);
  const next = Math.min(Math.max(width * factor, min), 1);
  const at = v.from + anchor * width;
  const from = at - anchor * next;
  return clampViewport({ from, to: from + next }, minWidth);
}

/** Moves the window by `delta` (a fraction of the trace), stopping at either end. */
export function panViewport(v: Viewport, delta: number): Viewport {
  const width = v.to - v.from;
  const from = Math.min(Math.max(v.from + delta, 0), 1 - width);
  return { from, to: from + width };
}

/** The window a drag selects between two fractions (in either order), e.g. on the minimap. */
export function viewportFromSelection(a: number, b: number, minWidth: number = MIN_VIEW_WIDTH): Viewport {
  return clampViewport({ from: Math.min(a, b), to: Math.max(a, b) }, minWidth);
}

/** The window in µs of a trace drawn over [startUs, endUs]. */
export function viewportUs(v: Viewport, startUs: number, endUs: number): { startUs: number; endUs: number } {
  const d = endUs - startUs;
  return { startUs: startUs + v.from * d, endUs: startUs + v.to * d };
}

/** A linear map between µs in [startUs, endUs] and pixels in [0, widthPx]. */
export interface TimeScale {
  toPx(us: number): number;
  toUs(px: number): number;
}

export function timeScale(startUs: number, endUs: number, widthPx: number): TimeScale {
  const d = endUs - startUs;
  const perUs = d > 0 ? widthPx / d : 0;
  return {
    toPx: (us) => (us - startUs) * perUs,
    toUs: (px) => (perUs > 0 ? startUs + px / perUs : startUs),
  };
}
