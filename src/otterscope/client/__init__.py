"""``otterscope.client``: a push client for serverless functions and batch jobs.

Standard library only — it imports nothing outside it, so it works without the server's
dependencies (``pip install otterscope`` is not even needed: the ``client`` folder plus
``otterscope/__init__.py`` are enough). Record counters, up-down counters, gauges and
histograms (DELTA temporality), spans (W3C ``traceparent`` in and out) and log records in
memory, then ``flush()``: one gzip OTLP/JSON POST per signal present to
``<endpoint>/v1/traces``, ``/v1/metrics`` and ``/v1/logs``. Telemetry failures never raise:
``flush()`` returns False and ``errors`` / ``last_error`` say why. ASGI and WSGI middleware
are in ``otterscope.client.middleware``.

::

    from otterscope.client import Telemetry

    t = Telemetry(service_name="my-fn", endpoint="http://host:4318", token="...")
    t.counter("http_requests_total", 1, {"route": "/a", "status": "200"})
    with t.span("handle", kind="server", traceparent=headers.get("traceparent")) as span:
        span.set_attribute("user.id", "42")
        outgoing = span.inject({})
    t.log("cache miss", severity="WARN", attributes={"key": "k"})
    t.flush()

This package's modules: ``telemetry`` (buffers, recording, flush), ``_metrics``
(accumulation), ``_trace`` (spans and trace context), ``_encode`` (OTLP/JSON),
``_export`` (configuration and HTTP), ``middleware`` (ASGI / WSGI).
"""

from otterscope.client._trace import Span, SpanContext, current_span, parse_traceparent
from otterscope.client.telemetry import Telemetry

__all__ = ["Span", "SpanContext", "Telemetry", "current_span", "parse_traceparent"]
