// The trace as OTLP/JSON TracesData (GET /api/traces/{id}?format=otlp): shown indented up to a
// cap (the rest would stall the tab on a 50,000-span trace), downloadable and copyable whole.
// A trace opened from a file is not on the server; its spans are shown in the API's shape.
import { useMemo, useState } from "preact/hooks";
import { apiGet } from "../api";
import { ErrorBox, Loading } from "../components/status";
import { useApi } from "../hooks";
import { droppedTrace } from "../trace/dropped";
import { prettyPrefix, sizeText } from "./jsonview";
import type { TraceViewProps } from "../traceview/views";
import "./json.css";

const SHOWN_CHARS = 200_000;

interface JsonDoc {
  readonly text: string;
  /** The trace was opened from a file in this tab: its spans, not the server's OTLP/JSON. */
  readonly fromFile: boolean;
}

export function TraceJson({ traceId, spans }: TraceViewProps) {
  // The page hands over the very array kept for a file it opened (source=file): then the
  // server is not asked, even if it stores a trace with the same id.
  const fromFile = droppedTrace(traceId) === spans;
  const loaded = useApi(async (signal): Promise<JsonDoc> => {
    if (fromFile) return { text: JSON.stringify({ traceId, spans }), fromFile: true };
    const data = await apiGet<unknown>(`/api/traces/${encodeURIComponent(traceId)}`, { format: "otlp" }, signal);
    return { text: JSON.stringify(data), fromFile: false };
  }, [traceId, fromFile]);

  if (loaded.state === "loading") return <Loading what="the trace's OTLP/JSON" />;
  if (loaded.state === "error") return <ErrorBox error={loaded.error} title="The trace's OTLP/JSON could not be loaded" />;
  return <JsonDocument traceId={traceId} doc={loaded.data} />;
}

function JsonDocument({ traceId, doc }: { traceId: string; doc: JsonDoc }) {
  const pretty = useMemo(() => prettyPrefix(doc.text, SHOWN_CHARS), [doc.text]);
  const [copied, setCopied] = useState<{ ok: boolean; message: string } | null>(null);

  function download() {
    const url = URL.createObjectURL(new Blob([doc.text], { type: "application/json" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = `trace-${traceId}.json`;
    document.body.appendChild(a);
    a.click();
    a.remove();
    // The click has handed the Blob to the download by the time this runs.
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  async function copy() {
    try {
      await navigator.clipboard.writeText(doc.text);
      setCopied({ ok: true, message: `Copied ${sizeText(doc.text.length)}.` });
    } catch (err) {
      setCopied({ ok: false, message: `Copying failed: ${err instanceof Error ? err.message : String(err)}` });
    }
  }

  return (
    <div class="trace-json" data-testid="trace-json">
      <div class="trace-json-bar">
        <button type="button" onClick={download} data-testid="json-download">
          Download trace-{traceId}.json
        </button>
        <button type="button" onClick={() => void copy()}>
          Copy
        </button>
        <span class="muted">
          {doc.fromFile ? "Spans opened from a file (not stored on this server), in the API's span shape" : "OTLP/JSON TracesData"} ·{" "}
          {sizeText(doc.text.length)}
        </span>
        {copied !== null && (
          <span role="status" class={copied.ok ? "muted" : "trace-json-error"}>
            {copied.message}
          </span>
        )}
      </div>
      {pretty.truncated && (
        <p class="trace-json-cut" data-testid="json-truncated">
          Showing the first {sizeText(pretty.text.length)} of the indented text; the download and Copy have all{" "}
          {sizeText(doc.text.length)}.
        </p>
      )}
      <pre class="trace-json-text" tabIndex={0} aria-label="Trace JSON">
        {pretty.text}
        {pretty.truncated && "\n…"}
      </pre>
    </div>
  );
}
