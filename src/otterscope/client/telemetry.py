"""``Telemetry``: the push client's buffers, its recording methods and ``flush()``.

This module owns what is kept between flushes and what a flush does with it:

- recordings go into three buffers behind one lock (spans as they end, log records,
  merged metric series); each buffer holds at most ``max_items`` (spans, log records,
  metric series) and drops its oldest beyond that, counted in ``dropped``;
- ``flush()`` takes everything (under the lock), then sends one gzip OTLP/JSON POST per
  signal present (outside it, so recording never waits for the network; flushes
  themselves run one at a time). Metric points carry ``startTimeUnixNano`` = the previous
  flush (or creation) and ``timeUnixNano`` = now;
- failures never raise: ``flush()`` returns False, ``errors`` counts failed POSTs and
  rejected recordings, ``last_error`` says what happened last. After a retryable failure
  (connection error, timeout, 429, 502, 503, 504) the signal's data is put back for the
  next flush (metric deltas merge with what was recorded meanwhile, keeping the older
  start time); after any other failure it is dropped and counted in ``dropped``.
  Items the server refused through ``partialSuccess`` are counted in ``rejected``
  (the flush still succeeded: resending them cannot help);
- with no endpoint configured, ``flush()`` discards the data and returns True.

Standard library only.
"""

from __future__ import annotations

import atexit
import functools
import gzip
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec

from otterscope import __version__
from otterscope.client import _export
from otterscope.client._encode import Attributes, any_value, dumps, envelope
from otterscope.client._encode import attributes as encode_attributes
from otterscope.client._encode import severity as severity_of
from otterscope.client._metrics import MetricBuffer
from otterscope.client._trace import Kind, Span, current_span, parse_traceparent

__all__ = ["Telemetry"]

_P = ParamSpec("_P")


def _never_raises(
    method: Callable[Concatenate[Telemetry, _P], None],
) -> Callable[Concatenate[Telemetry, _P], None]:
    """Recording methods report their own failures instead of raising them."""

    def wrapper(self: Telemetry, /, *args: _P.args, **kwargs: _P.kwargs) -> None:
        try:
            method(self, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - telemetry must never break the caller
            self._problem(f"{method.__name__}: {type(exc).__name__}: {exc}")

    functools.update_wrapper(wrapper, method)
    return wrapper


class Telemetry:
    """Record metrics, spans and logs in memory; send them with ``flush()``."""

    def __init__(
        self,
        service_name: str | None = None,
        endpoint: str | None = None,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        resource_attributes: Mapping[str, Any] | None = None,
        timeout: float = 5.0,
        *,
        max_items: int = 10_000,
        flush_at_exit: bool = False,
    ) -> None:
        config = _export.settings(
            service_name=service_name,
            endpoint=endpoint,
            token=token,
            headers=headers,
            resource_attributes=resource_attributes,
            version=__version__,
        )
        self.endpoint = config.endpoint
        self.resource: dict[str, Any] = config.resource
        self.service_name = str(self.resource["service.name"])
        self.timeout = timeout
        self.max_items = max(1, max_items)
        self._headers = {
            **config.headers,
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "User-Agent": f"otterscope-client/{__version__} (python)",
        }
        self._resource_json = encode_attributes(self.resource)
        self._opener = _export.opener()
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._spans: deque[dict[str, Any]] = deque()
        self._logs: deque[dict[str, Any]] = deque()
        self._metrics = MetricBuffer(self.max_items)
        self._metrics_start = time.time_ns()
        self.errors = 0
        self.dropped = 0
        self.rejected = 0
        self.last_error: str | None = None
        self._at_exit = flush_at_exit
        if flush_at_exit:
            atexit.register(self.flush)

    # -- metrics ----------------------------------------------------------------------

    @_never_raises
    def counter(
        self,
        name: str,
        value: float = 1,
        attributes: Attributes | None = None,
        unit: str = "",
        description: str = "",
    ) -> None:
        """Add ``value`` (>= 0) to a monotonic DELTA sum."""
        self._record("sum", name, value, attributes, True, unit, description, None)

    @_never_raises
    def up_down_counter(
        self,
        name: str,
        value: float = 1,
        attributes: Attributes | None = None,
        unit: str = "",
        description: str = "",
    ) -> None:
        """Add ``value`` (any sign) to a non-monotonic DELTA sum."""
        self._record("sum", name, value, attributes, False, unit, description, None)

    @_never_raises
    def gauge(
        self,
        name: str,
        value: float,
        attributes: Attributes | None = None,
        unit: str = "",
        description: str = "",
    ) -> None:
        """Set a gauge; the last value before a flush is the one sent."""
        self._record("gauge", name, value, attributes, False, unit, description, None)

    @_never_raises
    def histogram(
        self,
        name: str,
        value: float,
        attributes: Attributes | None = None,
        boundaries: Sequence[float] | None = None,
        unit: str = "",
        description: str = "",
    ) -> None:
        """Record ``value`` (>= 0) in a DELTA explicit-bucket histogram."""
        self._record("histogram", name, value, attributes, False, unit, description, boundaries)

    def _record(
        self,
        kind: str,
        name: str,
        value: Any,
        attrs: Attributes | None,
        monotonic: bool,
        unit: str,
        description: str,
        boundaries: Sequence[float] | None,
    ) -> None:
        span = current_span()
        # An exemplar only links to a trace that is kept: a sampled span.
        sampled = span is not None and span.context.trace_flags & 1
        origin = (time.time_ns(), span.trace_id, span.span_id) if span and sampled else None
        with self._lock:
            problem, dropped = self._metrics.record(
                kind,
                name,
                value,
                attrs,
                monotonic=monotonic,
                unit=unit,
                description=description,
                boundaries=boundaries,
                origin=origin,
            )
            self.dropped += dropped
        if problem:
            self._problem(problem, dropped=1)

    # -- traces and logs --------------------------------------------------------------

    def span(
        self,
        name: str,
        kind: Kind = "internal",
        attributes: Attributes | None = None,
        traceparent: str | None = None,
        tracestate: str | None = None,
    ) -> Span:
        """A new span; ``with telemetry.span(...) as span:`` makes it current and ends it.

        ``traceparent`` (a W3C header value, e.g. from the incoming request) makes the span
        a child of that remote span; without it, the current span is the parent.
        """
        parent = parse_traceparent(traceparent, tracestate)
        return Span(self._finish, name, kind, attributes, parent, report=self._problem)

    def current_span(self) -> Span | None:
        """The span the calling code runs in, if any."""
        return current_span()

    def _finish(self, span: Span) -> None:
        try:
            item = span.to_json()
        except Exception as exc:  # noqa: BLE001 - telemetry must never break the caller
            self._problem(f"span {span.name!r}: {type(exc).__name__}: {exc}", dropped=1)
            return
        with self._lock:
            self.dropped += _append(self._spans, item, self.max_items)

    @_never_raises
    def log(
        self,
        body: Any,
        severity: str | int = "INFO",
        attributes: Attributes | None = None,
        event_name: str = "",
    ) -> None:
        """One log record; inside a span it carries the span's trace and span ids."""
        number, text = severity_of(severity)
        now = str(time.time_ns())
        record: dict[str, Any] = {
            "timeUnixNano": now,
            "observedTimeUnixNano": now,
            "severityNumber": number,
            "severityText": text,
            "body": any_value(body),
            "attributes": encode_attributes(attributes),
        }
        if event_name:
            record["eventName"] = event_name
        span = current_span()
        if span is not None:
            record["traceId"] = span.trace_id
            record["spanId"] = span.span_id
            record["flags"] = span.context.trace_flags
        with self._lock:
            self.dropped += _append(self._logs, record, self.max_items)

    # -- flushing ---------------------------------------------------------------------

    def pending(self) -> dict[str, int]:
        """What the next flush would send: spans, metric series and log records."""
        with self._lock:
            return {
                "traces": len(self._spans),
                "metrics": len(self._metrics),
                "logs": len(self._logs),
            }

    def flush(self) -> bool:
        """Send everything recorded so far; True when every POST succeeded (or no endpoint)."""
        try:
            with self._flush_lock:
                return self._flush()
        except Exception as exc:  # noqa: BLE001 - telemetry must never break the caller
            self._problem(f"flush: {type(exc).__name__}: {exc}")
            return False

    def _flush(self) -> bool:
        with self._lock:
            spans, logs = list(self._spans), list(self._logs)
            self._spans.clear()
            self._logs.clear()
            metrics = self._metrics.take()
            start, end = self._metrics_start, time.time_ns()
            self._metrics_start = end
        if self.endpoint is None:
            return True
        ok = True
        if spans:
            outcome = self._send("traces", spans, len(spans))
            ok = ok and outcome.ok
            if outcome.retryable:
                self._put_back(self._spans, spans)
        if len(metrics):
            outcome = self._send("metrics", metrics.to_json(start, end), len(metrics))
            ok = ok and outcome.ok
            if outcome.retryable:
                with self._lock:
                    self.dropped += self._metrics.restore(metrics)
                    self._metrics_start = start
        if logs:
            outcome = self._send("logs", logs, len(logs))
            ok = ok and outcome.ok
            if outcome.retryable:
                self._put_back(self._logs, logs)
        return ok

    def _send(self, signal: str, items: list[dict[str, Any]], count: int) -> _export.Outcome:
        """POST one signal; a failure that is not worth retrying drops the items."""
        assert self.endpoint is not None
        body = gzip.compress(
            dumps(envelope(signal, self._resource_json, __version__, items)), compresslevel=6
        )
        url = f"{self.endpoint}/v1/{signal}"
        outcome = _export.post(self._opener, url, body, self._headers, self.timeout)
        if outcome.rejected:
            with self._lock:
                self.rejected += outcome.rejected
                self.last_error = outcome.error
        elif not outcome.ok:
            self._problem(outcome.error, dropped=0 if outcome.retryable else count)
        return outcome

    def _put_back(self, buffer: deque[dict[str, Any]], items: list[dict[str, Any]]) -> None:
        with self._lock:
            newer = list(buffer)
            buffer.clear()
            buffer.extend(items)
            buffer.extend(newer)
            while len(buffer) > self.max_items:
                buffer.popleft()
                self.dropped += 1

    def _problem(self, message: str, dropped: int = 0) -> None:
        with self._lock:
            self.errors += 1
            self.dropped += dropped
            self.last_error = message

    def close(self) -> bool:
        """Flush, and stop flushing at exit (when ``flush_at_exit`` was asked for)."""
        if self._at_exit:
            atexit.unregister(self.flush)
            self._at_exit = False
        return self.flush()


def _append(buffer: deque[dict[str, Any]], item: dict[str, Any], limit: int) -> int:
    dropped = 0
    while len(buffer) >= limit:
        buffer.popleft()
        dropped += 1
    buffer.append(item)
    return dropped
