// Response shapes of the native API (SPEC §5) that more than one view reads.
export type AttributeValue =
  | string
  | number
  | boolean
  | null
  | AttributeValue[]
  | { [key: string]: AttributeValue };

export type Attributes = Record<string, AttributeValue>;

export interface TraceSummary {
  readonly traceId: string;
  readonly rootService: string;
  readonly rootName: string;
  readonly rootSpanMissing: boolean;
  readonly startTimeUnixNano: string;
  readonly durationMs: number;
  readonly spanCount: number;
  readonly errorCount: number;
  readonly services: readonly string[];
}

export interface TraceSearchPage {
  readonly traces: readonly TraceSummary[];
  readonly nextCursor: string | null;
}

export interface LogRecord {
  readonly timeUnixNano: string;
  readonly observedTimeUnixNano: string;
  readonly service: string;
  readonly severityNumber: number;
  readonly severityText: string;
  readonly body: AttributeValue;
  readonly eventName: string;
  readonly attributes: Attributes;
  readonly resource: Attributes;
  readonly scope: { readonly name: string; readonly version: string };
  readonly traceId: string;
  readonly spanId: string;
  readonly flags: number;
}

export interface LogPage {
  readonly logs: readonly LogRecord[];
  readonly nextCursor: string | null;
}
