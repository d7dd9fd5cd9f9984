"""``GET /api/ws``: the live feed's WebSocket route (SPEC §3, §5 "Live").

This module owns the WebSocket side of the feed: authentication (the ``Authorization``
header, or the browser's ``otterscope.bearer.<base64url token>`` subprotocol, echoed back),
the client's ``subscribe`` messages, and the one task that writes to the socket. What is
sent, and when a client is too slow, is decided by ``otterscope.live.hub``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from otterscope.api.auth import Authenticator, Principal
from otterscope.api.errors import error_response
from otterscope.api.state import AppState, api_endpoint
from otterscope.errors import BadRequest, OtterscopeError, Unauthorized, Unavailable
from otterscope.live.hub import Filter, Subscriber
from otterscope.live.messages import SIGNALS

BEARER_PROTOCOL = "otterscope.bearer."
_SUBSCRIBE_KEYS = {"type", "signals", "service"}


def _token_from_protocol(protocol: str) -> str:
    encoded = protocol[len(BEARER_PROTOCOL) :]
    try:
        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), altchars=b"-_", validate=True)
        token = raw.decode()
    except (binascii.Error, ValueError):
        raise Unauthorized(
            "malformed token subprotocol: expected otterscope.bearer.<base64url token>"
        ) from None
    if not token:
        raise Unauthorized("empty token in the subprotocol")
    return token


def authenticate(auth: Authenticator, websocket: WebSocket) -> tuple[Principal, str | None]:
    """Who is connecting, and the subprotocol to accept (the bearer one, echoed)."""
    offered = websocket.scope.get("subprotocols") or []
    bearer = next((p for p in offered if p.startswith(BEARER_PROTOCOL)), None)
    if bearer is None:
        return auth.authenticate(websocket.headers, websocket.query_params), None
    try:
        # Headers first (this also refuses tokens in the URL); anonymous mode answers here
        # too, and still echoes the subprotocol: a browser that offered it would fail the
        # connection otherwise.
        who = auth.authenticate(websocket.headers, websocket.query_params)
    except Unauthorized:
        # No usable header: browsers cannot set one, the subprotocol carries the token.
        who = auth.check_token(_token_from_protocol(bearer))
    return who, bearer


async def _refuse(websocket: WebSocket, exc: OtterscopeError) -> None:
    # Before the handshake completes only an HTTP answer can say why; servers without the
    # denial-response extension get a close instead (an HTTP 403 to the client).
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(error_response(exc))
    else:
        await websocket.close(1013 if exc.status == 503 else 1008, exc.message[:120])


def _error(message: str) -> str:
    return orjson.dumps({"type": "error", "details": {"message": message}}).decode()


def handle_client_message(sub: Subscriber, text: str | None) -> str:
    """Apply one client message; the reply to send (``subscribed`` or ``error``)."""
    if text is None:
        return _error("send JSON text frames")
    try:
        msg: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        return _error("not JSON")
    if not isinstance(msg, dict) or msg.get("type") != "subscribe":
        kind = msg.get("type") if isinstance(msg, dict) else None
        return _error(f'unknown message type {kind!r}; expected "subscribe"')
    unknown = sorted(set(msg) - _SUBSCRIBE_KEYS)
    if unknown:
        return _error(f"unknown field(s) {unknown}; a subscribe has signals and service")
    signals = msg.get("signals", list(SIGNALS))
    if (
        not isinstance(signals, list)
        or not signals
        or not all(isinstance(s, str) and s in SIGNALS for s in signals)
    ):
        return _error(f"signals must be a non-empty list drawn from {list(SIGNALS)}")
    service = msg.get("service")
    if service is not None and not isinstance(service, str):
        return _error("service must be a string or null")
    chosen = Filter(frozenset(signals), service or None)
    if chosen != sub.filter:
        # A new filter object: messages built for the old one are no longer delivered.
        sub.filter = chosen
    details = {"signals": [s for s in SIGNALS if s in chosen.signals], "service": chosen.service}
    return orjson.dumps({"type": "subscribed", "details": details}).decode()


async def _read(websocket: WebSocket, sub: Subscriber) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        # Replies go through the outbox, so one task alone writes to the socket.
        sub.send(handle_client_message(sub, message.get("text")))


async def _pump(websocket: WebSocket, sub: Subscriber) -> None:
    while True:
        await sub.wake.wait()
        sub.wake.clear()
        while sub.outbox:
            await websocket.send_text(sub.outbox.popleft())


async def _serve(websocket: WebSocket, sub: Subscriber) -> None:
    tasks = [
        asyncio.create_task(_read(websocket, sub)),
        asyncio.create_task(_pump(websocket, sub)),
        asyncio.create_task(sub.closed.wait()),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # A send blocked on a client that does not read is cancelled here: the close
        # below must not wait behind it.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if sub.close_code is not None:
        with contextlib.suppress(TimeoutError, OSError, RuntimeError, WebSocketDisconnect):
            await asyncio.wait_for(
                websocket.close(sub.close_code, sub.close_reason), sub.close_wait
            )


async def live_feed(websocket: WebSocket) -> None:
    state: AppState = websocket.app.state.otterscope
    hub = state.live
    if hub is None:
        await _refuse(websocket, Unavailable("the live feed is not running"))
        return
    try:
        who, subprotocol = authenticate(state.auth, websocket)
        who.require("read")
    except OtterscopeError as exc:
        await _refuse(websocket, exc)
        return
    sub = hub.subscribe(who.tenant)
    if sub is None:
        await _refuse(websocket, Unavailable("server is shutting down", retry_after=1.0))
        return
    try:
        await websocket.accept(subprotocol=subprotocol)
        await _serve(websocket, sub)
    finally:
        hub.unsubscribe(sub)


@api_endpoint
async def not_upgraded(request: Request) -> Response:
    raise BadRequest("GET /api/ws is a WebSocket: send the upgrade headers (Upgrade: websocket)")


ROUTES = [WebSocketRoute("/api/ws", live_feed), Route("/api/ws", not_upgraded, methods=["GET"])]
