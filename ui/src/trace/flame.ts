// Flame graph layout of one trace: a rectangle per span, one row per tree depth, each span
// inside its parent. Widths are durations; where siblings overlap in time (concurrent calls,
// skewed clocks) they are shrunk in proportion and set side by side, in start order, so no
// two rectangles of a row ever overlap and a click lands on exactly one span.

import { selfTimesUs } from "./stats";
import type { TraceNode, TraceTree } from "./tree";

export interface FlameRect {
  readonly key: string;
  readonly spanId: string;
  readonly depth: number;
  /** Left and right edge as fractions of the whole graph's width (0..1). */
  readonly x0: number;
  readonly x1: number;
  readonly label: string;
  readonly service: string;
  readonly serviceIndex: number;
  /** The span's drawn times and own time, for tooltips. */
  readonly startUs: number;
  readonly endUs: number;
  readonly selfUs: number;
  readonly error: boolean;
}

export interface FlameLayout {
  /** In preorder: `rects[node.index]` belongs to `tree.nodes[node.index]`. */
  readonly rects: readonly FlameRect[];
  /** Per depth, by x0 (the rows are disjoint, so a binary search finds the span under a point). */
  readonly rows: readonly (readonly FlameRect[])[];
}

export function flameLayout(tree: TraceTree): FlameLayout {
  const self = selfTimesUs(tree);
  const n = tree.nodes.length;
  const x0 = new Float64Array(n);
  const x1 = new Float64Array(n);
  const span = tree.endUs - tree.startUs;
  const toFrac = span > 0 ? (us: number): number => (us - tree.startUs) / span : (): number => 0;
  place(tree.roots, 0, 1, tree.startUs, tree.endUs, toFrac, x0, x1);
  for (const node of tree.nodes) {
    if (node.children.length === 0) continue;
    const i = node.index;
    const w = x1[i]! - x0[i]!;
    const d = node.endUs - node.startUs;
    const toPos =
      d > 0 ? (us: number): number => x0[i]! + ((us - node.startUs) / d) * w : (): number => x0[i]!;
    place(node.children, x0[i]!, x1[i]!, node.startUs, node.endUs, toPos, x0, x1);
  }
  const rects: FlameRect[] = tree.nodes.map((node) => ({
    key: node.key,
    spanId: node.spanId,
    depth: node.depth,
    x0: x0[node.index]!,
    x1: x1[node.index]!,
    label: node.span.name,
    service: node.span.service,
    serviceIndex: node.serviceIndex,
    startUs: node.startUs,
    endUs: node.endUs,
    selfUs: self[node.index]!,
    error: node.error,
  }));
  const rows: FlameRect[][] = Array.from({ length: tree.maxDepth + 1 }, () => []);
  for (const r of rects) rows[r.depth]!.push(r);
  for (const row of rows) row.sort((a, b) => a.x0 - b.x0 || a.x1 - b.x1);
  return { rects, rows: n === 0 ? [] : rows };
}

/**
 * Lays siblings (ordered by start) into [lo, hi]: each at its time position when it fits,
 * never before the previous sibling's end, and never so late that the rest cannot fit.
 */
function place(
  siblings: readonly TraceNode[],
  lo: number,
  hi: number,
  fromUs: number,
  toUs: number,
  toPos: (us: number) => number,
  x0: Float64Array,
  x1: Float64Array,
): void {
  const width = hi - lo;
  const range = toUs - fromUs;
  const widths = siblings.map((c) => {
    const d = Math.min(c.endUs, toUs) - Math.max(c.startUs, fromUs);
    return d > 0 && range > 0 ? (d / range) * width : 0;
  });
  const total = widths.reduce((a, b) => a + b, 0);
  const scale = total > width ? width / total : 1;
  let remaining = total * scale;
  let cursor = lo;
  for (let k = 0; k < siblings.length; k++) {
    const c = siblings[k]!;
    const w = widths[k]! * scale;
    const want = toPos(Math.max(c.startUs, fromUs));
    const start = Math.max(cursor, Math.min(want, hi - remaining));
    x0[c.index] = start;
    x1[c.index] = Math.min(start + w, hi);
    cursor = x1[c.index]!;
    remaining -= w;
  }
}

/** The rectangle at depth `depth` under the horizontal fraction `x`, or null. */
export function flameHit(layout: FlameLayout, depth: number, x: number): FlameRect | null {
  const row = layout.rows[depth];
  if (row === undefined) return null;
  let lo = 0;
  let hi = row.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = row[mid]!;
    if (x < r.x0) hi = mid - 1;
    else if (x >= r.x1) lo = mid + 1;
    else return r;
  }
  return null;
}

/**
 * Zooms onto one span: its subtree rescaled so the span fills the width, plus its ancestors
 * (clipped to the width, to click back out). Empty when the key is unknown.
 */
export function focusFlame(layout: FlameLayout, tree: TraceTree, key: string): FlameRect[] {
  const node = tree.byKey.get(key);
  if (node === undefined) return [];
  const f = layout.rects[node.index]!;
  const w = f.x1 - f.x0;
  const rescale = (r: FlameRect): FlameRect =>
    w > 0
      ? { ...r, x0: Math.max(0, (r.x0 - f.x0) / w), x1: Math.min(1, (r.x1 - f.x0) / w) }
      : { ...r, x0: 0, x1: r === f ? 1 : 0 };
  const out: FlameRect[] = [];
  for (let a = node.parent; a !== null; a = a.parent) out.push({ ...layout.rects[a.index]!, x0: 0, x1: 1 });
  out.reverse();
  for (let i = node.index; i <= node.index + node.descendants; i++) out.push(rescale(layout.rects[i]!));
  return out;
}
