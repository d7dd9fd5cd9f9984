"""The OTLP/HTTP receiver: ``POST /v1/traces``, ``/v1/metrics``, ``/v1/logs``.

It negotiates the format, reads the body against the memory budget and the size limit,
hands the bytes to the ingest service and answers in the request's encoding; errors are a
``google.rpc.Status`` with the matching HTTP status.
"""

from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from otterscope.api.auth import Authenticator
from otterscope.api.errors import error_headers
from otterscope.errors import MethodNotAllowed, OtterscopeError
from otterscope.ingest.body import CONTENT_TYPES, negotiate, read_body
from otterscope.ingest.grpc_codes import grpc_code
from otterscope.ingest.idempotency import HEADER, REPLAYED_HEADER, parse_key
from otterscope.ingest.service import IngestService
from otterscope.otlp import wire
from otterscope.otlp.wire import Format

log = logging.getLogger("otterscope.ingest")

MEDIA = {"protobuf": "application/x-protobuf", "json": "application/json"}


def request_format(request: Request) -> Format:
    """The encoding an OTLP answer (or error) goes back in: protobuf for protobuf senders,
    JSON for everyone else (a request without a usable Content-Type most likely comes from
    curl or a script, whose user should read the error, not get protobuf bytes)."""
    media = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    return "protobuf" if CONTENT_TYPES.get(media) == "protobuf" else "json"


def status_response(exc: OtterscopeError, fmt: Format) -> Response:
    body = wire.status_body(grpc_code(exc), exc.message, fmt)
    return Response(body, status_code=exc.status, media_type=MEDIA[fmt], headers=error_headers(exc))


class OtlpHttpReceiver:
    def __init__(self, service: IngestService, auth: Authenticator) -> None:
        self.service = service
        self.auth = auth

    def endpoint(self, signal: str, other_methods: tuple[str, ...] = ()) -> object:
        allow = ("POST", "OPTIONS", *other_methods)

        async def receive(request: Request) -> Response:
            fmt = request_format(request)
            if request.method != "POST":
                return status_response(
                    MethodNotAllowed(
                        f"{request.method} is not allowed on {request.url.path}", allow=allow
                    ),
                    fmt,
                )
            lease = self.service.lease()
            try:
                principal = self.auth.authenticate(request.headers, request.query_params)
                principal.require("ingest")
                key = parse_key(request.headers.get(HEADER))
                fmt, encoding = negotiate(
                    request.headers.get("content-type"), request.headers.get("content-encoding")
                )
                body = await read_body(
                    request.stream(), encoding, self.service.max_body_bytes, lease
                )
                if fmt == "protobuf":
                    # OTLP/JSON is checked when parsed; gRPC methods are typed by signal.
                    wire.check_protobuf_signal(signal, body)
                response, replayed = await self.service.export(
                    signal, principal.tenant, body, fmt, lease, "http", key
                )
            except OtterscopeError as exc:
                if exc.status >= 500:
                    log.warning("OTLP/HTTP %s answered %s: %s", signal, exc.status, exc.message)
                return status_response(exc, fmt)
            except ClientDisconnect:
                raise  # nobody is left to answer: the app's handler notes it quietly
            except Exception:
                # Answered here rather than by the app's last-resort handler, which re-raises
                # to the server and so closes the sender's keep-alive connection.
                log.exception("OTLP/HTTP %s: unexpected error", signal)
                return status_response(
                    OtterscopeError("internal error; the server log has the details"), fmt
                )
            finally:
                lease.release()
            headers = {REPLAYED_HEADER: "true"} if replayed else None
            return Response(
                wire.encode_message(response, fmt), media_type=MEDIA[fmt], headers=headers
            )

        return receive
