"""Spans of the push client: ids, W3C trace context, the current span, the OTLP/JSON span.

This module owns

- ``Span``: a span being recorded, a context manager (``with telemetry.span(...) as s``)
  that makes itself the current span (a ``contextvars`` variable, so threads and asyncio
  tasks each have their own) and ends itself on exit. An exception leaving the block is
  recorded as an ``exception`` event (``exception.type``, ``exception.message``,
  ``exception.stacktrace``, as the OpenTelemetry SDK writes them) with status ERROR, and
  propagates unchanged. ``GeneratorExit``, ``asyncio.CancelledError`` and ``SystemExit``
  with code 0 / None end the span without marking it as an error;
- parenting: an explicit, valid ``traceparent`` makes the span a child of that remote
  span; otherwise the current span (if any) is the parent; otherwise the span starts a new
  trace with the sampled flag set. The client records every span (no sampling): the
  incoming trace flags are only carried along (in ``inject`` and in the span's flags);
- ``parse_traceparent`` / ``Span.inject``: W3C Trace Context level 1 (``traceparent``,
  plus ``tracestate`` carried as given). Ids are lowercase hex; an invalid header (wrong
  size, upper case, all-zero ids, version ``ff``) is ignored, as the W3C text requires;
- status: ``set_status("ok" | "error" | "unset", description)``; OK is final, UNSET is
  ignored, a description is kept only with ERROR (the OpenTelemetry API rules);
- after ``end()`` the span ignores further changes; at most 128 events are kept per span
  (the SDK's default limit), more are counted in ``droppedEventsCount``;
- mistakes never raise (telemetry must not break the program): an unknown kind is
  recorded as ``internal`` and an unknown status is ignored, both reported through the
  ``report`` callback (``Telemetry.errors`` / ``last_error``).

Standard library only; what happens to an ended span is the ``on_end`` callback's business.
"""

from __future__ import annotations

import contextvars
import os
import re
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from otterscope.client._encode import KINDS, STATUS_CODES, Attributes, attributes

__all__ = ["Kind", "Span", "SpanContext", "current_span", "parse_traceparent"]

Kind = Literal["internal", "server", "client", "producer", "consumer"]

_CURRENT: contextvars.ContextVar[Span | None] = contextvars.ContextVar(
    "otterscope_client_span", default=None
)
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")

# Events kept per span (the OpenTelemetry SDK's default limit); more are counted.
MAX_EVENTS = 128

# opentelemetry.proto.trace.v1.SpanFlags
_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200


@dataclass(frozen=True)
class SpanContext:
    """The part of a span that crosses process boundaries."""

    trace_id: str
    span_id: str
    trace_flags: int = 1
    trace_state: str = ""
    is_remote: bool = False


def parse_traceparent(value: str | None, tracestate: str | None = None) -> SpanContext | None:
    """A W3C ``traceparent`` header as a remote ``SpanContext``, or None when invalid."""
    if not value:
        return None
    match = _TRACEPARENT.fullmatch(value.strip())
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return SpanContext(trace_id, span_id, int(flags, 16), (tracestate or "").strip(), True)


def current_span() -> Span | None:
    """The span the calling code runs in (in this thread or asyncio task), if any."""
    return _CURRENT.get()


def _new_id(size: int) -> str:
    while True:
        raw = os.urandom(size)
        if any(raw):
            return raw.hex()


def _is_failure(exc: BaseException) -> bool:
    if isinstance(exc, SystemExit):
        return exc.code not in (0, None)
    return isinstance(exc, Exception | KeyboardInterrupt)


def exception_type(exc: BaseException) -> str:
    """The exception's class, fully qualified unless it is a builtin (as the SDK writes it)."""
    module, qualname = type(exc).__module__, type(exc).__qualname__
    return f"{module}.{qualname}" if module and module != "builtins" else qualname


def exception_attributes(exc: BaseException) -> dict[str, Any]:
    """The OpenTelemetry ``exception.*`` attributes of an exception."""
    return {
        "exception.type": exception_type(exc),
        "exception.message": str(exc),
        "exception.stacktrace": "".join(traceback.format_exception(exc)),
    }


class Span:
    """One span being recorded; use it as a context manager."""

    context: SpanContext
    parent: SpanContext | None

    def __init__(
        self,
        on_end: Callable[[Span], None],
        name: str,
        kind: Kind = "internal",
        attrs: Attributes | None = None,
        parent: SpanContext | None = None,
        report: Callable[[str], None] | None = None,
    ) -> None:
        self._on_end = on_end
        self._report = report
        self.name = name
        self.kind = str(kind).lower()
        if self.kind not in KINDS:
            self._problem(f"span {name!r}: unknown kind {kind!r}, recorded as internal")
            self.kind = "internal"
        local = current_span()
        if parent is None and local is not None:
            parent = local.context
        self.parent = parent
        self.context = SpanContext(
            trace_id=parent.trace_id if parent else _new_id(16),
            span_id=_new_id(8),
            trace_flags=parent.trace_flags if parent else 1,
            trace_state=parent.trace_state if parent else "",
        )
        self.attributes: dict[str, Any] = dict(attrs or {})
        self.events: list[tuple[int, str, dict[str, Any]]] = []
        self.dropped_events = 0
        self.status: tuple[str, str] = ("unset", "")
        self.start_ns = time.time_ns()
        self.end_ns: int | None = None
        self._token: contextvars.Token[Span | None] | None = None

    def _problem(self, message: str) -> None:
        if self._report is not None:
            self._report(message)

    @property
    def trace_id(self) -> str:
        return self.context.trace_id

    @property
    def span_id(self) -> str:
        return self.context.span_id

    @property
    def traceparent(self) -> str:
        """This span as a W3C ``traceparent`` header value."""
        c = self.context
        return f"00-{c.trace_id}-{c.span_id}-{c.trace_flags:02x}"

    @property
    def ended(self) -> bool:
        return self.end_ns is not None

    def inject(self, headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
        """Put ``traceparent`` (and ``tracestate`` when there is one) into ``headers``."""
        headers["traceparent"] = self.traceparent
        if self.context.trace_state:
            headers["tracestate"] = self.context.trace_state
        return headers

    def set_attribute(self, key: str, value: Any) -> Span:
        if not self.ended:
            self.attributes[key] = value
        return self

    def set_attributes(self, attrs: Mapping[str, Any]) -> Span:
        if not self.ended:
            self.attributes.update(attrs)
        return self

    def update_name(self, name: str) -> Span:
        if not self.ended:
            self.name = name
        return self

    def add_event(
        self, name: str, attributes: Attributes | None = None, timestamp_ns: int | None = None
    ) -> Span:
        if self.ended:
            return self
        if len(self.events) >= MAX_EVENTS:
            self.dropped_events += 1
            return self
        when = time.time_ns() if timestamp_ns is None else timestamp_ns
        self.events.append((when, name, dict(attributes or {})))
        return self

    def set_status(self, status: str, description: str = "") -> Span:
        code = str(status).lower()
        if code not in STATUS_CODES:
            self._problem(f"span {self.name!r}: unknown status {status!r} ignored")
            return self
        if self.ended or code == "unset" or self.status[0] == "ok":
            return self
        self.status = (code, description if code == "error" else "")
        return self

    def record_exception(self, exc: BaseException, attributes: Attributes | None = None) -> Span:
        """Add an ``exception`` event for ``exc`` (the status is left to the caller)."""
        return self.add_event("exception", {**exception_attributes(exc), **(attributes or {})})

    def end(self, end_ns: int | None = None) -> None:
        """End the span (once; later calls do nothing) and hand it over."""
        if self.ended:
            return
        self.end_ns = max(self.start_ns, time.time_ns() if end_ns is None else end_ns)
        self._on_end(self)

    @contextmanager
    def use(self) -> Iterator[Span]:
        """Make this span the current one for the block, without ending it."""
        token = _CURRENT.set(self)
        try:
            yield self
        finally:
            _reset(token)

    def __enter__(self) -> Span:
        self._token = _CURRENT.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and _is_failure(exc):
            self.record_exception(exc)
            qualname = type(exc).__qualname__
            self.set_status("error", f"{qualname}: {exc}" if str(exc) else qualname)
        if self._token is not None:
            _reset(self._token)
            self._token = None
        self.end()

    def to_json(self) -> dict[str, Any]:
        """The span as an OTLP/JSON ``Span``."""
        c = self.context
        flags = c.trace_flags | _HAS_IS_REMOTE
        if self.parent is not None and self.parent.is_remote:
            flags |= _IS_REMOTE
        out: dict[str, Any] = {"traceId": c.trace_id, "spanId": c.span_id}
        if c.trace_state:
            out["traceState"] = c.trace_state
        if self.parent is not None:
            out["parentSpanId"] = self.parent.span_id
        out.update(
            flags=flags,
            name=self.name,
            kind=KINDS[self.kind],
            startTimeUnixNano=str(self.start_ns),
            endTimeUnixNano=str(self.end_ns if self.end_ns is not None else self.start_ns),
            attributes=attributes(self.attributes),
        )
        if self.dropped_events:
            out["droppedEventsCount"] = self.dropped_events
        if self.events:
            out["events"] = [
                {"timeUnixNano": str(when), "name": name, "attributes": attributes(attrs)}
                for when, name, attrs in self.events
            ]
        code, message = self.status
        status: dict[str, Any] = {"code": STATUS_CODES[code]} if code != "unset" else {}
        if message:
            status["message"] = message
        out["status"] = status
        return out


def _reset(token: contextvars.Token[Span | None]) -> None:
    try:
        _CURRENT.reset(token)
    except ValueError:
        # Entered in another context (e.g. a generator resumed elsewhere): put back what
        # was current when the span was entered, as the reset would have.
        old = token.old_value
        _CURRENT.set(None if old is contextvars.Token.MISSING else old)
