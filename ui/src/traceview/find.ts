// Find in trace: which spans a typed query names, by span name, service, id (full or
// prefix), or attribute (key, value, or `key=value`), in row order.
import { attrText } from "../trace/model";
import type { Attributes } from "../trace/model";
import type { TraceNode, TraceTree } from "../trace/tree";

function attrsMatch(attrs: Attributes, q: string, key: string | null, value: string): boolean {
  for (const k in attrs) {
    const text = attrText(attrs[k]!).toLowerCase();
    if (key !== null) {
      if (k.toLowerCase() === key && text.includes(value)) return true;
    } else if (k.toLowerCase().includes(q) || text.includes(q)) {
      return true;
    }
  }
  return false;
}

export function findMatches(tree: TraceTree, query: string): TraceNode[] {
  const q = query.trim().toLowerCase();
  if (q === "") return [];
  const eq = q.indexOf("=");
  const key = eq > 0 ? q.slice(0, eq).trim() : null;
  const value = eq > 0 ? q.slice(eq + 1).trim() : q;
  const out: TraceNode[] = [];
  for (const n of tree.nodes) {
    const s = n.span;
    const hit =
      key !== null
        ? attrsMatch(s.attributes, q, key, value) || attrsMatch(s.resource, q, key, value)
        : s.name.toLowerCase().includes(q) ||
          s.service.toLowerCase().includes(q) ||
          s.spanId.startsWith(q) ||
          attrsMatch(s.attributes, q, null, value) ||
          attrsMatch(s.resource, q, null, value);
    if (hit) out.push(n);
  }
  return out;
}
