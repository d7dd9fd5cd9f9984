// Trace statistics per service and per (service, operation), as in Jaeger's trace statistics
// view, and the self time of each span that they and the flame graph share.

import type { TraceTree } from "./tree";

/**
 * Each span's time not covered by any child (by `node.index`): its duration minus the
 * union of its children's intervals clipped to it, so overlapping or overflowing children
 * never make it negative.
 */
export function selfTimesUs(tree: TraceTree): Float64Array {
  const out = new Float64Array(tree.nodes.length);
  for (const n of tree.nodes) {
    const s = n.startUs;
    const e = n.endUs;
    let covered = 0;
    let runStart = 0;
    let runEnd = -Infinity;
    // Children are ordered by drawn start, so one sweep merges their intervals.
    for (const c of n.children) {
      const cs = Math.max(c.startUs, s);
      const ce = Math.min(c.endUs, e);
      if (ce <= cs) continue;
      if (cs > runEnd) {
        if (runEnd > runStart) covered += runEnd - runStart;
        runStart = cs;
        runEnd = ce;
      } else if (ce > runEnd) {
        runEnd = ce;
      }
    }
    if (runEnd > runStart) covered += runEnd - runStart;
    out[n.index] = e - s - covered;
  }
  return out;
}

export interface DurationStats {
  count: number;
  errorCount: number;
  totalUs: number;
  avgUs: number;
  minUs: number;
  maxUs: number;
  selfUs: number;
  selfAvgUs: number;
  selfMinUs: number;
  selfMaxUs: number;
  /** Self time as a share of the trace's drawn duration, 0..100. */
  selfPercent: number;
}

export interface ServiceStats extends DurationStats {
  service: string;
}

export interface OperationStats extends DurationStats {
  service: string;
  operation: string;
}

export interface TraceStats {
  readonly durationUs: number;
  /** Largest total time first. */
  readonly services: readonly ServiceStats[];
  readonly operations: readonly OperationStats[];
}

function empty(): DurationStats {
  return {
    count: 0,
    errorCount: 0,
    totalUs: 0,
    avgUs: 0,
    minUs: Infinity,
    maxUs: -Infinity,
    selfUs: 0,
    selfAvgUs: 0,
    selfMinUs: Infinity,
    selfMaxUs: -Infinity,
    selfPercent: 0,
  };
}

function add(st: DurationStats, durationUs: number, selfUs: number, error: boolean): void {
  st.count++;
  if (error) st.errorCount++;
  st.totalUs += durationUs;
  st.minUs = Math.min(st.minUs, durationUs);
  st.maxUs = Math.max(st.maxUs, durationUs);
  st.selfUs += selfUs;
  st.selfMinUs = Math.min(st.selfMinUs, selfUs);
  st.selfMaxUs = Math.max(st.selfMaxUs, selfUs);
}

function finish(st: DurationStats, traceUs: number): void {
  st.avgUs = st.totalUs / st.count;
  st.selfAvgUs = st.selfUs / st.count;
  st.selfPercent = traceUs > 0 ? (st.selfUs / traceUs) * 100 : 0;
}

export function traceStats(tree: TraceTree): TraceStats {
  const self = selfTimesUs(tree);
  const services = new Map<string, ServiceStats>();
  // Nested by service, then operation: no joined key whose separator a name could contain.
  const operations = new Map<string, Map<string, OperationStats>>();
  for (const n of tree.nodes) {
    const service = n.span.service;
    const operation = n.span.name;
    let sv = services.get(service);
    if (sv === undefined) {
      sv = { service, ...empty() };
      services.set(service, sv);
    }
    let ops = operations.get(service);
    if (ops === undefined) {
      ops = new Map();
      operations.set(service, ops);
    }
    let op = ops.get(operation);
    if (op === undefined) {
      op = { service, operation, ...empty() };
      ops.set(operation, op);
    }
    const duration = n.endUs - n.startUs;
    const s = self[n.index]!;
    add(sv, duration, s, n.error);
    add(op, duration, s, n.error);
  }
  const durationUs = tree.endUs - tree.startUs;
  const svList = [...services.values()];
  const opList = [...operations.values()].flatMap((m) => [...m.values()]);
  for (const st of svList) finish(st, durationUs);
  for (const st of opList) finish(st, durationUs);
  const byTotal = (a: DurationStats, b: DurationStats): number => b.totalUs - a.totalUs;
  return { durationUs, services: svList.sort(byTotal), operations: opList.sort(byTotal) };
}
