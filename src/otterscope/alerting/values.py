"""Each rule's value over its window, with one read of the store per group of rules that
read the same data.

A rule's value is defined by what it gives evaluated on its own (``rule_value``): a
built-in from the store's figures of the entry spans of its service (or of every service),
or the metrics query API's answer for its metric, labels and aggregation over the whole
window. ``rule_values`` gives the same numbers for many rules at once, reading each piece of
data once:

- built-ins of one tenant and window: one pass over the window's spans, grouped by service
  (plus all services together when a rule has no service);
- metric rules of one tenant, metric (its resolved OTLP names) and window: one read of the
  metric's steps, pre-filtered only on the label texts every rule of the group filters on,
  decoded once; each rule then filters, groups and aggregates those rows. Both RED metrics
  come from one read of the spans per window.

When a group's shared read is too large for the query limits but one rule's own read
might not be, its rules are evaluated on their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from otterscope.alerting.model import BUILTINS, AlertConfig
from otterscope.errors import OtterscopeError
from otterscope.metrics import query as mq
from otterscope.store.base import Row, Store

MetricNames = Callable[[str], Iterable[tuple[str, str, int, bool]]]
_NO_SPANS: Row = {"requests": 0, "errors": 0, "p99_ns": None}


@dataclass(slots=True)
class Values:
    """Per rule id: its value (None: no data), or why it could not be evaluated."""

    values: dict[str, float | None] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def builtin_value(rule: AlertConfig, figures: Row) -> float | None:
    """A built-in's value from its service's entry span figures."""
    requests = int(figures["requests"] or 0)
    if rule.metric_name == "request_rate":
        return requests / rule.window_s
    if not requests:
        return None
    if rule.metric_name == "error_rate":
        return int(figures["errors"] or 0) / requests
    return None if figures["p99_ns"] is None else float(figures["p99_ns"]) / 1e6


def metric_query(rule: AlertConfig, now_ns: int) -> mq.MetricQuery:
    """The metrics query a metric rule stands for: one step, the whole window."""
    start = now_ns - rule.window_s * 1_000_000_000
    labels = rule.labels + ((("service.name", rule.service_id),) if rule.service_id else ())
    return mq.MetricQuery(
        rule.metric_name,
        rule.aggregation,
        start,
        now_ns,
        now_ns - start + 1,
        labels,
        origin_ns=start,
    )


def last_value(series: list[dict[str, Any]]) -> float | None:
    points = [p[1] for s in series for p in s["points"]]
    return float(points[-1]) if points else None


def rule_value(
    store: Store, names: MetricNames, excluded: frozenset[str], rule: AlertConfig, now_ns: int
) -> float | None:
    """One rule's value read on its own: what ``rule_values`` must give for it."""
    start = now_ns - rule.window_s * 1_000_000_000
    if rule.metric_name in BUILTINS:
        figures = store.entry_span_figures(rule.tenant, rule.service_id, start, now_ns)
        return builtin_value(rule, figures)
    query = metric_query(rule, now_ns)
    return last_value(mq.run(store, names(rule.tenant), rule.tenant, query, excluded))


def rule_values(
    store: Store,
    names: MetricNames,
    excluded: frozenset[str],
    rules: Iterable[AlertConfig],
    now_ns: int,
) -> Values:
    out = Values()
    builtins: dict[tuple[str, int], list[AlertConfig]] = {}
    metrics: dict[tuple[object, ...], list[tuple[AlertConfig, mq.MetricQuery, tuple[str, ...]]]]
    metrics = {}
    known: dict[str, list[tuple[str, str, int, bool]]] = {}
    for rule in rules:
        if rule.metric_name in BUILTINS:
            builtins.setdefault((rule.tenant, rule.window_s), []).append(rule)
            continue
        query = metric_query(rule, now_ns)
        if rule.tenant not in known:
            known[rule.tenant] = list(names(rule.tenant))
        try:
            resolved = mq.resolve(rule.metric_name, known[rule.tenant])
        except OtterscopeError as exc:
            out.errors[rule.id] = exc.message
            continue
        # Both RED metrics are one read of the spans; other names read their own points.
        what = ("red",) if mq.red_name(resolved) is not None else resolved
        key = (rule.tenant, what, query.read_window, query.step_ns, query.origin_ns)
        metrics.setdefault(key, []).append((rule, query, resolved))
    for (tenant, window_s), group in builtins.items():
        _builtin_group(store, tenant, window_s, group, now_ns, out)
    for members in metrics.values():
        _metric_group(store, names, excluded, members, now_ns, out)
    return out


def _builtin_group(
    store: Store,
    tenant: str,
    window_s: int,
    group: list[AlertConfig],
    now_ns: int,
    out: Values,
) -> None:
    services = {rule.service_id for rule in group}
    start = now_ns - window_s * 1_000_000_000
    wanted = None if None in services else sorted(s for s in services if s is not None)
    try:
        rows = store.entry_span_figures_by_service(tenant, wanted, start, now_ns)
    except OtterscopeError as exc:
        out.errors.update(dict.fromkeys((rule.id for rule in group), exc.message))
        return
    figures = {None if row["whole"] else row["service"]: row for row in rows}
    for rule in group:
        out.values[rule.id] = builtin_value(rule, figures.get(rule.service_id, _NO_SPANS))


def _metric_group(
    store: Store,
    names: MetricNames,
    excluded: frozenset[str],
    members: list[tuple[AlertConfig, mq.MetricQuery, tuple[str, ...]]],
    now_ns: int,
    out: Values,
) -> None:
    rule, query, resolved = members[0]
    # Only the label texts every rule filters on may narrow the shared read.
    common = set(mq.needles(query.labels))
    for _, q, _ in members[1:]:
        common &= set(mq.needles(q.labels))
    try:
        raw = mq.read(store, rule.tenant, resolved, query, sorted(common))
        if len(members) == 1:
            mq.check_cells(raw)
    except OtterscopeError as exc:
        out.errors.update(dict.fromkeys((r.id for r, _, _ in members), exc.message))
        return
    if len(raw) > mq.MAX_CELLS:  # too much together; each rule's own read may fit
        for r, _, _ in members:
            try:
                out.values[r.id] = rule_value(store, names, excluded, r, now_ns)
            except OtterscopeError as exc:
                out.errors[r.id] = exc.message
        return
    prepared: dict[tuple[str, ...], list[mq.Prepared]] = {}
    for r, q, names_ in members:
        try:
            if names_ not in prepared:
                prepared[names_] = mq.prepare(mq.as_rows(raw, names_), excluded)
            out.values[r.id] = last_value(mq.evaluate_prepared(prepared[names_], q))
        except OtterscopeError as exc:
            out.errors[r.id] = exc.message
