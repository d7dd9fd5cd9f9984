// The views of one trace, as the `view=` URL parameter names them. Only views whose
// component is here get a tab; an unknown `view=` falls back to the timeline.
import type { ComponentType } from "preact";
import type { Span } from "../trace/model";
import type { TraceTree } from "../trace/tree";
import { FlameGraph } from "../traceviews/flame";
import { TraceJson } from "../traceviews/json";
import { TraceStatsView } from "../traceviews/stats";

export interface TraceViewProps {
  readonly spans: readonly Span[];
  readonly tree: TraceTree;
  readonly selectedSpanId: string | null;
  readonly onSelect: (spanId: string) => void;
  readonly traceId: string;
}

export type ViewId = "timeline" | "flamegraph" | "stats" | "json";

export interface ViewTab {
  readonly id: ViewId;
  readonly label: string;
  /** Absent for the timeline, which the page lays out itself (with the details beside it). */
  readonly component?: ComponentType<TraceViewProps>;
}

export const VIEWS: readonly ViewTab[] = [
  { id: "timeline", label: "Timeline" },
  { id: "flamegraph", label: "Flame graph", component: FlameGraph },
  { id: "stats", label: "Statistics", component: TraceStatsView },
  { id: "json", label: "OTLP/JSON", component: TraceJson },
];

export function viewOf(value: string | null): ViewId {
  return VIEWS.find((v) => v.id === value)?.id ?? "timeline";
}
