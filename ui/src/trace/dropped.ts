// Traces opened from a file dropped on the page: kept in this tab's memory (never sent to
// the server) so the trace view can draw `/ui/traces/{traceId}?source=file` like a stored one.
// A reload forgets them; the view then says so and offers the file drop again.
import type { Span } from "./model";

const kept = new Map<string, Span[]>();

export function keepDropped(traceId: string, spans: Span[]): void {
  kept.set(traceId.toLowerCase(), spans);
}

export function droppedTrace(traceId: string): Span[] | undefined {
  return kept.get(traceId.toLowerCase());
}
