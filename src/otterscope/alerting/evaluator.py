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

The values come from ``values.rule_values``, which reads each piece of data once for all
the rules that need it; the transitions of one evaluation are written in one durable
write (none when no rule's state changed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from otterscope.alerting import values
from otterscope.alerting.model import BUILTINS, AlertConfig, Incident, new_id, notifications
from otterscope.alerting.state import AlertState
from otterscope.store.base import Store

log = logging.getLogger("otterscope.alerts")


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
        metric_names: values.MetricNames,
        excluded: frozenset[str] = frozenset(),
        refresh: Callable[[], object] = lambda: None,
    ) -> None:
        self._refresh = refresh  # brings the metric names up to date (the accumulator's fold)
        self._store = store
        self._state = state
        self._metric_names = metric_names
        self._excluded = excluded

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
        found = values.rule_values(self._store, self._metric_names, self._excluded, rules, now)
        for rule in rules:
            if rule.id in found.errors:
                out.errors[rule.id] = found.errors[rule.id]
                log.warning(
                    "alert %s (%s) not evaluated: %s", rule.id, rule.name, found.errors[rule.id]
                )
        evaluated = [rule for rule in rules if rule.id not in found.errors]
        out.evaluated = len(evaluated)

        def apply(state: AlertState) -> bool:
            changed = False
            for rule in evaluated:
                changed |= _transition(state, rule, found.values[rule.id], now, out)
            return changed

        # One durable write for the whole evaluation, and none when no rule changed.
        self._state.change_if(apply)
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
