// Opening a trace from an OTLP/JSON file: dropped anywhere on the zone or chosen with the
// file picker (the keyboard way in). One trace opens directly; several are listed as links.
// Nothing is uploaded: the spans stay in this tab (trace/dropped.ts).
import { useState } from "preact/hooks";
import { formatDuration } from "../format";
import { href, navigate } from "../router";
import { keepDropped } from "../trace/dropped";
import type { FileTrace } from "../trace/otlp";
import { parseOtlpSpans, splitTraces } from "../trace/otlp";
import "./dropzone.css";

type State =
  | { readonly state: "idle" }
  | { readonly state: "reading"; readonly name: string }
  | { readonly state: "error"; readonly name: string; readonly message: string }
  | { readonly state: "several"; readonly name: string; readonly traces: readonly FileTrace[] };

const FILE_QUERY = new URLSearchParams({ source: "file" });

export function fileTraceHref(traceId: string): string {
  return href(`/traces/${traceId}`, FILE_QUERY);
}

export interface DropZoneProps {
  /** Where a trace of the file opens; the trace view by default. */
  readonly linkTo?: (traceId: string) => string;
  readonly label?: string;
}

export function DropZone({ linkTo = fileTraceHref, label = "Open a trace from an OTLP/JSON file" }: DropZoneProps) {
  const [state, setState] = useState<State>({ state: "idle" });
  const [over, setOver] = useState(false);

  async function open(file: File) {
    setState({ state: "reading", name: file.name });
    let traces: FileTrace[];
    try {
      traces = splitTraces(parseOtlpSpans(await file.text()));
    } catch (err) {
      setState({ state: "error", name: file.name, message: err instanceof Error ? err.message : String(err) });
      return;
    }
    for (const t of traces) keepDropped(t.traceId, t.spans);
    if (traces.length === 1) {
      setState({ state: "idle" });
      navigate(linkTo(traces[0]!.traceId));
    } else {
      setState({ state: "several", name: file.name, traces });
    }
  }

  function onDrop(event: DragEvent) {
    event.preventDefault();
    setOver(false);
    const file = event.dataTransfer?.files[0];
    if (file) void open(file);
  }

  function onChoose(event: Event) {
    const input = event.target as HTMLInputElement;
    const file = input.files?.[0];
    // Cleared so choosing the same file again (after fixing it) fires change again.
    input.value = "";
    if (file) void open(file);
  }

  return (
    <section
      class={over ? "dropzone over" : "dropzone"}
      data-testid="dropzone"
      aria-label={label}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={onDrop}
    >
      <label>
        {label} (drop it here or choose it):{" "}
        <input type="file" accept=".json,.jsonl,.ndjson,application/json" onChange={onChoose} data-testid="dropzone-input" />
      </label>
      {state.state === "reading" && (
        <div class="muted" role="status">
          Reading {state.name}…
        </div>
      )}
      {state.state === "error" && (
        <div class="error-box" role="alert" data-testid="dropzone-error">
          <strong>{state.name} could not be opened</strong>
          <div>{state.message}</div>
        </div>
      )}
      {state.state === "several" && (
        <div data-testid="dropzone-traces">
          <p>
            {state.name} holds {state.traces.length} traces:
          </p>
          <ul>
            {state.traces.map((t) => (
              <li key={t.traceId}>
                <a href={linkTo(t.traceId)}>
                  {t.rootService}: {t.rootName}
                </a>{" "}
                <span class="muted">
                  {t.spans.length} spans · {formatDuration(t.durationMs)}
                  {t.errorCount > 0 && ` · ${t.errorCount} errors`}
                  {t.rootSpanMissing && " · root span missing"} · <code>{t.traceId}</code>
                </span>
              </li>
            ))}
          </ul>
        </div>
      )}
    </section>
  );
}
