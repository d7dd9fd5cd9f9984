// Find in trace: which spans a typed query matches, in row order, and stepping through them.
// The text of each span is lowered once per trace (an index), so typing in a 50,000-span
// trace only scans strings.

import { type Attributes, attrText } from "./model";
import type { TraceTree } from "./tree";

export interface SearchIndex {
  readonly tree: TraceTree;
  /** Per node (by index): lowered name, service, status message, events and `key=value` attributes. */
  readonly texts: readonly string[];
}

// A separator no one types, so a term never matches across two fields.
const SEP = "\u0000";

function addAttrs(parts: string[], attrs: Attributes): void {
  for (const key in attrs) parts.push(`${key}=${attrText(attrs[key]!)}`);
}

export function buildSearchIndex(tree: TraceTree): SearchIndex {
  const texts = tree.nodes.map((n) => {
    const s = n.span;
    const parts = [s.name, s.service, s.status.message, s.scope.name];
    addAttrs(parts, s.attributes);
    addAttrs(parts, s.resource);
    for (const e of s.events) {
      parts.push(e.name);
      addAttrs(parts, e.attributes);
    }
    return parts.join(SEP).toLowerCase();
  });
  return { tree, texts };
}

/** Whitespace-separated terms, lowered; empty for a blank query. */
export function parseQuery(query: string): string[] {
  return query
    .toLowerCase()
    .split(/\s+/)
    .filter((t) => t.length > 0);
}

// Ids are hex and short terms would match half the trace, so an id matches whole or by a
// prefix of at least this many characters.
const MIN_ID_PREFIX = 6;

/**
 * Keys of the spans matching every term, in row order. A term matches a span id (whole, or
 * a prefix of 6+ characters), or occurs (case-insensitively) in the span's name, service,
 * status message, scope name, event names, or the `key=value` text of its span, resource
 * or event attributes, so `http.method`, `GET` and `http.method=get` all find a GET span.
 */
export function searchTrace(index: SearchIndex, query: string): string[] {
  const terms = parseQuery(query);
  if (terms.length === 0) return [];
  const out: string[] = [];
  const nodes = index.tree.nodes;
  for (let i = 0; i < nodes.length; i++) {
    const text = index.texts[i]!;
    const id = nodes[i]!.spanId;
    let all = true;
    for (const t of terms) {
      const idHit = t === id || (t.length >= MIN_ID_PREFIX && id.startsWith(t));
      if (!idHit && !text.includes(t)) {
        all = false;
        break;
      }
    }
    if (all) out.push(nodes[i]!.key);
  }
  return out;
}

// Index in `matches` of the first match at or after row `index` (matches are in row order).
function lowerBound(tree: TraceTree, matches: readonly string[], index: number): number {
  let lo = 0;
  let hi = matches.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (tree.byKey.get(matches[mid]!)!.index < index) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The match after `current` (a key, or null before the first), wrapping; null when none. */
export function nextMatch(
  tree: TraceTree,
  matches: readonly string[],
  current: string | null,
): string | null {
  if (matches.length === 0) return null;
  const at = current === null ? undefined : tree.byKey.get(current);
  if (at === undefined) return matches[0]!;
  const i = lowerBound(tree, matches, at.index + 1);
  return matches[i % matches.length]!;
}

/** The match before `current`, wrapping; null when none. */
export function prevMatch(
  tree: TraceTree,
  matches: readonly string[],
  current: string | null,
): string | null {
  if (matches.length === 0) return null;
  const at = current === null ? undefined : tree.byKey.get(current);
  if (at === undefined) return matches[matches.length - 1]!;
  const i = lowerBound(tree, matches, at.index);
  return matches[(i - 1 + matches.length) % matches.length]!;
}
