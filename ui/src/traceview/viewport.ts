// The timeline's two windows: which rows of a fixed-height list are in the DOM (the list is
// virtualized so a 50,000-span trace costs what its visible rows cost), and which part of
// the trace's time range the axis shows (zoomed and panned from the minimap).
import { formatDuration } from "../format";

export interface RowWindow {
  /** First rendered row. */
  readonly first: number;
  /** One past the last rendered row. */
  readonly last: number;
}

/** Rows overlapping the visible part of the list, plus `overscan` on each side. */
export function rowWindow(scrollTop: number, height: number, rowHeight: number, count: number, overscan = 8): RowWindow {
  if (count <= 0 || rowHeight <= 0) return { first: 0, last: 0 };
  const top = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan);
  const bottom = Math.ceil((scrollTop + Math.max(0, height)) / rowHeight) + overscan;
  return { first: Math.min(top, count), last: Math.min(count, Math.max(bottom, top)) };
}

/**
 * The scrollTop that brings row `index` into view, or null when it is fully visible.
 * `center` places it mid-view (deep links), otherwise the least movement is made.
 */
export function scrollForRow(index: number, scrollTop: number, height: number, rowHeight: number, center = false): number | null {
  const top = index * rowHeight;
  const bottom = top + rowHeight;
  if (center) return Math.max(0, Math.round(top - (height - rowHeight) / 2));
  if (top < scrollTop) return top;
  if (bottom > scrollTop + height) return Math.max(0, bottom - height);
  return null;
}

/** A shown time range in µs (relative to the trace's base). */
export interface TimeView {
  readonly startUs: number;
  readonly endUs: number;
}

/** Smallest range the axis zooms to, so bars never become infinitely wide. */
export const MIN_VIEW_US = 1;

/** Keeps a view inside the trace and at least MIN_VIEW_US wide, moving rather than shrinking it. */
export function clampView(view: TimeView, bounds: TimeView): TimeView {
  const total = Math.max(bounds.endUs - bounds.startUs, MIN_VIEW_US);
  let width = Math.min(Math.max(view.endUs - view.startUs, MIN_VIEW_US), total);
  if (!Number.isFinite(width)) width = total;
  let start = Math.min(Math.max(view.startUs, bounds.startUs), bounds.startUs + total - width);
  if (!Number.isFinite(start)) start = bounds.startUs;
  return { startUs: start, endUs: start + width };
}

/** The range between two positions on the minimap (fractions 0..1 of the whole trace, any order). */
export function viewFromFractions(a: number, b: number, bounds: TimeView): TimeView {
  const lo = Math.max(0, Math.min(a, b));
  const hi = Math.min(1, Math.max(a, b));
  const total = bounds.endUs - bounds.startUs;
  return clampView({ startUs: bounds.startUs + lo * total, endUs: bounds.startUs + hi * total }, bounds);
}

/** The view moved by a fraction of the whole trace (dragging the minimap's window). */
export function panView(view: TimeView, deltaFraction: number, bounds: TimeView): TimeView {
  const shift = deltaFraction * (bounds.endUs - bounds.startUs);
  return clampView({ startUs: view.startUs + shift, endUs: view.endUs + shift }, bounds);
}

/** Zoom by `factor` (< 1 zooms in) keeping the time at `anchor` (0..1 of the view) in place. */
export function zoomView(view: TimeView, factor: number, anchor: number, bounds: TimeView): TimeView {
  const width = view.endUs - view.startUs;
  const at = view.startUs + anchor * width;
  const next = width * factor;
  return clampView({ startUs: at - anchor * next, endUs: at - anchor * next + next }, bounds);
}

export function isWholeView(view: TimeView, bounds: TimeView): boolean {
  return view.startUs <= bounds.startUs && view.endUs >= bounds.endUs;
}

export interface Tick {
  /** µs relative to the trace base. */
  readonly us: number;
  /** Fraction 0..1 across the view. */
  readonly at: number;
  /** Offset from the trace start, as a duration. */
  readonly label: string;
}

const STEPS = [1, 2, 5] as const;

/** Round-numbered ticks (1, 2, 5 × 10^k µs) across a view, at most `max` of them. */
export function ticks(view: TimeView, origin: number, max = 6): Tick[] {
  const width = view.endUs - view.startUs;
  if (!(width > 0) || max < 1) return [];
  const raw = width / max;
  const power = 10 ** Math.floor(Math.log10(raw));
  let step = power * 10;
  for (const s of STEPS) {
    if (s * power >= raw) {
      step = s * power;
      break;
    }
  }
  const out: Tick[] = [];
  const first = Math.ceil((view.startUs - origin) / step) * step + origin;
  for (let us = first; us <= view.endUs + step * 1e-9; us += step) {
    out.push({ us, at: (us - view.startUs) / width, label: formatDuration((us - origin) / 1000) });
  }
  return out;
}
