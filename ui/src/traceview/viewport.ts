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
