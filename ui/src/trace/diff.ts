// Trace comparison as Jaeger's trace diff does it: both trees folded into one structure by
// the path of (service, operation) pairs from the top, so repeated calls become one node
// with a count per side, and each node says whether B added, removed or changed it.

import type { TraceNode, TraceTree } from "./tree";

export type DiffState = "added" | "removed" | "changed" | "same";

export interface DiffNode {
  /** Unique within the diff, stable for one pair of traces. */
  readonly id: number;
  readonly service: string;
  readonly operation: string;
  readonly depth: number;
  readonly parent: DiffNode | null;
  readonly children: readonly DiffNode[];
  /** The spans of each trace that fold into this node. */
  readonly a: readonly TraceNode[];
  readonly b: readonly TraceNode[];
  readonly countA: number;
  readonly countB: number;
  /** Mean span duration on each side; null where the side has none. */
  readonly meanUsA: number | null;
  readonly meanUsB: number | null;
  /** meanUsB - meanUsA, null unless both sides have spans. */
  readonly deltaUs: number | null;
  readonly state: DiffState;
}

// A node while both trees are folded in; callers get the readonly shape.
type Draft = { -readonly [K in Exclude<keyof DiffNode, "parent" | "children" | "a" | "b">]: DiffNode[K] } & {
  readonly parent: Draft | null;
  readonly children: Draft[];
  readonly a: TraceNode[];
  readonly b: TraceNode[];
};

export interface TraceDiff {
  /** Preorder; children in order of first appearance (in A, then B). */
  readonly nodes: readonly DiffNode[];
  readonly roots: readonly DiffNode[];
  readonly counts: Readonly<Record<DiffState, number>>;
}

export interface DiffOptions {
  /**
   * Also mark a node "changed" when its mean duration moved by more than this fraction of
   * A's mean (0.2 = 20 %). Unset: only a different count of calls is a change, as in Jaeger.
   */
  durationChange?: number;
}

export function diffTraces(a: TraceTree, b: TraceTree, options: DiffOptions = {}): TraceDiff {
  // One map for both sides, keyed by parent node id and the pair: nodes never hold their
  // full path, so a 50,000-deep chain stays linear.
  const byPath = new Map<string, Draft>();
  const created: Draft[] = [];
  const roots: Draft[] = [];

  const fold = (tree: TraceTree, side: "a" | "b"): void => {
    const groupOf = new Map<TraceNode, Draft>();
    for (const n of tree.nodes) {
      const parent = n.parent === null ? null : groupOf.get(n.parent)!;
      const service = n.span.service;
      const operation = n.span.name;
      // JSON keeps the three parts apart whatever characters the names contain.
      const path = JSON.stringify([parent === null ? -1 : parent.id, service, operation]);
      let g = byPath.get(path);
      if (g === undefined) {
        g = {
          id: created.length,
          service,
          operation,
          depth: parent === null ? 0 : parent.depth + 1,
          parent,
          children: [],
          a: [],
          b: [],
          countA: 0,
          countB: 0,
          meanUsA: null,
          meanUsB: null,
          deltaUs: null,
          state: "same",
        };
        byPath.set(path, g);
        created.push(g);
        if (parent === null) roots.push(g);
        else parent.children.push(g);
      }
      g[side].push(n);
      groupOf.set(n, g);
    }
  };
  fold(a, "a");
  fold(b, "b");

  const counts: Record<DiffState, number> = { added: 0, removed: 0, changed: 0, same: 0 };
  const mean = (ns: readonly TraceNode[]): number | null =>
    ns.length === 0 ? null : ns.reduce((sum, n) => sum + (n.endUs - n.startUs), 0) / ns.length;
  for (const g of created) {
    g.countA = g.a.length;
    g.countB = g.b.length;
    g.meanUsA = mean(g.a);
    g.meanUsB = mean(g.b);
    g.deltaUs = g.meanUsA !== null && g.meanUsB !== null ? g.meanUsB - g.meanUsA : null;
    g.state = stateOf(g, options.durationChange);
    counts[g.state]++;
  }

  const nodes: Draft[] = [];
  const stack = [...roots].reverse();
  while (stack.length > 0) {
    const g = stack.pop()!;
    nodes.push(g);
    for (let i = g.children.length - 1; i >= 0; i--) stack.push(g.children[i]!);
  }
  return { nodes, roots, counts };
}

function stateOf(g: Draft, durationChange: number | undefined): DiffState {
  if (g.countA === 0) return "added";
  if (g.countB === 0) return "removed";
  if (g.countA !== g.countB) return "changed";
  if (durationChange !== undefined && g.deltaUs !== null && g.meanUsA !== null) {
    const base = Math.abs(g.meanUsA);
    if (Math.abs(g.deltaUs) > durationChange * base) return "changed";
  }
  return "same";
}
