// Rendering only the rows in view of a long list of fixed-height rows.

/** The rows [first, last) a list of fixed-height rows shows at a scroll offset, plus `overscan`. */
export function visibleRange(
  count: number,
  rowHeight: number,
  scrollTop: number,
  viewHeight: number,
  overscan: number,
): [number, number] {
  // A scroll offset left over from a longer list still shows the end of this one.
  const lastPage = Math.max(0, count - Math.ceil(viewHeight / rowHeight) - overscan);
  const first = Math.min(lastPage, Math.max(0, Math.floor(scrollTop / rowHeight) - overscan));
  const last = Math.min(count, Math.max(first, Math.ceil((scrollTop + viewHeight) / rowHeight)) + overscan);
  return [first, Math.max(first, last)];
}

/** The scroll offset that brings row `index` fully into view below a sticky header of
 * `headHeight` (the rows start under it), moving as little as possible. */
export function scrollToShow(index: number, rowHeight: number, scrollTop: number, viewHeight: number, headHeight: number): number {
  const top = index * rowHeight;
  if (top < scrollTop) return top;
  const bottom = top + rowHeight + headHeight;
  return bottom > scrollTop + viewHeight ? bottom - viewHeight : scrollTop;
}
