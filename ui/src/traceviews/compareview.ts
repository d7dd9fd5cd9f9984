// The rows of the trace diff tree as the compare page shows them: collapsed subtrees left
// out, optionally only the nodes that differ (and the path down to them), and the duration
// difference as text. Pure, over the preorder of trace/diff.ts.
import { formatDuration } from "../format";
import type { DiffNode, TraceDiff } from "../trace/diff";

/** Per node id: true when the node or anything below it is not "same". */
export function differsBelow(diff: TraceDiff): Uint8Array {
  const out = new Uint8Array(diff.nodes.length);
  // Reverse preorder visits children before parents.
  for (let i = diff.nodes.length - 1; i >= 0; i--) {
    const n = diff.nodes[i]!;
    if (n.state !== "same") out[n.id] = 1;
    if (out[n.id] && n.parent !== null) out[n.parent.id] = 1;
  }
  return out;
}

/** Nodes in preorder, skipping what lies below a collapsed node and, if asked, subtrees without a difference. */
export function diffRows(diff: TraceDiff, collapsed: ReadonlySet<number>, differing: Uint8Array | null): DiffNode[] {
  const rows: DiffNode[] = [];
  // In preorder a subtree is the run of nodes deeper than its top: skip while inside one.
  let hideBelow = Infinity;
  for (const n of diff.nodes) {
    if (n.depth > hideBelow) continue;
    hideBelow = Infinity;
    // A node without a difference has none below it either (differsBelow), so it is skipped alone.
    if (differing !== null && !differing[n.id]) continue;
    rows.push(n);
    if (collapsed.has(n.id)) hideBelow = n.depth;
  }
  return rows;
}

/** "+12.5ms (+25%)", "-3ms (-50%)", "±0"; "" when one side has no spans. */
export function deltaText(n: DiffNode): string {
  if (n.deltaUs === null || n.meanUsA === null) return "";
  if (n.deltaUs === 0) return "±0";
  const sign = n.deltaUs > 0 ? "+" : "";
  const pct = n.meanUsA > 0 ? ` (${sign}${Math.round((n.deltaUs / n.meanUsA) * 100)}%)` : "";
  return `${sign}${formatDuration(n.deltaUs / 1000)}${pct}`;
}
