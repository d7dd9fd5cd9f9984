// What the flame graph's canvas shows: a horizontal window onto the layout (the whole trace,
// or one span's subtree after a zoom, with its ancestors drawn full width above it), the rows
// in the vertical scroll window, and the span under the pointer. Pure, so it is tested
// without a browser; the component only paints what this returns.

import type { FlameLayout, FlameRect } from "../trace/flame";
import { flameHit } from "../trace/flame";
import type { TraceNode, TraceTree } from "../trace/tree";

export interface FlameWindow {
  /** The zoomed-onto span, null for the whole trace. */
  readonly focus: TraceNode | null;
  /** Its depth (rows above it show its ancestors); 0 without a zoom. */
  readonly focusDepth: number;
  /** The horizontal slice of the layout that fills the width (fractions of the whole). */
  readonly x0: number;
  readonly x1: number;
}

export const WHOLE: FlameWindow = { focus: null, focusDepth: 0, x0: 0, x1: 1 };

/** The window zoomed onto `key`; the whole trace when the key is unknown or has no width. */
export function zoomTo(layout: FlameLayout, tree: TraceTree, key: string | null): FlameWindow {
  const node = key === null ? undefined : tree.byKey.get(key);
  if (node === undefined) return WHOLE;
  const r = layout.rects[node.index]!;
  if (!(r.x1 > r.x0)) return WHOLE;
  return { focus: node, focusDepth: node.depth, x0: r.x0, x1: r.x1 };
}

/** The zoomed span and its ancestors, top first: the breadcrumb back out. */
export function breadcrumb(win: FlameWindow): TraceNode[] {
  const out: TraceNode[] = [];
  for (let n = win.focus; n !== null; n = n.parent) out.push(n);
  return out.reverse();
}

function ancestorAt(win: FlameWindow, depth: number): TraceNode | null {
  let n = win.focus;
  while (n !== null && n.depth > depth) n = n.parent;
  return n;
}

/** A rectangle placed on the canvas, in CSS pixels. */
export interface Placed {
  readonly rect: FlameRect;
  readonly left: number;
  readonly width: number;
  /** An ancestor of the zoomed span, drawn full width and dimmed. */
  readonly ancestor: boolean;
}

/** The rectangles of rows `fromDepth..toDepth` that fall in the window, at least `minPx` wide. */
export function placeRows(
  layout: FlameLayout,
  win: FlameWindow,
  widthPx: number,
  fromDepth: number,
  toDepth: number,
  minPx = 0.5,
): Placed[] {
  const out: Placed[] = [];
  const span = win.x1 - win.x0;
  const last = Math.min(toDepth, layout.rows.length - 1);
  for (let depth = Math.max(0, fromDepth); depth <= last; depth++) {
    if (depth < win.focusDepth) {
      const a = ancestorAt(win, depth);
      if (a !== null) out.push({ rect: layout.rects[a.index]!, left: 0, width: widthPx, ancestor: true });
      continue;
    }
    const row = layout.rows[depth]!;
    for (let i = firstEndingAfter(row, win.x0); i < row.length; i++) {
      const r = row[i]!;
      if (r.x0 >= win.x1) break;
      const left = ((Math.max(r.x0, win.x0) - win.x0) / span) * widthPx;
      const right = ((Math.min(r.x1, win.x1) - win.x0) / span) * widthPx;
      if (right - left < minPx) continue;
      out.push({ rect: r, left, width: right - left, ancestor: false });
    }
  }
  return out;
}

/** Index of the first rect of a row whose right edge lies past `x` (rows are disjoint, by x0). */
function firstEndingAfter(row: readonly FlameRect[], x: number): number {
  let lo = 0;
  let hi = row.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (row[mid]!.x1 <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The span under a point: `fx` is 0..1 across the canvas, `depth` the row. */
export function spanAt(layout: FlameLayout, tree: TraceTree, win: FlameWindow, fx: number, depth: number): FlameRect | null {
  if (fx < 0 || fx >= 1 || depth < 0) return null;
  if (depth < win.focusDepth) {
    const a = ancestorAt(win, depth);
    return a === null ? null : layout.rects[a.index]!;
  }
  const r = flameHit(layout, depth, win.x0 + fx * (win.x1 - win.x0));
  if (r === null || win.focus === null) return r;
  // Only the zoomed subtree is drawn below the focus: anything else is empty space there.
  const node = tree.byKey.get(r.key);
  return node !== undefined && isWithin(node, win.focus) ? r : null;
}

function isWithin(node: TraceNode, ancestor: TraceNode): boolean {
  return node.index >= ancestor.index && node.index <= ancestor.index + ancestor.descendants;
}

/** The label that fits `widthPx` given a measure of text width; "" when not even one letter does. */
export function fitLabel(text: string, widthPx: number, measure: (s: string) => number): string {
  if (measure(text) <= widthPx) return text;
  let lo = 0;
  let hi = text.length;
  // The longest prefix that fits with an ellipsis, by bisection (measuring is the cost).
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (measure(`${text.slice(0, mid)}…`) <= widthPx) lo = mid;
    else hi = mid - 1;
  }
  return lo === 0 ? "" : `${text.slice(0, lo)}…`;
}

/** Keyboard moves over the flame graph: up to the parent, down to the first child, sideways in the row. */
export function neighbour(
  layout: FlameLayout,
  tree: TraceTree,
  key: string,
  move: "up" | "down" | "left" | "right",
): string | null {
  const node = tree.byKey.get(key);
  if (node === undefined) return null;
  if (move === "up") return node.parent?.key ?? null;
  if (move === "down") return node.children[0]?.key ?? null;
  const row = layout.rows[node.depth]!;
  const r = layout.rects[node.index]!;
  const at = row.indexOf(r);
  const next = row[at + (move === "left" ? -1 : 1)];
  return next?.key ?? null;
}
