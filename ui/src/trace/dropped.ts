// Traces opened from a file dropped on the page: kept in this tab's memory (never sent to
// the server) so the trace view can draw `/ui/traces/{traceId}?source=file` like a stored one.
// A reload forgets them; the view then says so and offers the file drop again.
import type { Span } from "./model";

const kept = new Map<string, Span[]>();
// A few files' traces, not every file dropped in the tab's life: each can be 50,000 spans.
export const MAX_DROPPED = 8;

const listeners = new Set<() => void>();

export function keepDropped(traceId: string, spans: Span[]): void {
  const key = traceId.toLowerCase();
  kept.delete(key); // re-inserted as the newest
  kept.set(key, spans);
  for (const oldest of kept.keys()) {
    if (kept.size <= MAX_DROPPED) break;
    kept.delete(oldest);
  }
  for (const listener of listeners) listener();
}

/**
 * Called after every keepDropped: a view showing `?source=file` reloads, since dropping the
 * file again leads to the URL it is already at. Returns the unsubscribe function.
 */
export function onDropped(listener: () => void): () => void {
  listeners.add(listener);
  return () => {
    listeners.delete(listener);
  };
}

export function droppedTrace(traceId: string): Span[] | undefined {
  return kept.get(traceId.toLowerCase());
}
