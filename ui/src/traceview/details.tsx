// Everything about one span: timing, kind, status, ids, attributes with their types,
// resource, scope, events, links to other traces, dropped counts, and the span's logs.
import { formatDuration, formatTime } from "../format";
import { usePrefs } from "../prefs";
import { href } from "../router";
import { addUs, diffUs, nanoToEpochMs, parseNano } from "../trace/model";
import type { TraceNode, TraceTree } from "../trace/tree";
import { AttrTable, CopyButton } from "./attrs";
import { LogList } from "./logs";
import "./details.css";

function kindName(kind: string | number): string {
  return typeof kind === "string" ? kind.replace(/^SPAN_KIND_/, "").toLowerCase() : `kind ${kind}`;
}

function statusName(code: string | number): string {
  return typeof code === "string" ? code.replace(/^STATUS_CODE_/, "").toLowerCase() : `code ${code}`;
}

export function SpanDetails({
  tree,
  node,
  traceId,
  windowMs,
  onClose,
}: {
  tree: TraceTree;
  node: TraceNode;
  traceId: string;
  windowMs: { startMs: number; endMs: number };
  onClose: () => void;
}) {
  const { timeZone } = usePrefs();
  const span = node.span;
  const start = parseNano(span.startTimeUnixNano);
  const parent = span.parentSpanId;
  return (
    <aside class="tv-details" aria-label="Span details" data-testid="span-details" data-span-id={span.spanId}>
      <header class="tv-details-head">
        <h3>
          <span class="muted">{span.service}</span> {span.name}
        </h3>
        <button type="button" class="tv-close" aria-label="Close details" title="Close (Esc)" onClick={onClose}>
          ×
        </button>
      </header>
      <table class="grid tv-summary">
        <tbody>
          <tr>
            <th scope="row">Duration</th>
            <td>{formatDuration(span.durationMs)}</td>
          </tr>
          <tr>
            <th scope="row">Start</th>
            <td>
              {formatTime(nanoToEpochMs(start), timeZone)}{" "}
              <span class="muted">(+{formatDuration(diffUs(start, tree.base) / 1000)})</span>
              {node.skewed && (
                <div class="muted">
                  drawn {formatDuration(node.skewShiftUs / 1000)} off to correct clock skew (at{" "}
                  {formatTime(nanoToEpochMs(addUs(start, node.skewShiftUs)), timeZone, false)})
                </div>
              )}
            </td>
          </tr>
          <tr>
            <th scope="row">Kind</th>
            <td data-testid="span-kind">{kindName(span.kind)}</td>
          </tr>
          <tr>
            <th scope="row">Status</th>
            <td data-testid="span-status" class={node.error ? "tv-status-error" : undefined}>
              {statusName(span.status.code)}
              {span.status.message && <span> · {span.status.message}</span>}
            </td>
          </tr>
          <IdRow label="Trace ID" id={span.traceId} />
          <IdRow label="Span ID" id={span.spanId} />
          {parent ? (
            <IdRow label="Parent ID" id={parent} note={node.orphan ? "not in this trace" : undefined} />
          ) : (
            <tr>
              <th scope="row">Parent ID</th>
              <td class="muted">none (root)</td>
            </tr>
          )}
          {span.traceState && (
            <tr>
              <th scope="row">Trace state</th>
              <td class="mono">{span.traceState}</td>
            </tr>
          )}
          <tr>
            <th scope="row">Dropped</th>
            <td class="muted">
              attributes {span.droppedAttributesCount ?? 0} · events {span.droppedEventsCount ?? 0} · links{" "}
              {span.droppedLinksCount ?? 0}
            </td>
          </tr>
        </tbody>
      </table>

      <section>
        <h4>Attributes</h4>
        <AttrTable attrs={span.attributes} label="Span attributes" />
      </section>
      <section>
        <h4>Resource</h4>
        <AttrTable attrs={span.resource} label="Resource attributes" />
      </section>
      <section>
        <h4>Scope</h4>
        <div class="mono">
          {span.scope.name || <span class="muted">unnamed</span>} {span.scope.version}
        </div>
        {Object.keys(span.scope.attributes ?? {}).length > 0 && (
          <AttrTable attrs={span.scope.attributes} label="Scope attributes" />
        )}
      </section>
      <section data-testid="span-events">
        <h4>Events ({span.events.length})</h4>
        {span.events.length === 0 && <p class="muted tv-none">none</p>}
        {span.events.map((e, i) => (
          <div key={i} class="tv-event-item">
            <div>
              <span class="mono muted">+{formatDuration(diffUs(parseNano(e.timeUnixNano), start) / 1000)}</span>{" "}
              <strong>{e.name}</strong>
            </div>
            {Object.keys(e.attributes).length > 0 && <AttrTable attrs={e.attributes} label={`Event ${e.name}`} />}
          </div>
        ))}
      </section>
      <section data-testid="span-links">
        <h4>Links ({span.links.length})</h4>
        {span.links.length === 0 && <p class="muted tv-none">none</p>}
        {span.links.map((l, i) => (
          <div key={i} class="tv-link-item">
            <a href={href(`/traces/${l.traceId}`, new URLSearchParams({ span: l.spanId }))} class="mono">
              {l.traceId === traceId ? "this trace" : `trace ${l.traceId}`} · span {l.spanId}
            </a>
            {l.traceState && <div class="muted mono">{l.traceState}</div>}
            {Object.keys(l.attributes).length > 0 && <AttrTable attrs={l.attributes} label="Link attributes" />}
          </div>
        ))}
      </section>
      <section>
        <h4>Logs of this span</h4>
        <LogList
          scope={{ traceId, spanId: span.spanId, startMs: windowMs.startMs, endMs: windowMs.endMs }}
          empty="No logs carry this span's id."
          settleMs={250}
        />
      </section>
    </aside>
  );
}

function IdRow({ label, id, note }: { label: string; id: string; note?: string | undefined }) {
  return (
    <tr>
      <th scope="row">{label}</th>
      <td>
        <span class="mono">{id}</span> <CopyButton text={id} label={label} />
        {note && <span class="muted"> {note}</span>}
      </td>
    </tr>
  );
}
