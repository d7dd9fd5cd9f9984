"""The client commands of ``otterscope`` (SPEC §6), run for real against real servers.

Each test runs ``python -m otterscope <command>`` as a subprocess against servers started
from ``tests/conftest.py``: data goes in as raw OTLP/JSON, comes out through the command,
and export/import and replay are checked item for item against the source server's own
fetch API.
"""

from __future__ import annotations

import base64
import gzip
import http.server
import json
import os
import queue
import re
import secrets
import signal as signals
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, free_port, start_server

TOKEN = "cli-" + secrets.token_hex(12)
NOW = time.time_ns() - 5 * 60 * 10**9  # inside every default window
TRACE = "5b8efff798038103d269b633813fc60c"
ROOT, DB, PRICING, NESTED, ORPHAN = (f"eee19b7ec3c1b1{n:02x}" for n in range(5))
BULK = 1005  # traces of service "bulk": more than one page of trace search
MakeServer = Callable[..., RunningServer]


# -- data ----------------------------------------------------------------------------------------


def kv(key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "value": value}


def s(value: str) -> dict[str, Any]:
    return {"stringValue": value}


def resource(service: str) -> dict[str, Any]:
    return {
        "attributes": [kv("service.name", s(service)), kv("host.name", s("box-1"))],
        "droppedAttributesCount": 1,
    }


ATTRS = [
    kv("str", s("v")),
    kv("int", {"intValue": "9007199254740993"}),
    kv("dbl", {"doubleValue": 1.25}),
    kv("bool", {"boolValue": True}),
    kv("bytes", {"bytesValue": base64.b64encode(b"\x00\x01\xff").decode()}),
    kv("arr", {"arrayValue": {"values": [s("a"), {"intValue": "2"}]}}),
    kv("map", {"kvlistValue": {"values": [kv("k", s("x")), kv("n", {"doubleValue": 0.5})]}}),
]


def span(span_id: str, name: str, start_ms: float, end_ms: float, **extra: Any) -> dict[str, Any]:
    return {
        "traceId": TRACE,
        "spanId": span_id,
        "name": name,
        "kind": 1,
        "startTimeUnixNano": str(NOW + int(start_ms * 1e6)),
        "endTimeUnixNano": str(NOW + int(end_ms * 1e6)),
        **extra,
    }


def traces_request() -> dict[str, Any]:
    checkout = [
        span(
            ROOT,
            "GET /cart",
            0,
            42,
            kind=2,
            traceState="vendor=1",
            flags=1,
            attributes=ATTRS,
            status={"code": 2, "message": "upstream timeout"},
            events=[
                {"timeUnixNano": str(NOW + 1_000_000), "name": "retry", "attributes": ATTRS[:2]}
            ],
            links=[
                {
                    "traceId": "0af7651916cd43dd8448eb211c80319c",
                    "spanId": "b7ad6b7169203331",
                    "traceState": "x=y",
                    "attributes": [kv("link", s("yes"))],
                }
            ],
        ),
        span(DB, "SELECT cart", 2, 12, parentSpanId=ROOT, kind=3),
        span(ORPHAN, "lost child", 20, 25, parentSpanId="00000000000000aa"),
    ]
    pricing = [
        span(PRICING, "call pricing", 14, 40, parentSpanId=ROOT, kind=2, status={"code": 1}),
        span(NESTED, "price rules", 15, 30, parentSpanId=PRICING),
    ]
    bulk = [
        {
            "traceId": f"{i + 1:032x}",
            "spanId": f"{i + 1:016x}",
            "name": f"bulk {i}",
            "startTimeUnixNano": str(NOW - i * 1000),
            "endTimeUnixNano": str(NOW - i * 1000 + 5000),
        }
        for i in range(BULK)
    ]
    return {
        "resourceSpans": [
            {
                "resource": resource("checkout"),
                "schemaUrl": "https://opentelemetry.io/schemas/1.24.0",
                "scopeSpans": [
                    {
                        "scope": {
                            "name": "manual",
                            "version": "1.0",
                            "attributes": [kv("scope.attr", s("s"))],
                        },
                        "schemaUrl": "https://opentelemetry.io/schemas/1.24.0",
                        "spans": checkout,
                    }
                ],
            },
            {"resource": resource("pricing"), "scopeSpans": [{"spans": pricing}]},
            {"resource": resource("bulk"), "scopeSpans": [{"scope": {"name": "b"}, "spans": bulk}]},
        ]
    }


def logs_request() -> dict[str, Any]:
    records = [
        {
            "timeUnixNano": str(NOW + i * 1_000_000),
            "observedTimeUnixNano": str(NOW + i * 1_000_000 + 7),
            "severityNumber": 17 if i % 3 == 0 else 9,
            "severityText": "ERROR" if i % 3 == 0 else "INFO",
            "body": s(f"payment {i} failed: card declined\nsecond line")
            if i % 3 == 0
            else s(f"ok {i}"),
            "attributes": ATTRS if i == 0 else [kv("order.id", {"intValue": str(i)})],
            "traceId": TRACE,
            "spanId": ROOT,
            "flags": 1,
        }
        for i in range(9)
    ]
    records.append(
        {
            "timeUnixNano": str(NOW + 50_000_000),
            "severityNumber": 13,
            "eventName": "cart.event",
            "body": {"kvlistValue": {"values": [kv("cart", {"intValue": "3"})]}},
        }
    )
    return {
        "resourceLogs": [
            {
                "resource": resource("checkout"),
                "scopeLogs": [{"scope": {"name": "logger", "version": "2"}, "logRecords": records}],
            }
        ]
    }


def metrics_request() -> dict[str, Any]:
    t = [str(NOW + i * 10**9) for i in range(4)]
    start = str(NOW - 10**9)
    exemplar = {
        "timeUnixNano": t[0],
        "asDouble": 3.5,
        "traceId": TRACE,
        "spanId": ROOT,
        "filteredAttributes": [kv("e", s("x"))],
    }
    metrics = [
        {
            "name": "queue_depth",
            "unit": "1",
            "description": "items waiting",
            "gauge": {
                "dataPoints": [
                    {"timeUnixNano": t[i], "asInt": str(10 + i), "attributes": [kv("queue", s(q))]}
                    for i in range(4)
                    for q in ("a", "b")
                ]
            },
        },
        {
            "name": "requests_total",
            "unit": "{request}",
            "sum": {
                "aggregationTemporality": 2,
                "isMonotonic": True,
                "dataPoints": [
                    {"startTimeUnixNano": start, "timeUnixNano": t[i], "asDouble": 1.5 * (i + 1)}
                    for i in range(4)
                ],
            },
        },
        {
            "name": "latency",
            "unit": "ms",
            "histogram": {
                "aggregationTemporality": 1,
                "dataPoints": [
                    {
                        "startTimeUnixNano": start,
                        "timeUnixNano": t[0],
                        "count": "3",
                        "sum": 12.5,
                        "min": 1.0,
                        "max": 8.0,
                        "bucketCounts": ["1", "2", "0"],
                        "explicitBounds": [5.0, 10.0],
                        "exemplars": [exemplar],
                        "attributes": ATTRS,
                    }
                ],
            },
        },
        {
            "name": "sizes",
            "exponentialHistogram": {
                "aggregationTemporality": 2,
                "dataPoints": [
                    {
                        "startTimeUnixNano": start,
                        "timeUnixNano": t[1],
                        "count": "4",
                        "sum": 20.0,
                        "scale": 2,
                        "zeroCount": "1",
                        "positive": {"offset": 1, "bucketCounts": ["1", "2"]},
                        "negative": {"offset": 0, "bucketCounts": []},
                    }
                ],
            },
        },
        {
            "name": "rpc_seconds",
            "summary": {
                "dataPoints": [
                    {
                        "startTimeUnixNano": start,
                        "timeUnixNano": t[2],
                        "count": "2",
                        "sum": 0.75,
                        "quantileValues": [{"quantile": 0.5, "value": 0.25}],
                    }
                ]
            },
        },
    ]
    return {
        "resourceMetrics": [
            {
                "resource": resource("checkout"),
                "scopeMetrics": [{"scope": {"name": "meter", "version": "3"}, "metrics": metrics}],
            }
        ]
    }


SPAN_COUNT = 5 + BULK
LOG_COUNT = 10
POINT_COUNT = 8 + 4 + 1 + 1 + 1


def post_otlp(server: RunningServer, signal: str, body: dict[str, Any]) -> None:
    r = httpx.post(f"{server.url}/v1/{signal}", json=body, headers=server.headers(), timeout=30)
    assert r.status_code == 200, r.text
    assert r.json() == {}, r.text


def seed(server: RunningServer) -> None:
    post_otlp(server, "traces", traces_request())
    post_otlp(server, "logs", logs_request())
    post_otlp(server, "metrics", metrics_request())


# -- servers and the command ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("cli-source"))
    seed(running)
    yield running
    if running.proc is not None:
        running.kill()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = {"auth": {"tokens": [{"token": TOKEN, "tenant": "cli"}]}}
    running = start_server(tmp_path_factory.mktemp("cli-secured"), config)
    running.token = TOKEN
    yield running
    if running.proc is not None:
        running.kill()


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTTERSCOPE_")}
    env["COLUMNS"] = "200"
    env.update(extra)
    return env


def cli(
    *args: str,
    server: RunningServer | None = None,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    url = ["--url", server.url] if server is not None else []
    token = ["--token", server.token] if server is not None and server.token else []
    return subprocess.run(
        [sys.executable, "-m", "otterscope", *args, *url, *token],
        capture_output=True,
        text=True,
        env=env or clean_env(),
        input=stdin,
        cwd=cwd,
        timeout=120,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def one_error_line(result: subprocess.CompletedProcess[str], status: int = 1) -> str:
    assert result.returncode == status, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("otterscope: "), lines[0]
    return lines[0]


def fetch_all(server: RunningServer, signal: str) -> list[dict[str, Any]]:
    """Every page of ``POST /api/{signal}/fetch`` (without ``nextCursor``)."""
    pages, cursor = [], None
    while True:
        body: dict[str, Any] = {"startTimeUnixNano": "0", "limit": 1000}
        if cursor:
            body["cursor"] = cursor
        r = httpx.post(
            f"{server.url}/api/{signal}/fetch", json=body, headers=server.headers(), timeout=30
        )
        assert r.status_code == 200, r.text
        page = r.json()
        cursor = page.pop("nextCursor")
        pages.append(page)
        if not cursor:
            return pages


_TOP = {
    "traces": ("resourceSpans", "scopeSpans", "spans"),
    "logs": ("resourceLogs", "scopeLogs", "logRecords"),
    "metrics": ("resourceMetrics", "scopeMetrics", "metrics"),
}


def items(server: RunningServer, signal: str) -> list[str]:
    """Every stored item with its resource and scope, as sorted JSON (order-independent)."""
    top, scopes, key = _TOP[signal]
    out = []
    for page in fetch_all(server, signal):
        for rs in page.get(top, []):
            for ss in rs.get(scopes, []):
                where = [
                    rs.get("resource"),
                    rs.get("schemaUrl"),
                    ss.get("scope"),
                    ss.get("schemaUrl"),
                ]
                for item in ss.get(key, []):
                    singles = [item]
                    if signal == "metrics":  # one entry per data point
                        kind = next(k for k in item if isinstance(item[k], dict))
                        singles = [
                            {**item, kind: {**item[kind], "dataPoints": [point]}}
                            for point in item[kind]["dataPoints"]
                        ]
                    out += [json.dumps([*where, one], sort_keys=True) for one in singles]
    return sorted(out)


def received(server: RunningServer) -> dict[str, int]:
    r = httpx.get(f"{server.url}/health", headers=server.headers(), timeout=10)
    counts: dict[str, int] = r.json()["ingest"]["receivedItems"]
    return counts


def assert_same_data(a: RunningServer, b: RunningServer) -> None:
    for signal, count in (("traces", SPAN_COUNT), ("logs", LOG_COUNT), ("metrics", POINT_COUNT)):
        left, right = items(a, signal), items(b, signal)
        assert len(left) == count, signal
        assert left == right, signal
    one = [
        httpx.get(f"{x.url}/api/traces/{TRACE}?format=otlp", headers=x.headers()).json()
        for x in (a, b)
    ]
    assert one[0] == one[1]


# -- traces, trace, logs, metrics ----------------------------------------------------------------------


def test_traces_table(source: RunningServer) -> None:
    out = ok(cli("traces", "--service", "checkout", server=source))
    header, *rows = out.strip().splitlines()
    assert header.split()[:3] == ["TRACE", "ID", "START"]
    assert len(rows) == 1
    row = rows[0]
    assert row.startswith(TRACE)
    assert "42.00" in row  # duration ms
    assert "checkout: GET /cart" in row
    assert "checkout, pricing" in row
    assert row.split()[4:6] == ["5", "1"]  # spans, errors


def test_traces_filters_and_json(source: RunningServer) -> None:
    flags = "--attr int=9007199254740993 --status error --min-duration 40ms --start 1h --end now"
    found = json.loads(ok(cli("traces", *flags.split(), "--json", server=source)))
    assert [t["traceId"] for t in found["traces"]] == [TRACE]
    none = json.loads(ok(cli("traces", "--operation", "no such", "--json", server=source)))
    assert none == {"traces": [], "nextCursor": None}
    empty = cli("traces", "--service", "nobody", server=source)
    assert empty.returncode == 0 and empty.stdout == "" and "no traces" in empty.stderr


def test_traces_limit_above_one_page_follows_the_cursor(source: RunningServer) -> None:
    found = json.loads(
        ok(cli("traces", "--service", "bulk", "--limit", "1003", "--json", server=source))
    )
    ids = [t["traceId"] for t in found["traces"]]
    assert len(ids) == len(set(ids)) == 1003
    assert found["nextCursor"] is not None
    everything = json.loads(
        ok(cli("traces", "--service", "bulk", "--limit", "5000", "--json", server=source))
    )
    assert len({t["traceId"] for t in everything["traces"]}) == BULK
    assert everything["nextCursor"] is None


def test_trace_tree_and_waterfall(source: RunningServer) -> None:
    out = ok(cli("trace", TRACE, server=source))
    lines = out.splitlines()
    assert lines[0].startswith(f"trace {TRACE}  5 spans, 2 services (checkout, pricing), 42.00 ms")
    assert lines[1].split() == ["SERVICE", "SPAN", "MS", "STATUS", "WATERFALL"]
    body = lines[2:]
    known = ("GET /cart", "SELECT cart", "call pricing", "price rules", "lost child")
    names = [next(n for n in known if n in line) for line in body]
    # Depth first, children by start time, the orphan last at the top level.
    assert names == ["GET /cart", "SELECT cart", "call pricing", "price rules", "lost child"]
    root, db, pricing, nested, orphan = body
    assert root.startswith("checkout  GET /cart") and "ERROR" in root and "upstream timeout" in root
    assert "├─ SELECT cart" in db and "└─ call pricing" in pricing
    assert "   └─ price rules" in nested and nested.startswith("pricing")
    assert "[orphan: parent 00000000000000aa missing]" in orphan
    assert "OK" in pricing
    # The waterfall: the root fills the bar, children sit inside it where they ran.
    bars = [line[line.index("|") + 1 : line.rindex("|")] for line in body]
    width = len(bars[0])
    assert bars[0] == "█" * width
    assert all(len(b) == width for b in bars)
    starts = [len(b) - len(b.lstrip()) for b in bars]
    assert starts[0] == 0 < starts[1] < starts[2] <= starts[3]
    assert 0.2 < bars[1].count("█") / width < 0.3  # 10 ms of 42


def test_trace_json_and_otlp(source: RunningServer) -> None:
    native = json.loads(ok(cli("trace", TRACE, "--json", server=source)))
    assert native["traceId"] == TRACE
    assert {sp["spanId"] for sp in native["spans"]} == {ROOT, DB, PRICING, NESTED, ORPHAN}
    otlp_out = ok(cli("trace", TRACE, "--otlp", server=source))
    assert otlp_out.count("\n") == 1  # one line: an importable request
    direct = httpx.get(f"{source.url}/api/traces/{TRACE}?format=otlp").json()
    assert json.loads(otlp_out) == direct
    both = cli("trace", TRACE, "--json", "--otlp", server=source)
    assert both.returncode == 2


def test_trace_unknown_is_one_line(source: RunningServer) -> None:
    line = one_error_line(cli("trace", "f" * 32, server=source))
    assert "404" in line and "not found" in line
    line = one_error_line(cli("trace", "nothex", server=source))
    assert "400" in line and "trace id" in line


def test_logs(source: RunningServer) -> None:
    out = ok(cli("logs", "--service", "checkout", server=source)).splitlines()
    assert len(out) == LOG_COUNT
    # Newest last, as tail prints; one line per record even with a newline in the body.
    assert "WARN" in out[-1] and '{"cart": 3}' in out[-1]
    assert "ERROR  checkout  payment 0 failed: card declined\\nsecond line" in out[0]
    errors = ok(cli("logs", "--severity", "error", "--q", "DECLINED", server=source)).splitlines()
    assert len(errors) == 3 and all(" ERROR " in line for line in errors)
    flags = f"--attr order.id=4 --trace-id {TRACE} --span-id {ROOT} --json"
    by_attr = json.loads(ok(cli("logs", *flags.split(), server=source)))
    assert [r["body"] for r in by_attr["logs"]] == ["ok 4"]
    paged = json.loads(ok(cli("logs", "--limit", "4", "--json", server=source)))
    assert len(paged["logs"]) == 4 and paged["nextCursor"] is not None


def test_metrics_summary(source: RunningServer) -> None:
    out = ok(cli("metrics", server=source)).splitlines()
    header = "NAME TYPE UNIT SERVICE ATTRIBUTES POINTS LATEST AT"
    assert out[0].split() == header.split()
    rows = out[1:]
    names = [r.split()[0] for r in rows]
    expected = "latency queue_depth queue_depth requests_total rpc_seconds sizes"
    assert names == expected.split()
    queue_a = rows[1]
    assert "gauge" in queue_a and "queue=a" in queue_a and " 4 " in queue_a and " 13 " in queue_a
    assert "sum cumulative monotonic" in rows[3] and "6.0" in rows[3]
    assert "count=3 sum=12.5" in rows[0]
    summary = json.loads(ok(cli("metrics", "--json", server=source)))["metrics"]
    by_name = {m["name"]: m for m in summary}
    assert by_name["queue_depth"]["type"] == "gauge"
    assert sorted(x["latest"]["value"] for x in by_name["queue_depth"]["series"]) == [13, 13]
    assert by_name["requests_total"]["series"][0]["points"] == 4
    assert by_name["sizes"]["type"] == "exponential_histogram"


def test_metrics_one_name(source: RunningServer) -> None:
    out = ok(cli("metrics", "queue_depth", "--points", "2", server=source)).splitlines()
    assert out[0].startswith("queue_depth (1)  gauge  items waiting")
    assert "{service=checkout, queue=a}  4 points, the last 2:" in out[1]
    assert out[2].split()[-1] == "12" and out[3].split()[-1] == "13"
    data = json.loads(ok(cli("metrics", "requests_total", "--json", server=source)))
    points = data["metrics"][0]["series"][0]["points"]
    assert [p["value"] for p in points] == [1.5, 3.0, 4.5, 6.0]
    missing = one_error_line(cli("metrics", "nope", server=source))
    assert "nope" in missing and "queue_depth" in missing


def test_metrics_aggregated_through_the_query_api(source: RunningServer) -> None:
    data = json.loads(
        ok(
            cli(
                "metrics",
                "requests_total",
                "--agg",
                "increase",
                "--step",
                "1h",
                "--json",
                server=source,
            )
        )
    )
    (series,) = data["series"]
    # A cumulative series that started inside the window counts from zero: 6 in all.
    assert sum(value for _, value in series["points"]) == 6.0
    out = ok(
        cli(
            "metrics",
            "queue_depth",
            "--agg",
            "max",
            "--group-by",
            "queue",
            "--step",
            "1h",
            server=source,
        )
    )
    lines = out.splitlines()
    assert "queue_depth max {queue=a}" in lines and "queue_depth max {queue=b}" in lines
    assert all(line.split()[-1] == "13" for line in lines if line.startswith("  "))
    filtered = ok(cli("metrics", "queue_depth", "--label", "queue=b", server=source))
    assert filtered.splitlines()[0] == "queue_depth sum {}"
    usage = one_error_line(cli("metrics", "--group-by", "queue", server=source), status=2)
    assert "need a metric NAME" in usage
    bad = one_error_line(cli("metrics", "queue_depth", "--agg", "rate", server=source))
    assert "gauge" in bad


# -- errors ------------------------------------------------------------------------------------------


def test_bad_token_is_one_line(secured: RunningServer) -> None:
    env = clean_env()
    for command in (["traces"], ["logs"], ["tail"], ["export", "--signal", "logs"]):
        result = cli(*command, "--url", secured.url, "--token", "wrong", env=env)
        line = one_error_line(result)
        assert "401" in line, line
        assert "does not know the token given" in line and "--token" in line, line
    # No token at all: the line says how to give one. Then the token from the environment.
    for command in (["traces"], ["tail"]):
        line = one_error_line(cli(*command, "--url", secured.url, env=env))
        assert "401" in line and "--token" in line and "OTTERSCOPE_TOKEN" in line, line
    ok(cli("traces", env=clean_env(OTTERSCOPE_URL=secured.url, OTTERSCOPE_TOKEN=TOKEN)))
    ok(cli("logs", env=clean_env(OTTERSCOPE_URL=secured.url, OTTERSCOPE_AUTH_TOKEN=TOKEN)))


def test_server_down_is_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for command in (
        ["traces"],
        ["trace", TRACE],
        ["tail"],
        ["metrics"],
        ["export", "--signal", "traces"],
    ):
        line = one_error_line(cli(*command, "--url", url))
        assert "cannot connect" in line and url.split("//")[1] in line, line


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["traces", "--start", "yesterday"], "--start"),
        (["logs", "--end", "2024-13-45T00:00:00Z"], "--end"),
        (["traces", "--attr", "novalue"], "--attr"),
        (["export", "--signal", "spans"], "--signal"),
        (["replay", "--signal", "logs", "--to", "http://x", "--page-size", "5000"], "--page-size"),
    ],
)
def test_usage_errors(args: list[str], needle: str) -> None:
    result = cli(*args, "--url", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T12:00:00.123456789Z", 1714564800_123456789),
        ("2024-05-01T14:00:00+02:00", 1714564800 * 10**9),
        ("1714564800", 1714564800 * 10**9),
        ("1714564800123", 1714564800123 * 10**6),
        ("1714564800123456789", 1714564800123456789),
        ("now", 10**18),
        ("1h", 10**18 - 3600 * 10**9),
        ("-1h30m", 10**18 - 5400 * 10**9),
        ("2d", 10**18 - 2 * 86400 * 10**9),
        ("250ms", 10**18 - 250 * 10**6),
    ],
)
def test_time_flag_values(text: str, expected: int) -> None:
    from otterscope.cli.client import api_time, parse_time

    assert parse_time(text, now_ns=10**18) == expected
    assert api_time(expected) == str(expected)
    assert api_time(5 * 10**9 + 7) == "5"  # below 10^17 the API reads seconds


def test_api_refusal_is_one_line(source: RunningServer) -> None:
    line = one_error_line(cli("traces", "--min-duration", "soon", server=source))
    assert "400" in line and "minDuration" in line
    line = one_error_line(cli("traces", "--start", "1h", "--end", "2h", server=source))
    assert "start must not be after end" in line


# -- tail ----------------------------------------------------------------------------------------------


class Tail:
    def __init__(self, server: RunningServer, *args: str) -> None:
        tokens = ["--token", server.token] if server.token else []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "otterscope", "tail", "--url", server.url, *tokens, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
            # As from a terminal: a test run started in the background (``cmd &``) ignores
            # SIGINT, and children inherit that, so Ctrl-C would never reach the CLI.
            preexec_fn=lambda: signals.signal(signals.SIGINT, signals.SIG_DFL),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        assert self.proc.stdout is not None
        stdout = self.proc.stdout
        threading.Thread(target=lambda: [self.lines.put(x) for x in stdout], daemon=True).start()

    def first_line(self, send: Callable[[int], None], needle: str, timeout: float = 30) -> str:
        """Send (again, until the subscription is live) and wait for a line with ``needle``."""
        deadline = time.monotonic() + timeout
        n = 0
        while time.monotonic() < deadline:
            send(n)
            n += 1
            try:
                while True:
                    line = self.lines.get(timeout=0.5)
                    if needle in line:
                        return line
            except queue.Empty:
                assert self.proc.poll() is None, self.proc.communicate()
        raise AssertionError(f"no line with {needle!r} within {timeout}s")

    def interrupt(self) -> tuple[int, str]:
        self.proc.send_signal(signals.SIGINT)
        _, err = self.proc.communicate(timeout=20)
        return self.proc.returncode, err


def one_span(server: RunningServer, service: str, name: str) -> None:
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [kv("service.name", s(service))]},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": secrets.token_hex(16),
                                "spanId": secrets.token_hex(8),
                                "name": name,
                                "kind": 2,
                                "startTimeUnixNano": str(time.time_ns()),
                                "endTimeUnixNano": str(time.time_ns() + 3_000_000),
                                "status": {"code": 2},
                            }
                        ]
                    }
                ],
            }
        ]
    }
    post_otlp(server, "traces", body)


def test_tail_prints_spans_until_ctrl_c(secured: RunningServer) -> None:
    tail = Tail(secured, "--signal", "traces", "--service", "tailed")
    try:
        # A span of another service first: filtered out by the subscription.
        line = tail.first_line(
            lambda n: (
                one_span(secured, "other", f"skip {n}"),
                one_span(secured, "tailed", f"op {n}"),
            ),
            "op ",
        )
        assert " span  tailed  op " in line and "ms  ERROR  trace=" in line
    finally:
        code, err = tail.interrupt()
    assert code == 0, err
    assert "skip" not in "".join(list(tail.lines.queue))


def test_tail_prints_metric_lines_with_their_time(secured: RunningServer) -> None:
    tail = Tail(secured, "--signal", "metrics")
    try:
        line = tail.first_line(lambda n: post_otlp(secured, "metrics", metrics_request()), "metric")
    finally:
        code, err = tail.interrupt()
    assert code == 0, err
    stamp = line.split("  ", 1)[0]
    # The newest point's time, as span and log lines start with theirs.
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", stamp), line
    assert " metric  checkout  " in line


def test_logs_columns_line_up_whatever_the_service_names(make_server: MakeServer) -> None:
    target = make_server()
    for service in ("a", "a-much-longer-service-name", "mid-size"):
        body = logs_request()
        body["resourceLogs"] = body["resourceLogs"][:1]
        body["resourceLogs"][0]["resource"] = resource(service)
        body["resourceLogs"][0]["scopeLogs"][0]["logRecords"] = [
            {"timeUnixNano": str(time.time_ns()), "severityNumber": 9, "body": s(f"BODY {service}")}
        ]
        post_otlp(target, "logs", body)
    out = ok(cli("logs", server=target)).splitlines()
    assert len(out) == 3
    assert len({line.index("BODY") for line in out}) == 1, out


def test_tail_json_logs(secured: RunningServer) -> None:
    tail = Tail(secured, "--signal", "logs", "--json")

    def send(n: int) -> None:
        body = logs_request()
        body["resourceLogs"][0]["scopeLogs"][0]["logRecords"] = [
            {"timeUnixNano": str(time.time_ns()), "severityNumber": 13, "body": s(f"tail log {n}")}
        ]
        post_otlp(secured, "logs", body)

    try:
        line = tail.first_line(send, "tail log")
    finally:
        code, err = tail.interrupt()
    message = json.loads(line)
    assert message["type"] == "logAdded"
    assert message["details"]["newLogs"][0]["body"].startswith("tail log")
    assert code == 0, err


# -- export, import, replay ------------------------------------------------------------------------------


def test_export_then_import_is_identical(
    source: RunningServer, make_server: MakeServer, tmp_path: Path
) -> None:
    files = []
    for signal, name in (
        ("traces", "traces.jsonl.gz"),
        ("logs", "logs.jsonl"),
        ("metrics", "m.jsonl"),
    ):
        path = tmp_path / name
        result = cli(
            "export", "--signal", signal, "--page-size", "400", "-o", str(path), server=source
        )
        ok(result)
        assert "exported" in result.stderr and "\r" not in result.stderr  # no progress off a TTY
        files.append(path)
    with gzip.open(files[0], "rt") as f:
        lines = f.read().splitlines()
    assert len(lines) == -(-SPAN_COUNT // 400)  # pages of 400 spans, one request per line
    assert all(set(json.loads(x)) == {"resourceSpans"} for x in lines)
    stdout_export = ok(cli("export", "--signal", "logs", "--start", "1d", server=source))
    assert stdout_export == files[1].read_text()

    target = make_server()
    result = cli("import", *map(str, files), "--json", server=target)
    counts = json.loads(ok(result))
    assert counts["spans"] == SPAN_COUNT and counts["logRecords"] == LOG_COUNT
    assert counts["dataPoints"] == POINT_COUNT and counts["refused"] == []
    assert_same_data(source, target)


def test_import_formats_and_refusals(make_server: MakeServer, tmp_path: Path) -> None:
    target = make_server()
    # A pretty-printed JSON array of requests, and one request on stdin.
    array = tmp_path / "array.json"
    array.write_text(json.dumps([metrics_request(), logs_request()], indent=2))
    ok(cli("import", str(array), server=target))
    one = cli("import", "-", server=target, stdin=json.dumps(traces_request()) + "\n")
    ok(one)
    assert f"imported 1 request ({SPAN_COUNT:,} spans)" in one.stderr
    assert received(target) == {"traces": SPAN_COUNT, "logs": LOG_COUNT, "metrics": POINT_COUNT}
    # --signal skips the others; a bad line is reported with its line, the rest still sent.
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(
        "\n".join(
            [
                json.dumps(logs_request()),
                json.dumps({"something": "else"}),
                json.dumps(metrics_request()),
                json.dumps({"resourceLogs": "nope"}),
                "not json",
                json.dumps(logs_request()),
            ]
        )
        + "\n"
    )
    result = cli("import", str(mixed), "--signal", "logs", server=target)
    assert result.returncode == 1
    err = result.stderr
    assert f"{mixed}:2: holds none of resourceSpans" in err
    assert f"{mixed}:4: refused: resourceLogs must be an array (400 Bad Request)" in err
    assert f"{mixed}:5: not JSON" in err
    assert "1 request of other signals skipped" in err
    assert err.strip().splitlines()[-1] == (
        f"otterscope: 3 requests refused, the first at {mixed}:2"
    )
    assert received(target)["logs"] == 3 * LOG_COUNT
    assert received(target)["metrics"] == POINT_COUNT


def test_replay_to_another_server(
    source: RunningServer, make_server: MakeServer, tmp_path: Path
) -> None:
    target = make_server(token="replay-" + secrets.token_hex(8))
    for signal in ("traces", "logs", "metrics"):
        result = cli(
            "replay",
            "--to",
            target.url,
            "--header",
            f"Authorization: Bearer {target.token}",
            "--signal",
            signal,
            "--json",
            server=source,
            cwd=tmp_path,
        )
        state = json.loads(ok(result))
        assert state["done"] and state["to"] == f"{target.url}/v1/{signal}"
        assert (tmp_path / f".otterscope-replay-{signal}.json").exists()
    assert_same_data(source, target)
    # The same replay again: the state file says it is done.
    again = cli(
        "replay", "--to", target.url, "--signal", "logs", "--resume", server=source, cwd=tmp_path
    )
    assert "nothing left to replay" in ok(again) + again.stderr
    assert received(target) == {"traces": SPAN_COUNT, "logs": LOG_COUNT, "metrics": POINT_COUNT}


def test_replay_resume_sends_nothing_twice(
    source: RunningServer, make_server: MakeServer, tmp_path: Path
) -> None:
    target = make_server()
    state = tmp_path / "state.json"
    base = f"replay --to {target.url}/v1/logs --signal logs --state {state} --page-size 3".split()
    first = cli(*base, "--max-pages", "1", server=source)
    assert "continue with --resume" in ok(first) + first.stderr
    saved = json.loads(state.read_text())
    assert saved["pages"] == 1 and saved["items"] == 3 and not saved["done"]
    assert received(target)["logs"] == 3
    # Starting over by mistake is refused while a replay is unfinished.
    line = one_error_line(cli(*base, server=source))
    assert "--resume" in line
    ok(cli(*base, "--resume", "--max-pages", "2", server=source))
    assert json.loads(state.read_text())["pages"] == 3
    assert received(target)["logs"] == 9
    ok(cli(*base, "--resume", server=source))
    saved = json.loads(state.read_text())
    assert saved["done"] and saved["items"] == LOG_COUNT and saved["cursor"] is None
    assert received(target)["logs"] == LOG_COUNT  # every record exactly once
    assert items(target, "logs") == items(source, "logs")


# -- retries against a stand-in OTLP endpoint ------------------------------------------------------------


Answer = Callable[[http.server.BaseHTTPRequestHandler, bytes], None]


class StandIn:
    """An HTTP server on a free loopback port whose POSTs ``answer`` handles (each stand-in
    passes its own)."""

    def __init__(self, answer: Answer) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                answer(self, self.rfile.read(int(self.headers["Content-Length"])))

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FlakyEndpoint(StandIn):
    """An OTLP/HTTP stand-in: the first answer is ``status`` with Retry-After: 1, then 200."""

    def __init__(self, status: int) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes, float]] = []
        self.status = status
        super().__init__(self.answer)

    def answer(self, handler: http.server.BaseHTTPRequestHandler, body: bytes) -> None:
        self.requests.append((handler.path, dict(handler.headers), body, time.monotonic()))
        first = len(self.requests) == 1
        handler.send_response(self.status if first else 200)
        if first:
            handler.send_header("Retry-After", "1")
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"{}")


@pytest.mark.parametrize("status", [429, 503])
def test_replay_and_import_retry_honouring_retry_after(
    source: RunningServer, tmp_path: Path, status: int
) -> None:
    fake = FlakyEndpoint(status)
    try:
        result = cli(
            "replay",
            "--to",
            f"{fake.url}/otlp/v1/logs",
            "--header",
            "X-Key: k1",
            "--signal",
            "logs",
            "--state",
            str(tmp_path / "s.json"),
            server=source,
        )
        ok(result)
        (p1, _, b1, t1), (p2, h2, b2, t2) = fake.requests
        assert p1 == p2 == "/otlp/v1/logs" and b1 == b2
        assert h2["X-Key"] == "k1" and h2["Content-Type"] == "application/json"
        assert t2 - t1 >= 0.9
        assert json.loads(b2) == fetch_all(source, "logs")[0]

        fake.requests.clear()
        lines = tmp_path / "one.jsonl"
        lines.write_text(json.dumps(logs_request()) + "\n")
        ok(cli("import", str(lines), "--url", fake.url, "--token", "tk"))
        (p1, _, _, t1), (p2, h2, body, t2) = fake.requests
        assert p1 == p2 == "/v1/logs" and t2 - t1 >= 0.9
        assert h2["Authorization"] == "Bearer tk"
        assert json.loads(body) == logs_request()
    finally:
        fake.close()
