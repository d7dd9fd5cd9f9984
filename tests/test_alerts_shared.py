"""Alert rules evaluated together share the store's reads and give exactly what each rule
evaluated on its own gives: values, errors, incidents and their notifications.

The data is real: spans and metrics of every kind sent over OTLP/HTTP to a running server,
whose data dir is then opened in this process (as the server's store) once it stopped.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otterscope.alerting import values
from otterscope.alerting.evaluator import Evaluator
from otterscope.alerting.model import BUILTINS, AlertConfig, Webhook
from otterscope.alerting.state import AlertState
from otterscope.errors import OtterscopeError
from otterscope.metrics import query as mq
from otterscope.metrics.accumulator import Accumulator
from otterscope.metrics.query import AGGREGATIONS
from otterscope.metrics.state import MetricsState
from otterscope.store.embedded.store import EmbeddedStore
from tests.conftest import start_server
from tests.payloads import attr, new_span_id, new_trace_id, now_ns, post, span

S = 10**9
TENANT = "default"
SERVICES = ("cart", "pay", "ship")
QUEUES = ("emails", "sms")


def _resource(service: str, host: str) -> dict[str, Any]:
    return {"attributes": [attr("service.name", service), attr("host.name", host)]}


def _metrics(t0: int, service: str, host: str, k: int) -> list[dict[str, Any]]:
    """One export of every kind of metric, ``k`` steps of 30 s after ``t0``."""
    t = t0 + k * 30 * S
    start = t0 - 30 * S
    bounds = [10.0, 50.0, 100.0, 500.0]
    scale = 1 + SERVICES.index(service)
    out: list[dict[str, Any]] = []
    for q, queue in enumerate(QUEUES):
        labels = [attr("queue", queue)]
        total = (k + 1) * (3 + q) * scale if k != 12 else 2  # a reset at step 12
        out += [
            _sum("jobs.done", 2, True, start if k < 12 else t - S, t, total, labels),
            _sum("jobs.delta", 1, True, t - 30 * S, t, (k % 4) + q, labels),
            _sum("pool.used", 2, False, start, t, 10 - k + q * scale, labels),
            {
                "name": "queue.depth",
                "gauge": {"dataPoints": [_point(t, None, labels, asDouble=k * 1.5 + q)]},
            },
        ]
    for m, method in enumerate(("GET", "POST")):
        labels = [attr("http.request.method", method)]
        counts = [str((k + 1) * c * scale) for c in (5, 3 + m, 2, 1, m)]
        delta = [str((k % 3) * c + m) for c in (4, 2, 2, 1, 0)]
        out += [
            _histogram("req.duration", 2, start, t, labels, counts, bounds),
            _histogram("req.delta_duration", 1, t - 30 * S, t, labels, delta, bounds),
        ]
    out.append(
        {
            "name": "payload.size",
            "exponentialHistogram": {
                "aggregationTemporality": 1,
                "dataPoints": [
                    _point(
                        t,
                        t - 30 * S,
                        [],
                        count=str(4 + k),
                        sum=float(40 + 7 * k),
                        scale=0,
                        zeroCount="0",
                        positive={"offset": k % 3, "bucketCounts": ["1", str(2 + k), "1"]},
                    )
                ],
            },
        }
    )
    quantiles = [
        {"quantile": 0.5, "value": 10.0 + k},
        {"quantile": 0.99, "value": 90.0 + scale * k},
    ]
    out.append(
        {
            "name": "rpc.latency",
            "summary": {
                "dataPoints": [
                    _point(
                        t,
                        start,
                        [],
                        count=str(10 * (k + 1)),
                        sum=30.0 * k,
                        quantileValues=quantiles,
                    )
                ]
            },
        }
    )
    return out


def _point(
    t: int, start: int | None, labels: list[dict[str, Any]], **fields: Any
) -> dict[str, Any]:
    point = {"timeUnixNano": str(t), "attributes": labels, **fields}
    if start is not None:
        point["startTimeUnixNano"] = str(start)
    return point


def _sum(
    name: str, temporality: int, monotonic: bool, start: int, t: int, value: int, labels: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "sum": {
            "aggregationTemporality": temporality,
            "isMonotonic": monotonic,
            "dataPoints": [_point(t, start, labels, asInt=str(value))],
        },
    }


def _histogram(
    name: str, temporality: int, start: int, t: int, labels: Any, counts: list[str], bounds: Any
) -> dict[str, Any]:
    total = sum(int(c) for c in counts)
    return {
        "name": name,
        "unit": "ms",
        "histogram": {
            "aggregationTemporality": temporality,
            "dataPoints": [
                _point(
                    t,
                    start,
                    labels,
                    count=str(total),
                    sum=float(total * 37),
                    bucketCounts=counts,
                    explicitBounds=bounds,
                    min=1.0,
                    max=900.0 + total,
                )
            ],
        },
    }


def _spans(t0: int, service: str, k: int) -> list[dict[str, Any]]:
    """Traces of ``service`` starting ``k`` steps of 30 s after ``t0``: entry spans (SERVER,
    CONSUMER, roots) and spans that are not (CLIENT, INTERNAL children)."""
    out = []
    for i in range(6 + 2 * SERVICES.index(service)):
        trace, root = new_trace_id(), new_span_id()
        start = t0 + k * 30 * S + i * 10**8
        duration = (5 + (i * 37 + k * 11) % 400) * 10**6
        failed = (i + k) % 5 == 0
        kind = 5 if i % 3 == 0 else 2
        out.append(
            span(trace, root, f"op{i % 3}", start, duration, kind=kind, status=2 if failed else 0)
        )
        out.append(span(trace, new_span_id(), "db", start + 10**6, duration // 2, root, kind=3))
        out.append(span(trace, new_span_id(), "work", start + 10**6, duration // 3, root, kind=1))
    return out


@dataclass
class Data:
    store: EmbeddedStore
    accumulator: Accumulator
    t0: int


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Data]:
    base = tmp_path_factory.mktemp("alert-data")
    srv = start_server(base)
    t0 = now_ns() - 600 * S
    for k in range(20):
        for service in SERVICES:
            resource_spans = {
                "resource": _resource(service, "h1"),
                "scopeSpans": [{"scope": {"name": "t"}, "spans": _spans(t0, service, k)}],
            }
            post(srv.url, "traces", {"resourceSpans": [resource_spans]})
            metrics = [
                {
                    "resource": _resource(service, host),
                    "scopeMetrics": [
                        {"scope": {"name": "t"}, "metrics": _metrics(t0, service, host, k)}
                    ],
                }
                for host in ("h1", "h2")
            ]
            post(srv.url, "metrics", {"resourceMetrics": metrics})
    assert srv.stop() == 0
    store = EmbeddedStore(srv.data_dir)
    accumulator = Accumulator()
    MetricsState(srv.data_dir, accumulator, store).load()
    yield Data(store, accumulator, t0)
    store.close()


class CountingStore:
    """The real store, counting the reads it is asked for."""

    def __init__(self, store: EmbeddedStore) -> None:
        self._store = store
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._store, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return found(*args, **kwargs)

        return counted


METRICS = (
    "jobs.done",
    "jobs_done_total",  # the Prometheus name of the same metric
    "jobs.delta",
    "pool.used",
    "queue.depth",
    "req.duration",
    "req.delta_duration",
    "payload.size",
    "rpc.latency",
    "traces.span.metrics.calls",
    "traces_span_metrics_duration_milliseconds",
    "no.such.metric",
)
LABELS = (
    {},
    {"queue": "emails"},
    {"queue": "sms"},
    {"http.request.method": "GET"},
    {"host.name": "h2"},
    {"span_kind": "SPAN_KIND_SERVER"},
    {"status_code": "STATUS_CODE_ERROR"},
    {"queue": "nothing"},
)


@st.composite
def rules(draw: st.DrawFn) -> list[AlertConfig]:
    out = []
    for i in range(draw(st.integers(1, 14))):
        metric = draw(st.sampled_from(BUILTINS + METRICS))
        builtin = metric in BUILTINS
        out.append(
            AlertConfig(
                id=f"r{i}",
                tenant=TENANT,
                name=f"rule {i}",
                metric_name=metric,
                aggregation="value" if builtin else draw(st.sampled_from(AGGREGATIONS)),
                condition=draw(st.sampled_from(("gt", "gte", "lt", "lte"))),
                threshold=draw(st.sampled_from((0.0, 0.05, 1.0, 5.0, 40.0, 300.0))),
                window_s=draw(st.sampled_from((60, 300, 420))),
                severity="warning",
                service_id=draw(st.sampled_from((None, *SERVICES, "gone"))),
                labels=() if builtin else tuple(sorted(draw(st.sampled_from(LABELS)).items())),
                for_s=draw(st.sampled_from((0, 0, 100))),
                webhooks=(Webhook("http://127.0.0.1:9/hook"),),
            )
        )
    return out


def alone(data: Data, rule: AlertConfig, now: int) -> tuple[str, Any]:
    """A rule's value (or why it has none) read on its own."""
    try:
        value = values.rule_value(data.store, data.accumulator.metric_names, frozenset(), rule, now)
    except OtterscopeError as exc:  # compared: the shared evaluation must report the same
        return ("error", exc.message)
    return ("value", value)


def together(data: Data, rules_: list[AlertConfig], now: int) -> dict[str, tuple[str, Any]]:
    found = values.rule_values(data.store, data.accumulator.metric_names, frozenset(), rules_, now)
    assert set(found.values) | set(found.errors) == {r.id for r in rules_}
    return {
        r.id: ("error", found.errors[r.id])
        if r.id in found.errors
        else ("value", found.values[r.id])
        for r in rules_
    }


def incidents(state: AlertState, rule_id: str) -> list[tuple[Any, ...]]:
    """A rule's incidents as a comparable shape (ids are random)."""
    found = []
    for i in state.incidents.values():
        if i.config_id == rule_id:
            events = [(d.event, d.webhook.url, d.next_attempt_ns) for d in i.deliveries]
            found.append((i.state, i.value, i.last_value, i.started_ns, i.resolved_ns, events))
    return sorted(found, key=repr)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rules())
def test_rules_together_give_what_each_gives_alone(data: Data, drawn: list[AlertConfig]) -> None:
    now = data.t0 + 600 * S + 5 * S
    # Values and errors: the shared reads against each rule's own read (the query API's).
    for moment in (now, now + 200 * S):
        assert together(data, drawn, moment) == {r.id: alone(data, r, moment) for r in drawn}
    # Incidents and notifications over evaluations at moments that open, wait out
    # forSeconds and resolve: all rules in one state, against each rule in a state of its own.
    with tempfile.TemporaryDirectory() as shared_dir:
        shared = AlertState(Path(shared_dir))
        shared.change(lambda s: s.configs.update({r.id: r for r in drawn}))
        evaluator = Evaluator(data.store, shared, data.accumulator.metric_names)
        shared_runs = [evaluator.evaluate(now_ns=now + d * S) for d in (0, 120, 320)]
        for rule in drawn:
            with tempfile.TemporaryDirectory() as own_dir:
                own = AlertState(Path(own_dir))
                own.change(lambda s, r=rule: s.configs.update({r.id: r}))
                single = Evaluator(data.store, own, data.accumulator.metric_names)
                for d, run in zip((0, 120, 320), shared_runs, strict=True):
                    result = single.evaluate(now_ns=now + d * S)
                    assert (rule.id in run.errors) == (rule.id in result.errors)
                    fired = [i for i in run.fired if shared.incidents[i].config_id == rule.id]
                    resolved = [i for i in run.resolved if shared.incidents[i].config_id == rule.id]
                    assert (len(fired), len(resolved)) == (len(result.fired), len(result.resolved))
                assert incidents(shared, rule.id) == incidents(own, rule.id)
                assert shared.breaching_since.get(rule.id) == own.breaching_since.get(rule.id)
                assert (rule.id in shared.open_incident) == (rule.id in own.open_incident)


def test_rules_over_the_same_data_share_one_read(data: Data) -> None:
    now = data.t0 + 605 * S
    base = AlertConfig("x", TENANT, "x", "error_rate", "value", "gt", 0.0, 300, "warning")
    made = [
        # built-ins: two windows, each one pass over the spans whatever the services
        *(
            replace(base, metric_name=m, service_id=s, window_s=w)
            for m in BUILTINS
            for s in (None, "cart", "pay")
            for w in (300, 60)
        ),
        # one metric, five rules: one read
        *(
            replace(base, metric_name="jobs.done", aggregation=a, labels=labels, service_id=s)
            for a, labels, s in [
                ("rate", (), None),
                ("increase", (("queue", "sms"),), "cart"),
                ("max", (("queue", "emails"),), "pay"),
                ("count", (), "ship"),
                ("sum", (("host.name", "h2"),), None),
            ]
        ),
        # its Prometheus name is the same metric
        replace(base, metric_name="jobs_done_total", aggregation="increase"),
        # another metric, two rules: one read
        replace(base, metric_name="req.duration", aggregation="p99", service_id="cart"),
        replace(base, metric_name="req.duration", aggregation="avg"),
        # both RED metrics: one read of the spans
        replace(base, metric_name="traces.span.metrics.calls", aggregation="rate"),
        replace(base, metric_name="traces_span_metrics_duration_milliseconds", aggregation="p95"),
        replace(
            base,
            metric_name="traces.span.metrics.calls",
            aggregation="increase",
            labels=(("status_code", "STATUS_CODE_ERROR"),),
        ),
    ]
    made = [replace(r, id=f"r{i}", name=f"rule {i}") for i, r in enumerate(made)]
    counting = CountingStore(data.store)
    found = values.rule_values(
        counting,  # type: ignore[arg-type]
        data.accumulator.metric_names,
        frozenset(),
        made,
        now,
    )
    assert counting.calls == {
        "entry_span_figures_by_service": 2,
        "metric_steps": 2,
        "span_red_steps": 1,
    }
    assert found.errors == {}
    assert {r.id: ("value", found.values[r.id]) for r in made} == {
        r.id: alone(data, r, now) for r in made
    }
    # The data is there: most rules have a value, and rules that differ differ.
    assert sum(v is not None for v in found.values.values()) >= len(made) - 2
    assert len(set(found.values.values())) > len(made) // 2


class CountingState(AlertState):
    """The real state file, counting its durable writes."""

    writes = 0

    def _save(self) -> None:
        self.writes += 1
        super()._save()


def test_an_evaluation_writes_the_state_once_and_a_quiet_one_not_at_all(
    data: Data, tmp_path: Path
) -> None:
    now = data.t0 + 605 * S
    base = AlertConfig("x", TENANT, "x", "request_rate", "value", "gt", 0.0, 300, "warning")
    made = [
        replace(base, id="fires1", service_id="cart"),
        replace(base, id="fires2", service_id="pay"),
        replace(base, id="fires3", metric_name="jobs.done", aggregation="increase"),
        replace(base, id="quiet", service_id="ship", threshold=1e9),
    ]
    state = CountingState(tmp_path)
    state.change(lambda s: s.configs.update({r.id: r for r in made}))
    before = state.writes
    evaluator = Evaluator(data.store, state, data.accumulator.metric_names)
    assert len(evaluator.evaluate(now_ns=now).fired) == 3
    assert state.writes == before + 1
    again = evaluator.evaluate(now_ns=now)  # same values: nothing changes
    assert (again.evaluated, again.fired, again.resolved) == (4, [], [])
    assert state.writes == before + 1
    assert set(AlertState(tmp_path).open_incident) == {"fires1", "fires2", "fires3"}


def test_a_group_too_large_to_read_together_is_read_rule_by_rule(
    data: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    # jobs.done has 12 series (3 services x 2 hosts x 2 queues): together the rules read
    # all 12, alone a rule filtering on one queue reads 6.
    monkeypatch.setattr(mq, "MAX_CELLS", 10)
    now = data.t0 + 605 * S
    base = AlertConfig("x", TENANT, "x", "jobs.done", "increase", "gt", 0.0, 300, "warning")
    made = [
        replace(base, id="sms", labels=(("queue", "sms"),)),
        replace(base, id="emails", labels=(("queue", "emails"),)),
        replace(base, id="all"),
    ]
    got = together(data, made, now)
    assert got == {r.id: alone(data, r, now) for r in made}
    assert got["sms"][0] == got["emails"][0] == "value" and got["sms"][1] is not None
    assert got["all"][0] == "error" and "series x steps" in got["all"][1]
