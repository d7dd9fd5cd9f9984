// The trace's headline: what it is (root service and operation), when, how long, which
// services took part (in their colours), how many spans and errors; and where to compare it.
import { useState } from "preact/hooks";
import { serviceColor } from "../colors";
import { formatDuration, formatTime } from "../format";
import { usePrefs } from "../prefs";
import { navigate } from "../router";
import { nanoToEpochMs } from "../trace/model";
import type { TraceTree } from "../trace/tree";
import "./header.css";

export function TraceHeader({ tree, traceId }: { tree: TraceTree; traceId: string }) {
  const { timeZone } = usePrefs();
  const [other, setOther] = useState("");
  // Without a root, the earliest span stands in, as in the search results.
  const head = tree.root ?? tree.roots[0] ?? null;
  return (
    <header class="tv-header" data-testid="trace-header">
      <div class="tv-title">
        <h2>
          {head ? (
            <>
              <span class="tv-dot" style={{ background: serviceColor(head.span.service) }} />
              <span class="tv-root-svc">{head.span.service}</span> <span class="tv-root-name">{head.span.name}</span>
            </>
          ) : (
            <span class="muted">empty trace</span>
          )}
          {tree.rootMissing && (
            <span class="badge error" title="The span without a parent has not arrived (yet)">
              root span missing
            </span>
          )}
        </h2>
        <div class="mono muted tv-trace-id">{traceId}</div>
      </div>
      <dl class="tv-facts">
        <div>
          <dt>Start</dt>
          <dd>{formatTime(nanoToEpochMs(tree.base), timeZone)}</dd>
        </div>
        <div>
          <dt>Duration</dt>
          <dd data-testid="trace-duration">{formatDuration((tree.endUs - tree.startUs) / 1000)}</dd>
        </div>
        <div>
          <dt>Spans</dt>
          <dd data-testid="trace-span-count">{tree.nodes.length}</dd>
        </div>
        <div>
          <dt>Errors</dt>
          <dd data-testid="trace-error-count" class={tree.errorCount > 0 ? "tv-status-error" : undefined}>
            {tree.errorCount}
          </dd>
        </div>
        <div>
          <dt>Depth</dt>
          <dd>{tree.maxDepth + 1}</dd>
        </div>
      </dl>
      <ul class="tv-services" aria-label="Services">
        {tree.services.map((s) => (
          <li key={s}>
            <span class="tv-dot" style={{ background: serviceColor(s) }} />
            {s}
          </li>
        ))}
      </ul>
      <form
        class="tv-compare"
        onSubmit={(e) => {
          e.preventDefault();
          const id = other.trim().toLowerCase();
          if (id) navigate(`/compare/${encodeURIComponent(traceId)}/${encodeURIComponent(id)}`);
        }}
      >
        <input
          aria-label="Compare with trace id"
          placeholder="Compare with… (trace id)"
          value={other}
          onInput={(e) => setOther((e.target as HTMLInputElement).value)}
        />
        <button type="submit" disabled={other.trim() === ""}>
          Compare
        </button>
      </form>
    </header>
  );
}
