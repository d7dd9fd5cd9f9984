"""HTTP/1.1 connections: deadlines for slow clients and a cap on open connections.

uvicorn only times out a keep-alive connection that sits idle between requests. A client
that connects and sends nothing, or sends its headers or its body a byte at a time, would
hold its connection (and a slot, and memory) for as long as it likes. This is uvicorn's
httptools protocol with two deadlines, both armed and cancelled by the parser's own events,
so they follow HTTP framing exactly (keep-alive, pipelining, chunked bodies, upgrades):

- headers: from the moment the connection is made, or the first byte of a later request,
  until the end of that request's headers (``server.header_timeout``);
- body: from the end of the headers until the end of the body (``server.body_timeout``),
  a total, so a body that trickles in cannot keep resetting it. While reading is paused
  because the application has not taken what arrived, the client is not the slow one and
  the deadline is pushed back.

A late client gets a 408 when no response is under way, and the connection is closed.
Past ``server.max_connections`` open connections (WebSockets included) a new one is
answered 503 with ``Retry-After`` and closed before anything is read from it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("otterscope.http")

_REFUSAL_LOG_PERIOD_S = 60.0


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    header_timeout_s: float
    body_timeout_s: float
    max_connections: int
    retry_after_s: float


def _response(status: str, message: str, extra: str = "") -> bytes:
    body = message.encode()
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\n{extra}"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class _Refusals:
    """Connections refused at the cap, logged at most once a period (not once each)."""

    def __init__(self) -> None:
        self.count = 0
        self.logged_at = -math.inf

    def add(self, cap: int) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.logged_at >= _REFUSAL_LOG_PERIOD_S:
            log.warning(
                "%d connection(s) refused: %d are open (server.max_connections)",
                self.count,
                cap,
            )
            self.count = 0
            self.logged_at = now


class GuardedHttpProtocol(HttpToolsProtocol):
    limits: ConnectionLimits
    refusals: _Refusals

    _header_timer: asyncio.TimerHandle | None = None
    _body_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self.refusals.add(self.limits.max_connections)
            retry = max(1, math.ceil(self.limits.retry_after_s))
            transport.write(
                _response(
                    "503 Service Unavailable",
                    "too many open connections; retry later",
                    f"retry-after: {retry}\r\n",
                )
            )
            transport.close()
            return
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadlines()
        if self.transport is None:
            return  # refused at the cap: uvicorn never saw this connection
        super().connection_lost(exc)

    # -- parser events (httptools calls them from feed_data) ----------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._cancel_deadlines()
        super().on_headers_complete()
        if not (self.parser.should_upgrade() and self._should_upgrade()):
            self._body_timer = self.loop.call_later(self.limits.body_timeout_s, self._body_deadline)

    def on_message_complete(self) -> None:
        self._cancel_deadlines()
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        # The WebSocket protocol takes the transport over; nothing here may close it later.
        self._cancel_deadlines()
        super().handle_websocket_upgrade()

    # -- deadlines ------------------------------------------------------------------------------

    def _arm_header_deadline(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(
                self.limits.header_timeout_s, self._header_deadline
            )

    def _cancel_deadlines(self) -> None:
        for timer in (self._header_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._body_timer = None

    def _header_deadline(self) -> None:
        self._header_timer = None
        # The cycle, if any, is the previous request's: answer only once it is answered.
        idle = self.cycle is None or self.cycle.response_complete
        self._cut_off("the request's headers", self.limits.header_timeout_s, answer=idle)

    def _body_deadline(self) -> None:
        self._body_timer = None
        if self.flow.read_paused:
            # The application has not taken what already arrived: wait for it, not the client.
            self._body_timer = self.loop.call_later(self.limits.body_timeout_s, self._body_deadline)
            return
        answer = not self.cycle.response_started
        self._cut_off("the request body", self.limits.body_timeout_s, answer=answer)

    def _cut_off(self, what: str, seconds: float, *, answer: bool) -> None:
        if self.transport.is_closing():
            return
        if answer:
            message = f"{what} did not arrive within {seconds:g} s"
            self.transport.write(_response("408 Request Timeout", message))
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # The application sees a disconnect; nothing it sends now reaches the socket.
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()


def protocol_class(limits: ConnectionLimits) -> type[GuardedHttpProtocol]:
    """The protocol uvicorn builds one of per connection, bound to these limits."""

    class Protocol(GuardedHttpProtocol):
        pass

    Protocol.limits = limits
    Protocol.refusals = _Refusals()
    return Protocol
