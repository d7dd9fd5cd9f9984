// The scroll position and height of a scrolling element, read once per frame, and the rows
// of a fixed-height list that are in view there (see visibleRange).
import { useEffect, useRef, useState } from "preact/hooks";
import type { RefObject } from "preact";
import { visibleRange } from "./virtual";

export interface VisibleRows {
  readonly scroller: RefObject<HTMLDivElement>;
  /** Rows [first, last) to render. */
  readonly first: number;
  readonly last: number;
}

export function useVisibleRows(count: number, rowHeight: number, overscan: number): VisibleRows {
  const scroller = useRef<HTMLDivElement>(null);
  const [view, setView] = useState({ top: 0, height: 800 });
  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    let frame = 0;
    const update = () => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => setView({ top: el.scrollTop, height: el.clientHeight }));
    };
    el.addEventListener("scroll", update, { passive: true });
    const resize = new ResizeObserver(update);
    resize.observe(el);
    return () => {
      cancelAnimationFrame(frame);
      el.removeEventListener("scroll", update);
      resize.disconnect();
    };
  }, []);
  const [first, last] = visibleRange(count, rowHeight, view.top, view.height, overscan);
  return { scroller, first, last };
}
