"""otterscope's own metrics (``otterscope_*``) and their exposition: Prometheus text, or
OpenMetrics (counter families named without ``_total``, ``_created`` samples).

Two kinds, because a scrape must not tell one tenant about another: per-tenant counters
(what a tenant sent, what was refused, its metrics' overflow) are kept with the tenant and
shown to each token only for its own tenant, without the label; server-wide figures (the
queue, commit latency, disk, quarantined files) are shown only to an ``admin`` token.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable

_Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt_labels(labels: _Labels, extra: tuple[str, str] | None = None) -> str:
    items = list(labels) + ([extra] if extra else [])
    if not items:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in items) + "}"


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


class Counter:
    def __init__(self, name: str, help: str, per_tenant: bool = False) -> None:
        self.name = name
        self.help = help
        self.per_tenant = per_tenant
        self._values: dict[_Labels, float] = {}
        self._created: dict[_Labels, float] = {}
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if self.per_tenant and "tenant" not in labels:
            raise TypeError(f"{self.name} is counted per tenant: pass tenant=")
        key = tuple(sorted(labels.items()))
        with self._lock:
            if key not in self._values:
                self._created[key] = time.time()
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        return self._values.get(tuple(sorted(labels.items())), 0.0)

    def total(self, tenant: str | None = None) -> float:
        """The sum over every series, or over one tenant's."""
        with self._lock:
            values = list(self._values.items())
        return sum(v for labels, v in values if tenant is None or ("tenant", tenant) in labels)

    def render(self, openmetrics: bool = False, tenant: str | None = None) -> Iterable[str]:
        """The family; a per-tenant counter shows only ``tenant``'s series, unlabelled."""
        base = self.name.removesuffix("_total") if openmetrics else self.name
        yield f"# HELP {base} {self.help}"
        yield f"# TYPE {base} counter"
        with self._lock:
            items = sorted(self._values.items())
            created = dict(self._created)
        for labels, value in items:
            shown = labels
            if self.per_tenant:
                if ("tenant", tenant) not in labels:
                    continue
                shown = tuple(kv for kv in labels if kv[0] != "tenant")
            yield f"{self.name}{_fmt_labels(shown)} {_num(value)}"
            if openmetrics:
                yield f"{base}_created{_fmt_labels(shown)} {created[labels]!r}"


class Gauge:
    """A gauge read from a callback at scrape time, so it is never stale."""

    def __init__(self, name: str, help: str, read: Callable[[], float]) -> None:
        self.name = name
        self.help = help
        self._read = read

    def render(self, openmetrics: bool = False) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} gauge"
        yield f"{self.name} {_num(self._read())}"


class Histogram:
    def __init__(self, name: str, help: str, buckets: tuple[float, ...]) -> None:
        self.name = name
        self.help = help
        self.buckets = buckets
        self._counts = [0] * (len(buckets) + 1)
        self._sum = 0.0
        self._count = 0
        self._created = time.time()
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        with self._lock:
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    self._counts[i] += 1
                    break
            else:
                self._counts[-1] += 1
            self._sum += value
            self._count += 1

    def render(self, openmetrics: bool = False) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        with self._lock:
            counts, total, count = list(self._counts), self._sum, self._count
        cumulative = 0
        for bound, n in zip((*self.buckets, math.inf), counts, strict=True):
            cumulative += n
            yield f'{self.name}_bucket{{le="{_num(bound)}"}} {cumulative}'
        yield f"{self.name}_sum {_num(total)}"
        yield f"{self.name}_count {count}"
        if openmetrics:
            yield f"{self.name}_created {self._created!r}"


class SelfMetrics:
    def __init__(self) -> None:
        self.received_items = Counter(
            "otterscope_received_items_total",
            "Spans, log records and data points accepted and committed.",
            per_tenant=True,
        )
        self.received_requests = Counter(
            "otterscope_received_requests_total",
            "OTLP export requests answered, by outcome.",
            per_tenant=True,
        )
        self.rejected_items = Counter(
            "otterscope_rejected_items_total",
            "Items refused (whole requests or partial_success), by reason.",
            per_tenant=True,
        )
        self.attributes_dropped = Counter(
            "otterscope_attributes_dropped_total",
            "Attributes dropped by the per-item count limit.",
            per_tenant=True,
        )
        self.attributes_truncated = Counter(
            "otterscope_attributes_truncated_total",
            "Attribute values truncated by the length limit.",
            per_tenant=True,
        )
        self.metric_overflow_points = Counter(
            "otterscope_metric_overflow_points_total",
            "Metric points folded into a metric's overflow series (per-metric series limit).",
            per_tenant=True,
        )
        self.quarantined_files = Counter(
            "otterscope_quarantined_files_total",
            "Damaged or stray files moved (or copied) to <data-dir>/quarantine/, by kind.",
        )
        self.commit_seconds = Histogram(
            "otterscope_commit_duration_seconds",
            "Time to commit one group of batches to the store.",
            (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        self.gauges: list[Gauge] = []

    def gauge(self, name: str, help: str, read: Callable[[], float]) -> None:
        self.gauges.append(Gauge(name, help, read))

    def render(self, tenant: str, server_wide: bool, openmetrics: bool = False) -> str:
        """``tenant``'s own figures, and the server-wide ones when ``server_wide``."""
        lines: list[str] = []
        for counter in (
            self.received_items,
            self.received_requests,
            self.rejected_items,
            self.attributes_dropped,
            self.attributes_truncated,
            self.metric_overflow_points,
        ):
            lines.extend(counter.render(openmetrics, tenant))
        if server_wide:
            lines.extend(self.quarantined_files.render(openmetrics))
            lines.extend(self.commit_seconds.render(openmetrics))
            for gauge in self.gauges:
                lines.extend(gauge.render(openmetrics))
        return "\n".join(lines) + "\n"


def alert_gauges(rules: Iterable[tuple[str, str, str, str, int]]) -> str:
    """A tenant's alert rules as gauges (the same in both formats): ``otterscope_alerts_firing``
    (1 while the rule's incident fires, else 0; labels ``alertname``, ``id``,
    ``severity``, ``metric``) and ``otterscope_alert_rules`` (the enabled rules), so a dashboard shows the
    firing incidents and an alert rule can watch them."""
    rows = list(rules)
    lines = [
        "# HELP otterscope_alerts_firing Whether an alert rule's incident is firing (1) or not (0).",
        "# TYPE otterscope_alerts_firing gauge",
    ]
    for name, rule_id, severity, metric, firing in rows:
        labels = (("alertname", name), ("id", rule_id), ("metric", metric), ("severity", severity))
        lines.append(f"otterscope_alerts_firing{_fmt_labels(labels)} {firing}")
    lines += [
        "# HELP otterscope_alert_rules Enabled alert rules.",
        "# TYPE otterscope_alert_rules gauge",
        f"otterscope_alert_rules {len(rows)}",
    ]
    return "\n".join(lines) + "\n"
