"""Evaluating the rules: one value per rule over its window, and the incident transitions.

Per rule, on each evaluation (its own schedule, ``alerts.evaluation_interval``, and
``POST /api/alerts/evaluate``):
- the value is computed over ``[now - windowSeconds, now]``: a built-in from the entry spans
  (SERVER, CONSUMER, or without a parent) of ``serviceId`` (or of every service):
  ``error_rate`` = errors / requests, ``p99_latency_ms``, ``request_rate`` = requests per
  second; or the metric ``metricName`` aggregated with ``aggregation`` over the whole window
  (the metrics query API's rules), filtered by ``labels`` and ``service.name = serviceId``;
- no value (no data) does not breach;
- a breach starts a wait of ``forSeconds``; a breach lasting that long opens an incident
  (``firing``) unless the rule already has one open; the first evaluation that does not
  breach resolves it. Each opening and resolution queues one delivery per webhook.
A rule that cannot be evaluated (its metric does not exist) is skipped and reported.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from otterscope.alerting.model import BUILTINS, AlertConfig, Incident, new_id, notifications
from otterscope.alerting.state import AlertState
from otterscope.errors import OtterscopeError
from otterscope.metrics import query as mq
from otterscope.store.base import Store

log = logging.getLogger("otterscope.alerts")
MetricNames = Callable[[str], Iterable[tuple[str, str, int, bool]]]


@dataclass(slots=True)
class Evaluation:
    evaluated: int = 0
    fired: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # rule id -> why it was skipped

    def to_api(self, seconds: float) -> dict[str, object]:
        return {
            "evaluated": self.evaluated,
            "fired": self.fired,
            "resolved": self.resolved,
            "errors": self.errors,
            "seconds": round(seconds, 6),
        }


class Evaluator:
    def __init__(
        self,
        store: Store,
        state: AlertState,
        metric_names: MetricNames,
        excluded: frozenset[str] = frozenset(),
        refresh: Callable[[], object] = lambda: None,
    ) -> None:
        self._refresh = refresh  # brings the metric names up to date (the accumulator's fold)
        self._store = store
        self._state = state
        self._metric_names = metric_names
        self._excluded = excluded

    def value(self, rule: AlertConfig, now_ns: int) -> float | None:
        start = now_ns - rule.window_s * 1_000_000_000
        if rule.metric_name in BUILTINS:
            figures = self._store.entry_span_figures(rule.tenant, rule.service_id, start, now_ns)
            requests = int(figures["requests"] or 0)
            if rule.metric_name == "request_rate":
                return requests / rule.window_s
            if not requests:
                return None
            if rule.metric_name == "error_rate":
                return int(figures["errors"] or 0) / requests
            return None if figures["p99_ns"] is None else float(figures["p99_ns"]) / 1e6
        labels = rule.labels + ((("service.name", rule.service_id),) if rule.service_id else ())
        query = mq.MetricQuery(
            rule.metric_name,
            rule.aggregation,
            start,
            now_ns,
            now_ns - start + 1,  # one step: the whole window
            labels,
            origin_ns=start,
        )
        series = mq.run(
            self._store, self._metric_names(rule.tenant), rule.tenant, query, self._excluded
        )
        points = [p[1] for s in series for p in s["points"]]
        return float(points[-1]) if points else None

    def evaluate(self, tenant: str | None = None, now_ns: int | None = None) -> Evaluation:
        """Every enabled rule (of one tenant, or all)."""
        now = time.time_ns() if now_ns is None else now_ns
        out = Evaluation()
        rules = self._state.read(
            lambda s: [c for c in s.configs.values() if c.enabled and tenant in (None, c.tenant)]
        )
        if any(rule.metric_name not in BUILTINS for rule in rules):
            # Only metric rules need the names folded so far; the fold is real work (every
            # span since the last one becomes RED metrics), so no rule, no fold.
            self._refresh()
        for rule in rules:
            try:
                value = self.value(rule, now)
            except OtterscopeError as exc:
                out.errors[rule.id] = exc.message
                log.warning("alert %s (%s) not evaluated: %s", rule.id, rule.name, exc.message)
                continue
            out.evaluated += 1
            self._state.change(
                functools.partial(_transition, rule=rule, value=value, now=now, out=out)
            )
        return out


def _transition(
    state: AlertState, rule: AlertConfig, value: float | None, now: int, out: Evaluation
) -> bool:
    """Apply one evaluation's outcome; return whether the state changed (a quiet rule does
    not rewrite the state file)."""
    if rule.id not in state.configs:  # deleted while it was being evaluated
        return False
    open_id = state.open_incident.get(rule.id)
    breaching = value is not None and rule.breaches(value)
    if open_id is not None:
        incident = state.incidents[open_id]
        if breaching:
            if incident.last_value == value:
                return False
            state.incidents[open_id] = replace(incident, last_value=value)
            return True
        state.incidents[open_id] = replace(
            incident,
            state="resolved",
            resolved_ns=now,
            last_value=value,
            deliveries=incident.deliveries + notifications(rule, open_id, "resolved", now),
        )
        del state.open_incident[rule.id]
        state.breaching_since.pop(rule.id, None)
        out.resolved.append(open_id)
        return True
    if not breaching or value is None:
        return state.breaching_since.pop(rule.id, None) is not None
    if rule.id not in state.breaching_since:
        state.breaching_since[rule.id] = now
        if rule.for_s > 0:
            return True  # the wait starts now, durably
    if now - state.breaching_since[rule.id] < rule.for_s * 1_000_000_000:
        return False  # still waiting out forSeconds
    incident_id = new_id()
    state.incidents[incident_id] = Incident(
        id=incident_id,
        tenant=rule.tenant,
        config_id=rule.id,
        name=rule.name,
        severity=rule.severity,
        metric_name=rule.metric_name,
        service_id=rule.service_id,
        condition=rule.condition,
        threshold=rule.threshold,
        value=value,
        last_value=value,
        started_ns=now,
        deliveries=notifications(rule, incident_id, "firing", now),
    )
    state.open_incident[rule.id] = incident_id
    out.fired.append(incident_id)
    return True
