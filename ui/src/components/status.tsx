// How a view says "loading", "this failed" and "nothing here yet" — in place, never a blank page.
import type { ComponentChildren } from "preact";
import { ApiError } from "../api";
import type { Session } from "../session";
import { otlpEndpoints } from "../session";

export function ErrorBox({ error, title }: { error: unknown; title?: string }) {
  const api = error instanceof ApiError ? error : null;
  const message = api ? api.message : error instanceof Error ? error.message : String(error);
  return (
    <div class="error-box" role="alert">
      <strong>{title ?? "The request failed"}</strong>
      {api && api.status > 0 && (
        <span class="muted">
          {" "}
          HTTP {api.status} · {api.code}
        </span>
      )}
      <div>{message}</div>
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <div class="loading" role="status" aria-live="polite">
      Loading {what}…
    </div>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="empty">{children}</div>;
}

/** The empty state of a signal view: how to point an SDK or Collector at this server. */
export function SendDataHint({ session, signal }: { session: Session; signal: string }) {
  const ep = otlpEndpoints(session, location.origin, location.hostname);
  return (
    <div class="empty send-hint" data-testid="send-data-hint">
      <p>
        No {signal} here yet. Point an OpenTelemetry SDK or Collector at this server:
      </p>
      <ul>
        <li>
          OTLP/HTTP: <code>{ep.http}/v1/traces</code>, <code>/v1/metrics</code>, <code>/v1/logs</code>
        </li>
        <li>
          OTLP/gRPC: <code>{ep.grpc}</code>
        </li>
      </ul>
      <pre class="snippet">{ep.env}</pre>
    </div>
  );
}
