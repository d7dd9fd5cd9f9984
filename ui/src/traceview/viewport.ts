// Which rows of the timeline's fixed-height list are in the DOM: it is virtualized, so a
// 50,000-span trace costs what its visible rows cost. (The time window is trace/axis.ts.)

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
 * `center` places a row it has to bring in mid-view (a jump: deep link, find), otherwise
 * the least movement is made (a step: arrow keys).
 */
export function scrollForRow(index: number, scrollTop: number, height: number, rowHeight: number, center = false): number | null {
  const top = index * rowHeight;
  const bottom = top + rowHeight;
  if (top >= scrollTop && bottom <= scrollTop + height) return null;
  if (center) return Math.max(0, Math.round(top - (height - rowHeight) / 2));
  return top < scrollTop ? top : Math.max(0, bottom - height);
}

/**
 * Where a bar's duration label goes, given the bar's start and end as fractions of the lane:
 * after the bar; before it when the bar reaches the right edge; inside it (at its visible
 * start) when it spans nearly the whole lane.
 */
export function durationLabelAt(start: number, end: number): { side: "after" | "before" | "inside"; at: number } {
  if (end < 0.85) return { side: "after", at: end };
  const from = Math.max(0, start);
  return from > 0.15 ? { side: "before", at: from } : { side: "inside", at: from };
}
