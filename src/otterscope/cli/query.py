"""``otterscope traces``, ``trace``, ``logs`` and ``metrics``: reading a running server."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from otterscope.cli.client import ApiClient, CliError, Target, api_time, fetch_pages
from otterscope.cli.output import fmt_ms, fmt_time, note, one_line, print_json, table

PAGE_MAX = 1000
METRICS_WINDOW_NS = 3600 * 10**9


def attr_arg(value: str) -> tuple[str, str]:
    """``argparse`` type for ``--attr key=value``."""
    key, sep, val = value.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{value!r} is not key=value")
    return key.strip(), val


def _window(args: argparse.Namespace) -> list[tuple[str, str]]:
    params = []
    if args.start is not None:
        params.append(("start", api_time(args.start)))
    if args.end is not None:
        params.append(("end", api_time(args.end)))
    return params


def _paged(
    client: ApiClient, path: str, params: list[tuple[str, str]], key: str, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to ``limit`` items, following ``nextCursor`` in pages of at most 1000."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while len(items) < limit:
        page_params = [*params, ("limit", str(min(PAGE_MAX, limit - len(items))))]
        if cursor:
            page_params.append(("cursor", cursor))
        page = client.get(path, page_params)
        got = page.get(key) or []
        items += got
        cursor = page.get("nextCursor")
        if not cursor or not got:
            break
    return items, cursor


# -- traces ------------------------------------------------------------------------------------


def _search_params(args: argparse.Namespace, flags: dict[str, str]) -> list[tuple[str, str]]:
    """Query parameters from the flags given (flag attribute -> API name), attr.*, window."""
    params = [(name, getattr(args, flag)) for flag, name in flags.items() if getattr(args, flag)]
    params += [(f"attr.{k}", v) for k, v in args.attr or ()]
    return params + _window(args)


_TRACE_FLAGS = {
    "service": "service",
    "operation": "operation",
    "status": "status",
    "min_duration": "minDuration",
    "max_duration": "maxDuration",
    "min_trace_duration": "minTraceDuration",
    "max_trace_duration": "maxTraceDuration",
}
_LOG_FLAGS = {
    "service": "service",
    "severity": "severity",
    "q": "q",
    "trace_id": "traceId",
    "span_id": "spanId",
}


def cmd_traces(args: argparse.Namespace) -> int:
    params = _search_params(args, _TRACE_FLAGS)
    with ApiClient(Target.from_args(args)) as client:
        traces, cursor = _paged(client, "/api/traces", params, "traces", args.limit)
    if args.json:
        print_json({"traces": traces, "nextCursor": cursor})
        return 0
    if not traces:
        note("no traces match")
        return 0
    rows = []
    for t in traces:
        root = f"{t.get('rootService') or '?'}: {t.get('rootName') or '?'}"
        if t.get("rootSpanMissing"):
            root += " (root missing)"
        rows.append(
            [
                str(t["traceId"]),
                fmt_time(t["startTimeUnixNano"]),
                fmt_ms(float(t["durationMs"])),
                str(t["spanCount"]),
                str(t["errorCount"]),
                one_line(root, 60),
                one_line(", ".join(t.get("services") or []), 60),
            ]
        )
    table(
        ["TRACE ID", "START", "DURATION MS", "SPANS", "ERRORS", "ROOT", "SERVICES"],
        rows,
        right=(2, 3, 4),
    )
    if cursor:
        note(f"{len(traces)} traces shown; more match (raise --limit or narrow the search)")
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    from otterscope.cli.output import print_trace

    params = [("format", "otlp")] if args.otlp else None
    with ApiClient(Target.from_args(args)) as client:
        trace = client.get(f"/api/traces/{quote(args.trace_id.strip(), safe='')}", params)
    if args.otlp:
        # One line: an ExportTraceServiceRequest, ready for ``otterscope import``.
        print_json(trace, indent=None)
    elif args.json:
        print_json(trace)
    else:
        print_trace(trace)
    return 0


# -- logs --------------------------------------------------------------------------------------


MAX_SERVICE_WIDTH = 24  # longer service names are cut, with an ellipsis
_SEVERITY_NAMES = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")


def severity_name(record: dict[str, Any]) -> str:
    text = str(record.get("severityText") or "")
    if text:
        return text.upper()
    number = int(record.get("severityNumber") or 0)
    if 1 <= number <= 24:
        return _SEVERITY_NAMES[(number - 1) // 4]
    return "-"


def log_line(record: dict[str, Any], service_width: int = 0) -> str:
    """One record; the service padded (or cut) to ``service_width`` so bodies line up."""
    time_ns = int(record.get("timeUnixNano") or 0) or int(record.get("observedTimeUnixNano") or 0)
    service = str(record.get("service") or "-")
    if service_width:
        service = one_line(service, service_width).ljust(service_width)
    return (
        f"{fmt_time(time_ns)}  {severity_name(record):<5}  {service}  "
        f"{one_line(record.get('body', ''))}"
    )


def cmd_logs(args: argparse.Namespace) -> int:
    params = _search_params(args, _LOG_FLAGS)
    with ApiClient(Target.from_args(args)) as client:
        logs, cursor = _paged(client, "/api/logs", params, "logs", args.limit)
    if args.json:
        print_json({"logs": logs, "nextCursor": cursor})
        return 0
    if not logs:
        note("no log records match")
        return 0
    # The newest records, printed oldest first (as tail does), in aligned columns.
    width = min(MAX_SERVICE_WIDTH, max(len(str(r.get("service") or "-")) for r in logs))
    for record in reversed(logs):
        sys.stdout.write(log_line(record, width) + "\n")
    if cursor:
        note(f"the newest {len(logs)} records shown; older ones match (raise --limit)")
    return 0


# -- metrics -----------------------------------------------------------------------------------


def anyvalue(value: dict[str, Any]) -> Any:
    """An OTLP/JSON ``AnyValue`` as a plain JSON value."""
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return value["doubleValue"]
    if "boolValue" in value:
        return value["boolValue"]
    if "bytesValue" in value:
        return value["bytesValue"]
    if "arrayValue" in value:
        return [anyvalue(v) for v in value["arrayValue"].get("values", [])]
    if "kvlistValue" in value:
        return attributes(value["kvlistValue"].get("values", []))
    return None


def attributes(kvs: list[dict[str, Any]]) -> dict[str, Any]:
    return {kv["key"]: anyvalue(kv.get("value") or {}) for kv in kvs}


_KINDS = {
    "gauge": "gauge",
    "sum": "sum",
    "histogram": "histogram",
    "exponentialHistogram": "exponential_histogram",
    "summary": "summary",
}
_TEMPORALITY = {1: "delta", 2: "cumulative"}


def point_value(kind: str, point: dict[str, Any]) -> Any:
    if kind in ("gauge", "sum"):
        if "asInt" in point:
            return int(point["asInt"])
        raw = point.get("asDouble", 0.0)
        return float(raw) if isinstance(raw, str) else raw
    out: dict[str, Any] = {"count": int(point.get("count") or 0)}
    for key in ("sum", "min", "max"):
        if key in point:
            out[key] = point[key]
    if kind == "summary":
        out["quantiles"] = {
            str(q.get("quantile", 0)): q.get("value") for q in point.get("quantileValues", [])
        }
    return out


def fmt_value(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(
            f"{k}={json.dumps(v) if isinstance(v, dict) else v}" for k, v in value.items()
        )
    return str(value)


@dataclass
class Series:
    service: str
    attributes: dict[str, Any]
    points: list[tuple[int, Any]] = field(default_factory=list)


@dataclass
class MetricSummary:
    name: str
    kind: str
    unit: str
    description: str
    temporality: str
    monotonic: bool | None
    series: dict[str, Series] = field(default_factory=dict)

    @property
    def type_label(self) -> str:
        parts = [self.kind, self.temporality, "monotonic" if self.monotonic else ""]
        return " ".join(p for p in parts if p)


def summarize(pages: Iterator[dict[str, Any]]) -> tuple[dict[tuple[str, str], MetricSummary], int]:
    """Metrics by (name, type), each with its series (service + point attributes)."""
    metrics: dict[tuple[str, str], MetricSummary] = {}
    total = 0
    for page in pages:
        for rm in page.get("resourceMetrics") or []:
            resource = attributes((rm.get("resource") or {}).get("attributes") or [])
            service = str(resource.get("service.name") or "")
            for sm in rm.get("scopeMetrics") or []:
                for metric in sm.get("metrics") or []:
                    kind_key = next((k for k in _KINDS if k in metric), None)
                    if kind_key is None:
                        continue
                    data = metric[kind_key]
                    kind = _KINDS[kind_key]
                    entry = metrics.setdefault(
                        (metric.get("name", ""), kind),
                        MetricSummary(
                            metric.get("name", ""),
                            kind,
                            metric.get("unit", ""),
                            metric.get("description", ""),
                            _TEMPORALITY.get(int(data.get("aggregationTemporality") or 0), ""),
                            data.get("isMonotonic") if kind == "sum" else None,
                        ),
                    )
                    for point in data.get("dataPoints") or []:
                        attrs = attributes(point.get("attributes") or [])
                        key = json.dumps([service, attrs], sort_keys=True)
                        series = entry.series.setdefault(key, Series(service, attrs))
                        series.points.append(
                            (int(point.get("timeUnixNano") or 0), point_value(kind, point))
                        )
                        total += 1
    for entry in metrics.values():
        for series in entry.series.values():
            series.points.sort(key=lambda p: p[0])
    return metrics, total


def _labels(series: Series) -> str:
    return ", ".join(f"{k}={one_line(v)}" for k, v in sorted(series.attributes.items()))


def _metric_pages(
    client: ApiClient, start: int, end: int, max_points: int, truncated: list[bool]
) -> Iterator[dict[str, Any]]:
    read = 0
    for page, cursor in fetch_pages(client, "metrics", start, end, PAGE_MAX, None):
        yield page
        read += PAGE_MAX  # every page but the last is full
        if cursor and read >= max_points:
            truncated.append(True)
            return


def cmd_metrics(args: argparse.Namespace) -> int:
    if args.agg is not None or args.group_by or args.label or args.step:
        return _metric_query(args)
    end = args.end if args.end is not None else time.time_ns()
    start = args.start if args.start is not None else end - METRICS_WINDOW_NS
    if start > end:
        raise CliError("--start must not be after --end", status=2)
    truncated: list[bool] = []
    with ApiClient(Target.from_args(args)) as client:
        metrics, total = summarize(_metric_pages(client, start, end, args.max_points, truncated))
    if truncated:
        note(
            f"otterscope: warning: read the oldest {total:,} points of the window only "
            "(--max-points); narrow it with --start/--end for the latest values"
        )
    chosen = sorted(metrics.values(), key=lambda m: (m.name, m.kind))
    if args.name is not None:
        chosen = [m for m in chosen if m.name == args.name]
        if not chosen:
            seen = ", ".join(sorted({m.name for m in metrics.values()})[:20]) or "none"
            raise CliError(
                f"no points of metric {args.name!r} between {fmt_time(start)} and "
                f"{fmt_time(end)} (metrics there: {seen})"
            )
    if args.json:
        print_json({"metrics": [_metric_json(m, args.name is not None) for m in chosen]})
        return 0
    if not chosen:
        note(f"no metric points between {fmt_time(start)} and {fmt_time(end)}")
        return 0
    if args.name is None:
        _print_summary(chosen)
    else:
        _print_points(chosen, args.points)
    return 0


def _metric_json(m: MetricSummary, with_points: bool) -> dict[str, Any]:
    series = []
    for s in sorted(m.series.values(), key=lambda s: (s.service, _labels(s))):
        item: dict[str, Any] = {"service": s.service, "attributes": s.attributes}
        if with_points:
            item["points"] = [{"timeUnixNano": str(t), "value": v} for t, v in s.points]
        else:
            t, v = s.points[-1]
            item["points"] = len(s.points)
            item["latest"] = {"timeUnixNano": str(t), "value": v}
        series.append(item)
    return {
        "name": m.name,
        "type": m.kind,
        "unit": m.unit,
        "description": m.description,
        "temporality": m.temporality or None,
        "monotonic": m.monotonic,
        "series": series,
    }


def _print_summary(chosen: list[MetricSummary]) -> None:
    rows = []
    for m in chosen:
        for s in sorted(m.series.values(), key=lambda s: (s.service, _labels(s))):
            t, v = s.points[-1]
            rows.append(
                [
                    m.name,
                    m.type_label,
                    m.unit,
                    s.service or "-",
                    one_line(_labels(s), 60) or "-",
                    str(len(s.points)),
                    one_line(fmt_value(v), 60),
                    fmt_time(t),
                ]
            )
    table(
        ["NAME", "TYPE", "UNIT", "SERVICE", "ATTRIBUTES", "POINTS", "LATEST", "AT"],
        rows,
        right=(5,),
    )


def _print_points(chosen: list[MetricSummary], count: int) -> None:
    for m in chosen:
        unit = f" ({m.unit})" if m.unit else ""
        sys.stdout.write(
            f"{m.name}{unit}  {m.type_label}  {one_line(m.description, 80)}\n".rstrip() + "\n"
        )
        for s in sorted(m.series.values(), key=lambda s: (s.service, _labels(s))):
            labels = ", ".join(
                x for x in (f"service={s.service}" if s.service else "", _labels(s)) if x
            )
            shown = s.points[-count:] if count > 0 else s.points
            n = len(s.points)
            sys.stdout.write(
                f"  {{{labels}}}  {n} point{'s' if n != 1 else ''}, the last {len(shown)}:\n"
            )
            for t, v in shown:
                sys.stdout.write(f"    {fmt_time(t)}  {fmt_value(v)}\n")


def _metric_query(args: argparse.Namespace) -> int:
    """``--agg`` and friends: one metric's series per step, from GET /api/metrics/query."""
    if args.name is None:
        raise CliError("--agg, --group-by, --label and --step need a metric NAME", status=2)
    params = [("name", args.name), ("agg", args.agg or "sum"), *_window(args)]
    params += [(f"label.{k}", v) for k, v in args.label or []]
    if args.group_by:
        params.append(("groupBy", args.group_by))
    if args.step:
        params.append(("step", args.step))
    with ApiClient(Target.from_args(args)) as client:
        answer = client.get("/api/metrics/query", params)
    if args.json:
        print_json(answer)
        return 0
    series = answer.get("series") or []
    if not series:
        note(f"no points of {args.name!r} in the window")
        return 0
    for s in series:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(s["labels"].items()))
        sys.stdout.write(f"{args.name} {args.agg or 'sum'} {{{labels}}}\n")
        shown = s["points"][-args.points :] if args.points > 0 else s["points"]
        for unix_ms, value in shown:
            sys.stdout.write(f"  {fmt_time(int(unix_ms) * 1_000_000)}  {value:.6g}\n")
    return 0
