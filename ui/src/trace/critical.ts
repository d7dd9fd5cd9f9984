// The critical path as Jaeger UI defines it: from the root's end, repeatedly descend into the
// child that finished last before the current cut point; the parent's own time between such
// children (and before the first one) is the parent's share of the path. Children are first
// clipped to their parent, and those lying wholly outside it are left out with their subtree.
// It runs on the drawn (skew-corrected) times, iteratively, in O(n log n).

import type { TraceNode, TraceTree } from "./tree";

export interface CriticalSegment {
  readonly key: string;
  readonly spanId: string;
  readonly startUs: number;
  readonly endUs: number;
}

export interface CriticalPath {
  /** In time order; consecutive segments touch, from the root's start to its end. */
  readonly segments: readonly CriticalSegment[];
  /** Keys of the nodes with at least one segment. */
  readonly keys: ReadonlySet<string>;
  /** Each node's segments, for highlighting parts of its bar. */
  readonly byKey: ReadonlyMap<string, readonly CriticalSegment[]>;
}

/** The critical path below `from` (default: the root, or the first top-level span without one). */
export function criticalPath(tree: TraceTree, from?: TraceNode): CriticalPath {
  const top = from ?? tree.root ?? tree.roots[0];
  const segments: CriticalSegment[] = [];
  if (top !== undefined) walk(tree, top, segments);
  segments.reverse();
  const byKey = new Map<string, CriticalSegment[]>();
  for (const s of segments) {
    const list = byKey.get(s.key);
    if (list === undefined) byKey.set(s.key, [s]);
    else list.push(s);
  }
  return { segments, keys: new Set(byKey.keys()), byKey };
}

function walk(tree: TraceTree, top: TraceNode, out: CriticalSegment[]): void {
  const offset = top.index;
  const size = top.descendants + 1;
  // Clipped times, by preorder position in the subtree; NaN marks a left-out node.
  const s = new Float64Array(size);
  const e = new Float64Array(size);
  s[0] = top.startUs;
  e[0] = top.endUs;
  for (let i = 1; i < size; i++) {
    const n = tree.nodes[offset + i]!;
    const pi = n.parent!.index - offset;
    const ps = s[pi]!;
    const pe = e[pi]!;
    if (Number.isNaN(ps) || n.startUs >= pe || n.endUs <= ps) {
      s[i] = e[i] = NaN;
    } else {
      s[i] = Math.max(n.startUs, ps);
      e[i] = Math.min(n.endUs, pe);
    }
  }
  // Per node (by subtree position): its kept children, latest end first, and how far the
  // walk has gone through them (cuts only move back in time, so never backwards).
  const byEnd: (TraceNode[] | undefined)[] = new Array<TraceNode[] | undefined>(size);
  const next = new Int32Array(size);
  const childrenByEnd = (n: TraceNode): TraceNode[] => {
    const i = n.index - offset;
    let list = byEnd[i];
    if (list === undefined) {
      list = n.children.filter((c) => !Number.isNaN(s[c.index - offset]!));
      if (list.length > 1) list.sort((a, b) => e[b.index - offset]! - e[a.index - offset]!);
      byEnd[i] = list;
    }
    return list;
  };
  const emit = (n: TraceNode, startUs: number, endUs: number): void => {
    if (endUs > startUs) out.push({ key: n.key, spanId: n.spanId, startUs, endUs });
  };

  let cur = top;
  let cut = e[0]!;
  // On arrival from above every child qualifies (none ends after the clipped parent); on
  // return from a child only those ending strictly before that child started do.
  let arriving = true;
  for (;;) {
    const list = childrenByEnd(cur);
    let p = next[cur.index - offset]!;
    while (p < list.length) {
      const end = e[list[p]!.index - offset]!;
      if (end < cut || (arriving && end === cut)) break;
      p++;
    }
    const lfc = list[p];
    if (lfc !== undefined) {
      next[cur.index - offset] = p + 1;
      const lfcEnd = e[lfc.index - offset]!;
      emit(cur, lfcEnd, cut);
      cur = lfc;
      cut = lfcEnd;
      arriving = true;
      continue;
    }
    next[cur.index - offset] = p;
    const curStart = s[cur.index - offset]!;
    emit(cur, curStart, cut);
    if (cur === top) return;
    cut = curStart;
    cur = cur.parent!;
    arriving = false;
  }
}
