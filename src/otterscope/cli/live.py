"""``otterscope tail``: the live feed (``/api/ws``), one line per span, log record or metric."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import ssl
import sys
import threading
import time
from types import FrameType
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from otterscope.cli.client import TOKEN_HINT, CliError, Target
from otterscope.cli.output import fmt_ms, fmt_time, note, one_line
from otterscope.cli.query import log_line

OPEN_TIMEOUT_S = 15.0
# How long Ctrl-C waits for the closing handshake: a server that does not answer must not
# keep the user waiting (close() runs aside and is abandoned after this).
CLOSE_WAIT_S = 2.0
SIGNALS = ("traces", "logs", "metrics")


def ws_url(http_url: str) -> str:
    if http_url.startswith("https://"):
        return "wss://" + http_url[len("https://") :] + "/api/ws"
    return "ws://" + http_url[len("http://") :] + "/api/ws"


def span_line(span: dict[str, Any]) -> str:
    status = str((span.get("status") or {}).get("code", ""))
    status = {"STATUS_CODE_ERROR": "ERROR", "STATUS_CODE_OK": "OK"}.get(status, "-")
    return (
        f"{fmt_time(span.get('startTimeUnixNano') or 0)}  span  {span.get('service') or '-'}  "
        f"{one_line(span.get('name', ''), 120)}  {fmt_ms(float(span.get('durationMs') or 0))} ms  "
        f"{status}  trace={span.get('traceId')} span={span.get('spanId')}"
    )


def metric_line(entry: dict[str, Any]) -> str:
    points = int(entry.get("points") or 0)
    return (
        f"{fmt_time(entry.get('timeUnixNano') or time.time_ns())}  "
        f"metric  {entry.get('service') or '-'}  {entry.get('name')}  {entry.get('type')}  "
        f"+{points} point{'s' if points != 1 else ''}"
    )


def lines(message: dict[str, Any]) -> list[str]:
    """The human lines of one server message (nothing for messages tail does not know)."""
    details = message.get("details") or {}
    kind = message.get("type")
    if kind == "spanAdded":
        return [span_line(s) for s in details.get("spans") or []]
    if kind == "logAdded":
        return [log_line(r) for r in details.get("newLogs") or []]
    if kind == "metricAdded":
        return [metric_line(m) for m in details.get("newMetrics") or []]
    return []


def _refused(exc: InvalidStatus, token: str | None) -> CliError:
    response = exc.response
    detail = ""
    with contextlib.suppress(ValueError, AttributeError):
        doc = json.loads(response.body or b"")
        detail = str(doc["error"]["message"]) if isinstance(doc, dict) else ""
    status = f"{response.status_code} {response.reason_phrase}".strip()
    hint = ""
    if response.status_code == 401:
        hint = f" ({'the server does not know the token given; ' if token else ''}{TOKEN_HINT})"
    return CliError(
        f"the live feed refused the connection: {status}{': ' + detail if detail else ''}{hint}"
    )


def _open(target: Target, url: str) -> ClientConnection:
    context: ssl.SSLContext | None = None
    if url.startswith("wss://"):
        context = (
            target.verify
            if isinstance(target.verify, ssl.SSLContext)
            else ssl.create_default_context()
        )
    try:
        return connect(
            url,
            additional_headers=target.headers() or None,
            ssl=context,
            open_timeout=OPEN_TIMEOUT_S,
            close_timeout=CLOSE_WAIT_S,
            max_size=None,
            user_agent_header="otterscope-cli",
        )
    except InvalidStatus as exc:
        raise _refused(exc, target.token) from None
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        raise CliError(
            f"cannot connect to {url}: {exc or type(exc).__name__} (is otterscope running there?)"
        ) from None


def _closed(exc: ConnectionClosed) -> CliError:
    frame = exc.rcvd
    if frame is None:
        return CliError("the live feed connection was lost")
    reason = f": {frame.reason}" if frame.reason else ""
    return CliError(f"the server closed the live feed ({frame.code}{reason})")


def _terminate(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def cmd_tail(args: argparse.Namespace) -> int:
    target = Target.from_args(args)
    url = ws_url(target.url)
    signals = list(args.signal) if args.signal else list(SIGNALS)
    signal.signal(signal.SIGTERM, _terminate)  # like Ctrl-C: stop quietly, exit 0
    try:
        ws = _open(target, url)
        try:
            return _follow(ws, signals, args.service, args.json)
        finally:
            closer = threading.Thread(target=_close, args=(ws,), daemon=True)
            closer.start()
            closer.join(CLOSE_WAIT_S)
    except KeyboardInterrupt:
        return 0


def _close(ws: ClientConnection) -> None:
    # The feed is being left: a failed closing handshake changes nothing for the user.
    with contextlib.suppress(Exception):
        ws.close()


def _follow(ws: ClientConnection, signals: list[str], service: str | None, as_json: bool) -> int:
    try:
        ws.send(json.dumps({"type": "subscribe", "signals": signals, "service": service}))
        while True:
            raw = ws.recv()
            message = json.loads(raw)
            kind = message.get("type") if isinstance(message, dict) else None
            if kind == "subscribed":
                if sys.stderr.isatty():
                    what = ", ".join(signals) + (f" of {service}" if service else "")
                    note(f"tailing {what} (Ctrl-C to stop)")
                continue
            if kind == "error":
                raise CliError(f"the live feed refused: {message['details'].get('message')}")
            if as_json:
                out = raw if isinstance(raw, str) else raw.decode()
                sys.stdout.write(out.strip() + "\n")
            else:
                for line in lines(message):
                    sys.stdout.write(line + "\n")
            sys.stdout.flush()
    except ConnectionClosed as exc:
        raise _closed(exc) from None
