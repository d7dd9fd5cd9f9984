// What the trace page hands each of its secondary views (flame graph, statistics, OTLP/JSON).
import type { Span } from "../trace/model";
import type { TraceTree } from "../trace/tree";

export interface TraceViewProps {
  readonly spans: readonly Span[];
  readonly tree: TraceTree;
  readonly selectedSpanId: string | null;
  readonly onSelect: (spanId: string) => void;
  readonly traceId: string;
}
