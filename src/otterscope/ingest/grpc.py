"""The OTLP/gRPC receiver: the three Export services and ``grpc.health.v1``.

Requests arrive as raw bytes (the handlers do their own decoding) so the memory budget
counts them before they are parsed. Errors abort with the matching gRPC code; retryable
ones (RESOURCE_EXHAUSTED, UNAVAILABLE) carry a ``google.rpc.RetryInfo`` in
``grpc-status-details-bin`` as OTLP exporters expect.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.any_pb2 import Any as AnyProto
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from otterscope.api.auth import Authenticator
from otterscope.errors import OtterscopeError
from otterscope.ingest.grpc_codes import grpc_code
from otterscope.ingest.idempotency import HEADER, REPLAYED_HEADER, parse_key
from otterscope.ingest.service import IngestService

log = logging.getLogger("otterscope.ingest")

SERVICES = {
    "traces": "opentelemetry.proto.collector.trace.v1.TraceService",
    "metrics": "opentelemetry.proto.collector.metrics.v1.MetricsService",
    "logs": "opentelemetry.proto.collector.logs.v1.LogsService",
}


def _identity(data: bytes) -> bytes:
    return data


def _serialize(message: Any) -> bytes:
    return bytes(message.SerializeToString())


async def _abort(context: grpc.aio.ServicerContext, exc: OtterscopeError) -> None:
    code = grpc_code(exc)
    status = Status(code=code, message=exc.message)
    if exc.retry_after is not None:
        info = RetryInfo(retry_delay=Duration(seconds=max(1, math.ceil(exc.retry_after))))
        detail = AnyProto()
        detail.Pack(info)
        status.details.append(detail)
    context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
    await context.abort(_STATUS_CODES[code], exc.message)


_STATUS_CODES = {c.value[0]: c for c in grpc.StatusCode}


class OtlpGrpcReceiver:
    def __init__(self, service: IngestService, auth: Authenticator) -> None:
        self.service = service
        self.auth = auth
        self.health = health.aio.HealthServicer()

    def _handler(self, signal: str) -> Callable[[bytes, grpc.aio.ServicerContext], Awaitable[Any]]:
        async def export(body: bytes, context: grpc.aio.ServicerContext) -> Any:
            lease = self.service.lease()
            try:
                metadata = {
                    k.lower(): v
                    for k, v in context.invocation_metadata() or ()
                    if isinstance(v, str)
                }
                principal = self.auth.authenticate(metadata)
                principal.require("ingest")
                key = parse_key(metadata.get(HEADER))
                lease.take(len(body))
                response, replayed = await self.service.export(
                    signal, principal.tenant, body, "protobuf", lease, "grpc", key
                )
                if replayed:
                    context.set_trailing_metadata(((REPLAYED_HEADER.lower(), "true"),))
                return response
            except OtterscopeError as exc:
                if exc.status >= 500:
                    log.warning("OTLP/gRPC %s failed with %s: %s", signal, exc.status, exc.message)
                await _abort(context, exc)
                raise AssertionError("unreachable: abort raises") from None
            finally:
                lease.release()

        return export

    def build_server(self, max_message_bytes: int, handshake_timeout_s: float) -> grpc.aio.Server:
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                # A connection that has not finished its HTTP/2 preface and settings by then
                # is closed (grpc's default is 120 s), as slow HTTP headers are.
                ("grpc.server_handshake_timeout_ms", max(1, round(handshake_timeout_s * 1000))),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
                # grpc turns SO_REUSEPORT on by default: a second server could then bind the
                # same port and take half of the connections.
                ("grpc.so_reuseport", 0),
            ],
        )
        for signal, name in SERVICES.items():
            handler = grpc.unary_unary_rpc_method_handler(
                self._handler(signal),
                request_deserializer=_identity,
                response_serializer=_serialize,
            )
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(name, {"Export": handler}),)
            )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        return server

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        await self.health.set("", status)
        for name in SERVICES.values():
            await self.health.set(name, status)
