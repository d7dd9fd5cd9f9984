// Who is signed in, as GET /api/session reports it. The shell loads it once and again after
// a sign-in; views read it to offer admin-only actions and to tell how to send data here.
import { apiGet } from "./api";

export interface Session {
  readonly tenant: string;
  readonly scopes: readonly string[];
  readonly anonymous: boolean;
  readonly otlp: { readonly grpcPort: number; readonly httpPort: number; readonly tls: boolean };
}

export function loadSession(signal?: AbortSignal): Promise<Session> {
  return apiGet<Session>("/api/session", undefined, signal);
}

export function canRead(session: Session): boolean {
  return session.scopes.includes("read");
}

export function isAdmin(session: Session): boolean {
  return session.scopes.includes("admin");
}

/** The OTLP endpoints of this server as an SDK would be configured for them. */
export function otlpEndpoints(session: Session, origin: string, hostname: string) {
  const scheme = session.otlp.tls ? "https" : "http";
  return {
    http: origin,
    grpc: `${scheme}://${hostname}:${session.otlp.grpcPort}`,
    env: [
      `export OTEL_EXPORTER_OTLP_ENDPOINT=${origin}`,
      "export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
      ...(session.anonymous ? [] : ['export OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer <your ingest token>"']),
      "export OTEL_SERVICE_NAME=my-service",
    ].join("\n"),
  };
}
