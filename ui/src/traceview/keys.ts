// What a key press does in the timeline's tree (WAI-ARIA tree pattern, Jaeger's and
// otel-desktop-viewer's keys): pure, so it is tested without a browser.

/** The part of a tree node the keys look at (TraceNode has it). */
export interface NavNode {
  readonly key: string;
  readonly parent: { readonly key: string } | null;
  readonly children: readonly unknown[];
}

export interface NavAction {
  /** Select this row (and keep it in view). */
  readonly select?: string;
  readonly collapse?: string;
  readonly expand?: string;
  /** Show the details of the selected span. */
  readonly open?: true;
  readonly close?: true;
}

/**
 * The action for `key` with `rows` shown, the row at `index` selected (-1 for none) and
 * `collapsed` the collapsed nodes; null when the key is not the tree's.
 */
export function navKey(
  key: string,
  rows: readonly NavNode[],
  index: number,
  collapsed: ReadonlySet<string>,
  pageSize = 20,
): NavAction | null {
  const count = rows.length;
  const at = (i: number): NavAction | null => {
    const row = rows[Math.max(0, Math.min(count - 1, i))];
    return row ? { select: row.key } : null;
  };
  const current = index >= 0 ? rows[index] : undefined;
  switch (key) {
    case "ArrowDown":
      return at(current ? index + 1 : 0);
    case "ArrowUp":
      return at(current ? index - 1 : 0);
    case "PageDown":
      return at(current ? index + pageSize : 0);
    case "PageUp":
      return at(current ? index - pageSize : 0);
    case "Home":
      return at(0);
    case "End":
      return at(count - 1);
    case "ArrowRight": {
      if (!current) return at(0);
      if (current.children.length === 0) return {};
      if (collapsed.has(current.key)) return { expand: current.key };
      const next = rows[index + 1];
      return next && next.parent?.key === current.key ? { select: next.key } : {};
    }
    case "ArrowLeft": {
      if (!current) return at(0);
      if (current.children.length > 0 && !collapsed.has(current.key)) return { collapse: current.key };
      const parent = current.parent;
      if (parent === null) return {};
      // With a service filter the parent may not be shown; then there is nowhere to go.
      for (let i = index - 1; i >= 0; i--) if (rows[i]!.key === parent.key) return { select: parent.key };
      return {};
    }
    case "Enter":
      return current ? { open: true } : at(0);
    case "Escape":
      return { close: true };
    default:
      return null;
  }
}

/** The next (dir 1) or previous (dir -1) match after position `current`, wrapping around. */
export function stepMatch(count: number, current: number, dir: 1 | -1): number {
  if (count <= 0) return -1;
  if (current < 0) return dir === 1 ? 0 : count - 1;
  return (current + dir + count) % count;
}
