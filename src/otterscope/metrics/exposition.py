"""Accumulated OTLP metrics as Prometheus text exposition (format 0.0.4).

Naming follows the OpenTelemetry-to-Prometheus rules: characters outside ``[a-zA-Z0-9_:]``
become ``_`` (runs collapsed); the unit is appended as a word (``s`` -> ``_seconds``, ``ms``
-> ``_milliseconds``, ``By`` -> ``_bytes``, ``1`` -> ``_ratio`` for gauges, ``{...}``
annotations dropped, ``a/b`` -> ``_a_per_b``) unless the name already ends with it;
monotonic sums get ``_total`` unless they already end with it (never ``_total_total``).
Point attributes become labels (keys sanitised the same way); ``service.name`` and
``service.namespace`` become the ``job`` label and ``service.instance.id`` (kept by
cumulative series only) the ``instance`` label; the rest of the resource goes to one
``target_info`` series per job and instance, and the attributes listed in
``metrics.promote_resource_attributes`` are also labels of every series of the resource. Histograms are ``_bucket{le}``/``_sum``/``_count``,
summaries ``{quantile}``/``_sum``/``_count``; exponential histograms become classic
histograms with one ``le`` per exponential bucket. Series not updated for ``stale_after_ns`` are
left out (their state is kept: they come back with their full value when updated again).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

import orjson

from otterscope.metrics.accumulator import EXP_HISTOGRAM, GAUGE, HISTOGRAM, SUM, SUMMARY, Series
from otterscope.metrics.exemplars import Exemplar, in_bucket
from otterscope.metrics.exponential import classic_buckets

Labels = tuple[tuple[str, str], ...]
_INVALID = re.compile(r"[^a-zA-Z0-9_:]+")
_LABEL_INVALID = re.compile(r"[^a-zA-Z0-9_]+")
_UNITS = {
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "m": "meters",
    "V": "volts",
    "A": "amperes",
    "J": "joules",
    "W": "watts",
    "g": "grams",
    "Cel": "celsius",
    "Hz": "hertz",
    "%": "percent",
}
_PER = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month"}


def _sanitize(name: str, pattern: re.Pattern[str] = _INVALID) -> str:
    out = pattern.sub("_", name).strip("_") or "_"
    out = re.sub(r"__+", "_", out)
    return "_" + out if out[0].isdigit() else out


def unit_word(unit: str, kind: int) -> str:
    """The Prometheus unit suffix of an OTel unit ('' when none)."""
    unit = re.sub(r"\{[^}]*\}", "", unit).strip()
    if not unit:
        return ""
    if unit == "1":
        return "ratio" if kind == GAUGE else ""
    if "/" in unit:
        top, _, bottom = unit.partition("/")
        first = _UNITS.get(top, _sanitize(top)) if top else ""
        second = _PER.get(bottom, _UNITS.get(bottom, _sanitize(bottom)))
        return f"{first}_per_{second}" if first else f"per_{second}"
    return _UNITS.get(unit, _sanitize(unit))


@functools.lru_cache(maxsize=1 << 14)
def prometheus_name(name: str, unit: str, kind: int, monotonic: bool) -> str:
    out = _sanitize(name)
    word = unit_word(unit, kind)
    counter = kind == SUM and monotonic
    base = out[: -len("_total")] if counter and out.endswith("_total") else out
    if word and not base.endswith("_" + word) and base != word:
        base = f"{base}_{word}"
    return f"{base}_total" if counter else base


def label_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _num(float(value)) if isinstance(value, float) else str(value)
    return orjson.dumps(value).decode()


def _escape(value: str) -> str:
    if "\\" not in value and "\n" not in value and '"' not in value:
        return value
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _labels(items: Iterable[tuple[str, str]]) -> str:
    parts = [f'{k}="{_escape(v)}"' for k, v in items]
    return "{" + ",".join(parts) + "}" if parts else ""


def _job(resource: dict[str, Any]) -> str:
    name = label_value(resource.get("service.name", "unknown_service"))
    namespace = resource.get("service.namespace")
    return f"{label_value(namespace)}/{name}" if namespace else name


def _target(resource: dict[str, Any]) -> list[tuple[str, str]]:
    """``job`` and, for series that keep their instance (cumulative ones), ``instance``."""
    out = [("job", _job(resource))]
    if "service.instance.id" in resource:
        out.append(("instance", label_value(resource["service.instance.id"])))
    return out


def prometheus_labels(resource: dict[str, Any], attributes: dict[str, Any]) -> dict[str, str]:
    """The labels a series of this resource and these point attributes is exposed with."""
    labels = dict(_target(resource))
    for key, value in attributes.items():
        labels.setdefault(_sanitize(key, _LABEL_INVALID), label_value(value))
    return labels


# A series' labels depend only on its resource and attributes, which never change: a scrape
# of many series would otherwise parse and sanitise them all again each time.
@functools.lru_cache(maxsize=1 << 18)
def _resource_labels(resource: str) -> tuple[Labels, Labels]:
    """(``job``/``instance``, the other resource attributes as labels) of a resource; none
    for series of no resource (``""``: the service graph's, which belong to an edge)."""
    if not resource:
        return (), ()
    doc = orjson.loads(resource)
    others = sorted(
        (_sanitize(k, _LABEL_INVALID), label_value(v))
        for k, v in doc.items()
        if k not in _TARGET_KEYS
    )
    return tuple(_target(doc)), tuple(others)


@functools.lru_cache(maxsize=1 << 18)
def _label_set(resource: str, attributes: str, promote: tuple[str, ...] = ()) -> Labels:
    labels = dict(_resource_labels(resource)[0])
    for key, value in orjson.loads(attributes).items():
        labels.setdefault(_sanitize(key, _LABEL_INVALID), label_value(value))
    if promote and resource:
        doc = orjson.loads(resource)
        for key in promote:
            if key in doc:  # a point attribute of the same name wins
                labels.setdefault(_sanitize(key, _LABEL_INVALID), label_value(doc[key]))
    return tuple(sorted(labels.items()))


def label_names(s: Series, promote: tuple[str, ...] = ()) -> list[str]:
    """The label names a series is exposed with."""
    return [name for name, _ in _label_set(s.resource, s.attributes, promote)]


_TYPES = {GAUGE: "gauge", HISTOGRAM: "histogram", EXP_HISTOGRAM: "histogram", SUMMARY: "summary"}
_TARGET_KEYS = ("service.name", "service.namespace", "service.instance.id")


def sanitize_label(key: str) -> str:
    """An attribute key as a Prometheus label name."""
    return _sanitize(key, _LABEL_INVALID)


def exemplar_labels(ex: Exemplar) -> list[tuple[str, str]]:
    """``trace_id``, ``span_id``, then the filtered attributes while OpenMetrics's limit of
    128 characters for an exemplar's label set allows."""
    out = [("trace_id", ex.trace_id)]
    if ex.span_id:
        out.append(("span_id", ex.span_id))
    used = sum(len(k) + len(v) for k, v in out)
    for key, value in sorted(ex.attributes.items()):
        name, text = sanitize_label(key), label_value(value)
        if name in ("trace_id", "span_id") or used + len(name) + len(text) > 128:
            continue
        out.append((name, text))
        used += len(name) + len(text)
    return out


def _exemplar(ex: Exemplar | None) -> str:
    if ex is None:
        return ""
    return f" # {_labels(exemplar_labels(ex))} {_num(ex.value)} {_seconds(ex.time_ns)}"


def _seconds(ns: int) -> str:
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}".rstrip("0").rstrip(".")


def render(
    series: Iterable[Series],
    now_ns: int,
    stale_after_ns: int,
    openmetrics: bool = False,
    promote: tuple[str, ...] = (),
) -> Iterator[str]:
    """Exposition lines for the fresh series, one family (HELP, TYPE, samples) per name.

    With ``openmetrics``, the OpenMetrics 1.0 text format: a counter family is named without
    its ``_total`` (its samples keep it), counters, histograms and summaries get a
    ``_created`` sample (the series' start), counter samples and histogram buckets carry
    their newest exemplar, and ``target_info`` is the sample of an ``info`` family named ``target``. The caller ends the
    exposition with ``# EOF``.
    """
    families: dict[str, tuple[str, str, list[Series]]] = {}
    targets: dict[Labels, dict[str, str]] = {}
    for s in series:
        if stale_after_ns and now_ns - s.time_ns > stale_after_ns:
            continue
        name = prometheus_name(s.name, s.unit, s.kind, s.monotonic)
        kind = "counter" if s.kind == SUM and s.monotonic else _TYPES.get(s.kind, "gauge")
        family = families.setdefault(name, (kind, s.description, []))
        if family[0] == kind:  # the first type wins a name; others would break the format
            family[2].append(s)
        target, others = _resource_labels(s.resource)
        if not target:
            continue
        # Resources of one job and instance that differ (say one invocation's carries an
        # attribute another's lacks) share one target_info: the union of their attributes.
        union = targets.setdefault(target, {})
        for key, value in others:
            union.setdefault(key, value)
    for name, (kind, help_text, members) in sorted(families.items()):
        base = name[: -len("_total")] if openmetrics and kind == "counter" else name
        yield f"# HELP {base} {_escape(help_text) if help_text else base}"
        yield f"# TYPE {base} {kind}"
        for label_set, merged in sorted(_merged(members, promote).items()):
            body = ",".join(f'{k}="{_escape(v)}"' for k, v in label_set)
            yield from _samples(name, merged, body, openmetrics)
    if targets:
        # An OpenMetrics info family is named without the _info its samples carry.
        info = ("target", "info") if openmetrics else ("target_info", "gauge")
        yield f"# HELP {info[0]} Target metadata"
        yield f"# TYPE {info[0]} {info[1]}"
        for target, labels in sorted(targets.items()):
            yield f"target_info{_labels(sorted([*target, *labels.items()]))} 1"


def _merged(members: list[Series], promote: tuple[str, ...]) -> dict[Labels, Series]:
    """One series per label set. Resources that differ only in attributes that are not
    labels (say ``host.name`` of two instances of one job) would otherwise give the same
    series twice, which Prometheus refuses: sums and histograms add up, gauges and
    summaries keep the latest."""
    out: dict[tuple[tuple[str, str], ...], Series] = {}
    for s in sorted(members, key=lambda m: (m.resource, m.attributes)):
        labels = _label_set(s.resource, s.attributes, promote)
        seen = out.get(labels)
        if seen is None:
            out[labels] = s
        elif s.kind == SUM:
            out[labels] = replace(seen, value=seen.value + s.value)
        elif s.kind == HISTOGRAM and s.bounds == seen.bounds:
            out[labels] = replace(
                seen,
                buckets=[a + b for a, b in zip(seen.buckets, s.buckets, strict=True)],
                count=seen.count + s.count,
                sum=seen.sum + s.sum,
            )
        elif s.time_ns > seen.time_ns and s.kind in (GAUGE, SUMMARY):
            out[labels] = s
    return out


def _braced(body: str, extra: str = "") -> str:
    inner = f"{body},{extra}" if body and extra else body or extra
    return "{" + inner + "}" if inner else ""


def _samples(name: str, s: Series, body: str, openmetrics: bool) -> Iterator[str]:
    """The sample lines of one series; ``body`` is its rendered labels (without braces)."""
    labels = _braced(body)
    created = f"{_seconds(s.start_ns)}" if openmetrics and s.start_ns > 0 else ""
    if s.kind in (GAUGE, SUM):
        counter = s.kind == SUM and s.monotonic
        newest = s.exemplars[-1] if openmetrics and counter and s.exemplars else None
        yield f"{name}{labels} {_num(s.value)}{_exemplar(newest)}"
        if counter and created:
            yield f"{name[: -len('_total')]}_created{labels} {created}"
        return
    if s.kind in (HISTOGRAM, EXP_HISTOGRAM):
        pairs = (
            zip((*s.bounds, math.inf), s.buckets, strict=False)
            if s.kind == HISTOGRAM
            else classic_buckets(s)
        )
        running, lower = 0, -math.inf
        for bound, count in pairs:
            running += count
            ex = in_bucket(s.exemplars, lower, bound) if openmetrics and s.exemplars else None
            lower = bound
            le = _braced(body, f'le="{_num(bound)}"')
            yield f"{name}_bucket{le} {running}{_exemplar(ex)}"
    elif s.kind == SUMMARY:
        for quantile, value in s.quantiles:
            q = _braced(body, 'quantile="' + _num(quantile) + '"')
            yield f"{name}{q} {_num(value)}"
    yield f"{name}_sum{labels} {_num(s.sum)}"
    yield f"{name}_count{labels} {s.count}"
    if created:
        yield f"{name}_created{labels} {created}"
