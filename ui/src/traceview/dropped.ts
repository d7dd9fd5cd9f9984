// Spans of a trace opened from a dropped OTLP/JSON file (`?source=file`): they live only in
// this tab's memory (trace/dropped.ts); after a reload none is found and the page says to
// drop the file again.
import { droppedTrace } from "../trace/dropped";
import type { Span } from "../trace/model";

export function droppedSpans(traceId: string): Span[] | undefined {
  return droppedTrace(traceId);
}
