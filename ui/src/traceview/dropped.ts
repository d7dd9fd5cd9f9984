// Spans of a trace opened from a dropped OTLP/JSON file (`?source=file`): they live only in
// this tab's memory. The file drop and its parser are not part of this build yet, so no
// dropped trace is ever found and the page says to drop the file again.
import type { Span } from "../trace/model";

export function droppedSpans(_traceId: string): Span[] | undefined {
  return undefined;
}
