// The span tree every trace view draws from: parent links resolved, children ordered by
// start, orphans, duplicate ids and cycles made safe, clock skew between services corrected,
// and the flattened rows of a (virtualized) timeline. Everything walks with explicit stacks
// or over the preorder array, so a 50,000-deep chain cannot overflow the call stack.

import { type NanoTime, type Span, compareNano, diffUs, isErrorSpan, parseNano } from "./model";

export interface TraceNode {
  readonly span: Span;
  /**
   * Unique within the tree: the span id, or `spanId#n` for the n-th repeat of an id already
   * seen (those are kept, flagged `duplicateId`, so no span silently disappears).
   */
  readonly key: string;
  readonly spanId: string;
  /** Position in `tree.nodes` (preorder = row order with everything expanded). */
  readonly index: number;
  readonly depth: number;
  readonly parent: TraceNode | null;
  /** By drawn start. */
  readonly children: readonly TraceNode[];
  /** Number of nodes below this one (all levels). */
  readonly descendants: number;
  /** Index into `tree.services`, in order of first appearance from the top. */
  readonly serviceIndex: number;
  /** Drawn times, µs from `tree.base`, after the skew shift. */
  readonly startUs: number;
  readonly endUs: number;
  /** Times as reported, µs from `tree.base`. */
  readonly rawStartUs: number;
  readonly rawEndUs: number;
  /** Shift added to the reported times (inherited by same-service descendants). */
  readonly skewShiftUs: number;
  /** True where the shift originates: a child of another service that lay outside its parent. */
  readonly skewed: boolean;
  /** Its parent id names no span of the trace ("parent not in trace"). */
  readonly orphan: boolean;
  /** Its parent chain loops back to itself; the loop was cut above this node. */
  readonly cycle: boolean;
  readonly duplicateId: boolean;
  readonly error: boolean;
}

// The same node while the tree is being built; views only ever see the readonly shape.
type Draft = { -readonly [K in Exclude<keyof TraceNode, "parent" | "children">]: TraceNode[K] } & {
  parent: Draft | null;
  children: Draft[];
};

export interface TraceTree {
  /** Preorder (parent before children, children by start). */
  readonly nodes: readonly TraceNode[];
  /** Top-level nodes by start: true roots, orphans and cut cycles. */
  readonly roots: readonly TraceNode[];
  /** The span without a parent (the earliest if several); null when it has not arrived. */
  readonly root: TraceNode | null;
  readonly rootMissing: boolean;
  readonly byKey: ReadonlyMap<string, TraceNode>;
  /** First occurrence of each span id. */
  readonly bySpanId: ReadonlyMap<string, TraceNode>;
  /** Service names in order of first appearance from the top; colours index into this. */
  readonly services: readonly string[];
  /** The earliest reported start; every `*Us` is relative to it. */
  readonly base: NanoTime;
  /** Drawn extent of the whole trace in µs from `base`. */
  readonly startUs: number;
  readonly endUs: number;
  readonly maxDepth: number;
  readonly errorCount: number;
}

function byStart(a: Draft, b: Draft): number {
  return a.rawStartUs - b.rawStartUs || a.rawEndUs - b.rawEndUs;
}

function byDrawnStart(a: Draft, b: Draft): number {
  return a.startUs - b.startUs || a.endUs - b.endUs;
}

/** Builds the tree of a trace's spans in O(n log n). */
export function buildTree(spans: readonly Span[]): TraceTree {
  const times = spans.map((s) => [parseNano(s.startTimeUnixNano), parseNano(s.endTimeUnixNano)] as const);
  let base: NanoTime = { sec: 0, nano: 0 };
  for (let i = 0; i < times.length; i++) {
    const t = times[i]![0];
    if (i === 0 || compareNano(t, base) < 0) base = t;
  }

  const all: Draft[] = [];
  const byKey = new Map<string, Draft>();
  const bySpanId = new Map<string, Draft>();
  const repeats = new Map<string, number>();
  for (let i = 0; i < spans.length; i++) {
    const span = spans[i]!;
    const [start, end] = times[i]!;
    const startUs = diffUs(start, base);
    // An end before the start is drawn as an instant rather than a negative bar.
    const endUs = Math.max(startUs, diffUs(end, base));
    let key = span.spanId;
    const seen = repeats.get(span.spanId);
    if (seen !== undefined) {
      repeats.set(span.spanId, seen + 1);
      key = `${span.spanId}#${seen + 1}`;
      while (byKey.has(key)) key += "'";
    } else {
      repeats.set(span.spanId, 0);
    }
    const node: Draft = {
      span,
      key,
      spanId: span.spanId,
      index: i,
      depth: 0,
      parent: null,
      children: [],
      descendants: 0,
      serviceIndex: 0,
      startUs,
      endUs,
      rawStartUs: startUs,
      rawEndUs: endUs,
      skewShiftUs: 0,
      skewed: false,
      orphan: false,
      cycle: false,
      duplicateId: seen !== undefined,
      error: isErrorSpan(span),
    };
    all.push(node);
    byKey.set(key, node);
    if (seen === undefined) bySpanId.set(span.spanId, node);
  }

  const tops: Draft[] = [];
  for (const node of all) {
    const pid = node.span.parentSpanId;
    const parent = pid ? bySpanId.get(pid) : undefined;
    if (!pid) {
      tops.push(node);
    } else if (parent === undefined) {
      node.orphan = true;
      tops.push(node);
    } else {
      node.parent = parent;
      parent.children.push(node);
    }
  }

  // Whatever the roots do not reach hangs in (or below) a parent loop. Each loop is cut at
  // its earliest span, a deterministic choice, which becomes a top-level node.
  const reached = new Uint8Array(all.length);
  const mark = (from: Draft): void => {
    const stack = [from];
    while (stack.length > 0) {
      const n = stack.pop()!;
      if (reached[n.index]) continue;
      reached[n.index] = 1;
      for (const c of n.children) stack.push(c);
    }
  };
  for (const t of tops) mark(t);
  for (const start of all) {
    if (reached[start.index]) continue;
    // Climb until a node repeats: that node is on the loop.
    const walked = new Set<Draft>();
    let x: Draft = start;
    while (!walked.has(x)) {
      walked.add(x);
      x = x.parent!;
    }
    let cut = x;
    for (let y = x.parent!; y !== x; y = y.parent!) if (byStart(y, cut) < 0) cut = y;
    const parent = cut.parent!;
    parent.children.splice(parent.children.indexOf(cut), 1);
    cut.parent = null;
    cut.cycle = true;
    tops.push(cut);
    mark(cut);
  }

  // The shift depends only on the parent, so it can be settled before ordering: rows then
  // follow the drawn times, as the bars do.
  const pending: Draft[] = [...tops];
  while (pending.length > 0) {
    const n = pending.pop()!;
    applySkew(n);
    for (const c of n.children) pending.push(c);
  }
  for (const n of all) if (n.children.length > 1) n.children.sort(byDrawnStart);
  tops.sort((a, b) => byDrawnStart(a, b) || Number(a.orphan || a.cycle) - Number(b.orphan || b.cycle));
  const root = tops.find((t) => !t.orphan && !t.cycle) ?? null;

  // Preorder numbering with depth and service order, parents always before children.
  const nodes: Draft[] = [];
  const serviceIndex = new Map<string, number>();
  const services: string[] = [];
  let maxDepth = 0;
  let errorCount = 0;
  const stack: Draft[] = [];
  for (let i = tops.length - 1; i >= 0; i--) stack.push(tops[i]!);
  while (stack.length > 0) {
    const n = stack.pop()!;
    n.index = nodes.length;
    nodes.push(n);
    const p = n.parent;
    n.depth = p === null ? 0 : p.depth + 1;
    if (n.depth > maxDepth) maxDepth = n.depth;
    if (n.error) errorCount++;
    let si = serviceIndex.get(n.span.service);
    if (si === undefined) {
      si = services.length;
      serviceIndex.set(n.span.service, si);
      services.push(n.span.service);
    }
    n.serviceIndex = si;
    for (let i = n.children.length - 1; i >= 0; i--) stack.push(n.children[i]!);
  }

  let startUs = Infinity;
  let endUs = -Infinity;
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i]!;
    if (n.parent !== null) n.parent.descendants += n.descendants + 1;
    if (n.startUs < startUs) startUs = n.startUs;
    if (n.endUs > endUs) endUs = n.endUs;
  }
  if (nodes.length === 0) startUs = endUs = 0;

  return {
    nodes,
    roots: tops,
    root,
    rootMissing: root === null,
    byKey,
    bySpanId,
    services,
    base,
    startUs,
    endUs,
    maxDepth,
    errorCount,
  };
}

/**
 * Jaeger's clock-skew correction, with the service standing in for the host: a child of
 * another service that does not lie within its (already shifted) parent, but is short
 * enough to fit, is centred in it, as if the network latency were split evenly between
 * request and response; its same-service descendants move with it.
 */
function applySkew(n: Draft): void {
  const p = n.parent;
  let shift = 0;
  if (p !== null) {
    shift = p.skewShiftUs;
    if (p.span.service !== n.span.service) {
      shift = 0;
      const pDur = p.endUs - p.startUs;
      const dur = n.rawEndUs - n.rawStartUs;
      const fits = n.rawStartUs >= p.startUs && n.rawEndUs <= p.endUs;
      if (!fits && dur <= pDur) {
        shift = p.startUs + (pDur - dur) / 2 - n.rawStartUs;
        n.skewed = shift !== 0;
      }
    }
  }
  n.skewShiftUs = shift;
  n.startUs = n.rawStartUs + shift;
  n.endUs = n.rawEndUs + shift;
}

export interface RowOptions {
  /** Only rows of these services (their depth is kept, so the indentation still means something). */
  services?: ReadonlySet<string>;
}

/**
 * The rows a timeline renders: preorder, skipping everything below a collapsed node. O(n),
 * so it can rerun on every toggle of a 50,000-span trace.
 */
export function visibleRows(
  tree: TraceTree,
  collapsed: ReadonlySet<string>,
  options: RowOptions = {},
): TraceNode[] {
  const rows: TraceNode[] = [];
  const only = options.services;
  const nodes = tree.nodes;
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i]!;
    if (only === undefined || only.has(n.span.service)) rows.push(n);
    if (collapsed.has(n.key)) i += n.descendants;
  }
  return rows;
}

/** Every node that has children, collapsed: only the top-level rows remain. */
export function collapseAll(tree: TraceTree): Set<string> {
  return collapseToDepth(tree, 0);
}

export function expandAll(): Set<string> {
  return new Set();
}

/** Rows down to `depth` (0 = top level) visible, everything deeper collapsed. */
export function collapseToDepth(tree: TraceTree, depth: number): Set<string> {
  const out = new Set<string>();
  for (const n of tree.nodes) if (n.depth >= depth && n.children.length > 0) out.add(n.key);
  return out;
}

export function toggleCollapsed(collapsed: ReadonlySet<string>, key: string): Set<string> {
  const out = new Set(collapsed);
  if (!out.delete(key)) out.add(key);
  return out;
}

/** Expands the ancestors of `key` so its row is visible (selection, search hits, deep links). */
export function revealNode(tree: TraceTree, collapsed: ReadonlySet<string>, key: string): Set<string> {
  const out = new Set(collapsed);
  for (let n = tree.byKey.get(key)?.parent ?? null; n !== null; n = n.parent) out.delete(n.key);
  return out;
}

/** Span events as positions on the drawn time axis (µs from `tree.base`, shift included). */
export function eventTimesUs(tree: TraceTree, node: TraceNode): { name: string; timeUs: number }[] {
  return node.span.events.map((e) => ({
    name: e.name,
    timeUs: diffUs(parseNano(e.timeUnixNano), tree.base) + node.skewShiftUs,
  }));
}
