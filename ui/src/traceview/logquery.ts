// The /api/logs query for the logs of a trace or of one of its spans.

/** How far around the trace to look: a log's clock may disagree with its span's a little. */
const MARGIN_MS = 60_000;
const PAGE = 100;

export interface LogScope {
  readonly traceId: string;
  readonly spanId?: string;
  /** The trace's window, unix ms. */
  readonly startMs: number;
  readonly endMs: number;
}

export function logQuery(scope: LogScope, cursor?: string): Record<string, string | number> {
  const q: Record<string, string | number> = {
    traceId: scope.traceId,
    start: Math.floor(scope.startMs - MARGIN_MS),
    end: Math.ceil(scope.endMs + MARGIN_MS),
    limit: PAGE,
  };
  if (scope.spanId) q.spanId = scope.spanId;
  if (cursor) q.cursor = cursor;
  return q;
}

/** The Logs page's URL query showing the same records (its own page size and paging). */
export function logsPageQuery(scope: LogScope): URLSearchParams {
  const q = logQuery(scope);
  const out = new URLSearchParams({ traceId: scope.traceId, start: String(q.start), end: String(q.end) });
  if (scope.spanId) out.set("spanId", scope.spanId);
  return out;
}
