"""Browser safety at the edge: Host checks (DNS rebinding), Origin checks and CORS.

Runs before any route. A request whose ``Host`` is not a loopback name, the bind address
or a configured name is refused; so is a request whose ``Origin`` is neither the server
itself nor in ``cors.origins``. Allowed cross-origin requests get CORS headers, and
preflights are answered here.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from otterscope.api.errors import error_response
from otterscope.errors import Forbidden
from otterscope.ingest.http import request_format, status_response

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
_WILDCARDS = {"0.0.0.0", "::", ""}
_ALLOW_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
_DEFAULT_ALLOW_HEADERS = "authorization, content-type, content-encoding"
# OTLP export paths: their error bodies are a google.rpc.Status (SPEC §2), except GET on
# /v1/traces, which is the otel-worker JSON API.
_OTLP_PATHS = {f"/v1/{s}{slash}" for s in ("traces", "metrics", "logs") for slash in ("", "/")}


def _hostname(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(name: str) -> bool:
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Guard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        bind_host: str,
        allowed_hosts: tuple[str, ...],
        cors_origins: tuple[str, ...],
        requires_token: bool,
    ) -> None:
        self.app = app
        self.bind_host = bind_host.lower()
        self.allowed_hosts = {h.lower() for h in allowed_hosts}
        self.cors_origins = {o.rstrip("/").lower() for o in cors_origins}
        # Bound to every interface with tokens required, a rebinding page cannot
        # authenticate anyway, so any Host name the machine is reached by is fine.
        self.any_host = "*" in self.allowed_hosts or (
            self.bind_host in _WILDCARDS and requires_token
        )

    def host_allowed(self, host_header: str | None) -> bool:
        if host_header is None:
            return True  # HTTP/1.0 without Host: no browser sends that
        name = _hostname(host_header)
        return (
            self.any_host
            or is_loopback(name)
            or name == self.bind_host
            or name in self.allowed_hosts
        )

    def origin_allowed(self, origin: str, host_header: str | None) -> bool:
        origin = origin.rstrip("/").lower()
        if "*" in self.cors_origins or origin in self.cors_origins:
            return True
        parts = urlsplit(origin)
        return bool(host_header) and parts.netloc == (host_header or "").lower()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host")
        if not self.host_allowed(host):
            await self._refuse(
                scope,
                receive,
                send,
                f"Host {host!r} is not allowed (configure server.allowed_hosts)",
            )
            return
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if not self.origin_allowed(origin, host):
            await self._refuse(
                scope, receive, send, f"Origin {origin!r} is not allowed (configure cors.origins)"
            )
            return
        if (
            scope["type"] == "http"
            and scope["method"] == "OPTIONS"
            and headers.get("access-control-request-method")
        ):
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [
                        (b"access-control-allow-origin", origin.encode()),
                        (b"access-control-allow-methods", _ALLOW_METHODS.encode()),
                        (
                            b"access-control-allow-headers",
                            (
                                headers.get("access-control-request-headers")
                                or _DEFAULT_ALLOW_HEADERS
                            ).encode(),
                        ),
                        (b"access-control-max-age", b"600"),
                        (b"vary", b"Origin"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [
                    (b"access-control-allow-origin", origin.encode()),
                    (b"vary", b"Origin"),
                ]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, message: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
            return
        if scope["path"] in _OTLP_PATHS and scope["method"] != "GET":
            request = Request(scope)
            response = status_response(Forbidden(message), request_format(request))
        else:
            response = error_response(Forbidden(message))
        await response(scope, receive, send)
