"""``GET /api/logs/volume`` against a real server: records sent over OTLP/HTTP (OTLP/JSON and
the OpenTelemetry SDK's protobuf exporter) come back counted per time bucket and severity
class, exactly as sent, under every filter of ``GET /api/logs``, per tenant, from hot rows
and sealed Parquet files together; bad steps, missing tokens and missing scopes are refused.

Every expected count is computed here from the records the test sent.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from tests.conftest import RunningServer, start_server
from tests.payloads import SECOND, attr, log, logs_body, new_span_id, new_trace_id, post

T1 = "volume-t1-" + secrets.token_hex(12)
T2 = "volume-t2-" + secrets.token_hex(12)
INGEST_ONLY = "volume-ingest-" + secrets.token_hex(12)
MINUTE = 60 * SECOND
MS = 1_000_000
CLASSES = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
ORDER = (*CLASSES, "UNSPECIFIED")
# Every class boundary, 0, and numbers no class holds (an int8 column keeps up to 127).
SEVERITIES = (0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 127)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = {
        "auth": {
            "tokens": [
                {"token": T1, "tenant": "t1", "scopes": ["ingest", "read"]},
                {"token": T2, "tenant": "t2", "scopes": ["ingest", "read"]},
                {"token": INGEST_ONLY, "tenant": "t1", "scopes": ["ingest"]},
            ]
        }
    }
    running = start_server(tmp_path_factory.mktemp("volume"), config)
    yield running
    if running.proc is not None:
        running.kill()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def base_ns(minutes_ago: int = 90) -> int:
    """A whole minute in the recent past: buckets of a minute start there."""
    t = time.time_ns() - minutes_ago * MINUTE
    return t - t % MINUTE


def severity_class(n: int) -> str:
    return CLASSES[(n - 1) // 4] if 1 <= n <= 24 else "UNSPECIFIED"


def expected(
    records: list[dict[str, Any]], start_ns: int, end_ns: int, step_ns: int
) -> dict[str, Any]:
    """The answer the records sent should give: every bucket of the window, by class."""
    first, last = start_ns // step_ns, end_ns // step_ns
    counts = {i: dict.fromkeys(ORDER, 0) for i in range(first, last + 1)}
    for r in records:
        t = int(r["timeUnixNano"])
        if start_ns <= t <= end_ns:
            counts[t // step_ns][severity_class(int(r["severityNumber"]))] += 1
    step_ms = step_ns // MS
    buckets = [
        {"timeUnixMs": i * step_ms, "counts": c, "total": sum(c.values())}
        for i, c in sorted(counts.items())
    ]
    return {
        "stepMs": step_ms,
        "startUnixMs": first * step_ms,
        "endUnixMs": end_ns // MS,
        "buckets": buckets,
        "total": sum(b["total"] for b in buckets),
    }


def volume(server: RunningServer, token: str | None = T1, **params: Any) -> dict[str, Any]:
    r = httpx.get(
        f"{server.url}/api/logs/volume",
        params={k: str(v) for k, v in params.items()},
        headers=bearer(token) if token else {},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def assert_error(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code
    return str(body["error"]["message"])


def spread(base: int, minutes: int, per_minute: int) -> list[dict[str, Any]]:
    """Records over ``minutes`` minutes, the severities taking turns, at uneven offsets
    (a record right on a bucket's start, one a nanosecond before the next)."""
    out = []
    k = 0
    for m in range(minutes):
        for j in range(per_minute):
            offset = (0, MINUTE - 1, 17 * SECOND + j)[j % 3]
            out.append(
                log(f"record {m}/{j}", base + m * MINUTE + offset, SEVERITIES[k % len(SEVERITIES)])
            )
            k += 1
    return out


def unique_service() -> str:
    return f"vol-{secrets.token_hex(5)}"


# -- counts by severity and time -------------------------------------------------------------


def test_counts_per_bucket_and_severity_are_exactly_what_was_sent(
    secured: RunningServer,
) -> None:
    service, base = unique_service(), base_ns()
    records = spread(base, 10, 7)
    # Sent in three requests, one of them with a gap of empty minutes before it.
    records += [log("late", base + 14 * MINUTE + 5 * SECOND, 17) for _ in range(3)]
    for part in (records[:30], records[30:70], records[70:]):
        post(secured.url, "logs", logs_body(service, part), bearer(T1))

    end = base + 15 * MINUTE - 1
    got = volume(secured, service=service, start=base, end=end, step="1m")
    assert got == expected(records, base, end, MINUTE)
    assert len(got["buckets"]) == 15 and got["total"] == len(records)
    assert [b["total"] for b in got["buckets"][10:14]] == [0, 0, 0, 0]  # gaps are there

    # A window that starts mid-bucket: the first bucket is aligned and counts only what is
    # in the window; the same for the end.
    start, end = base + 30 * SECOND, base + 5 * MINUTE + 17 * SECOND
    got = volume(secured, service=service, start=start, end=end, step=60_000)
    assert got["startUnixMs"] == base // MS
    assert got == expected(records, start, end, MINUTE)

    # Other steps, in the duration syntax: buckets of 5 minutes and of 90 seconds.
    for step, step_ns in (("5m", 5 * MINUTE), ("1.5m", 90 * SECOND), ("90000", 90 * SECOND)):
        end = base + 15 * MINUTE
        assert volume(secured, service=service, start=base, end=end, step=step) == expected(
            records, base, end, step_ns
        )


def test_the_default_step_gives_about_sixty_nice_buckets(secured: RunningServer) -> None:
    service, base = unique_service(), base_ns(180)
    records = [log("x", base + i * 7 * MINUTE, 9) for i in range(20)]
    post(secured.url, "logs", logs_body(service, records), bearer(T1))
    for window, step_ns in (
        (60 * MINUTE, MINUTE),
        (2 * 60 * MINUTE, 2 * MINUTE),
        (3 * 60 * MINUTE, 5 * MINUTE),
        (45 * MINUTE, MINUTE),
        (10 * MINUTE, 10 * SECOND),
    ):
        got = volume(secured, service=service, start=base, end=base + window)
        assert got == expected(records, base, base + window, step_ns), window
        assert 30 <= len(got["buckets"]) <= 61
    # The default window is the last 24 hours: 30-minute buckets.
    got = volume(secured, service=service)
    assert got["stepMs"] == 30 * 60_000
    assert got["total"] == len(records)
    assert got["endUnixMs"] - got["startUnixMs"] < 24 * 3600_000 + 30 * 60_000
    assert len(got["buckets"]) == 49  # 48 steps from end - 24h to end: 49 buckets


def test_a_window_ending_just_after_the_epoch_starts_at_it(secured: RunningServer) -> None:
    got = volume(secured, end=66, step=7_213_582)  # the default window would reach back a day
    assert got["startUnixMs"] == 0
    assert got["buckets"][0]["timeUnixMs"] == 0
    assert got["endUnixMs"] == 66_000 and got["total"] == 0


def test_sdk_records_are_counted_by_severity(secured: RunningServer) -> None:
    service, base = unique_service(), base_ns()
    provider = LoggerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPLogExporter(endpoint=f"{secured.url}/v1/logs", headers=bearer(T1), timeout=10)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("volume-test")
    sent = [
        (SeverityNumber.DEBUG, base + 1 * SECOND),
        (SeverityNumber.INFO, base + 2 * SECOND),
        (SeverityNumber.INFO2, base + 3 * SECOND),
        (SeverityNumber.WARN4, base + 70 * SECOND),
        (SeverityNumber.ERROR, base + 71 * SECOND),
        (SeverityNumber.FATAL, base + 130 * SECOND),
        (SeverityNumber.TRACE, base + 131 * SECOND),
    ]
    try:
        for severity, t in sent:
            logger.emit(timestamp=t, severity_number=severity, body=f"sdk {severity.name}")
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()
    records = [{"timeUnixNano": t, "severityNumber": s.value} for s, t in sent]
    end = base + 3 * MINUTE - 1
    got = volume(secured, service=service, start=base, end=end, step="1m")
    assert got == expected(records, base, end, MINUTE)
    assert [b["counts"] for b in got["buckets"]] == [
        {**dict.fromkeys(ORDER, 0), "DEBUG": 1, "INFO": 2},
        {**dict.fromkeys(ORDER, 0), "WARN": 1, "ERROR": 1},
        {**dict.fromkeys(ORDER, 0), "FATAL": 1, "TRACE": 1},
    ]


# -- filters ---------------------------------------------------------------------------------


def test_every_filter_of_the_log_search_applies(secured: RunningServer) -> None:
    base = base_ns()
    api, worker = unique_service(), unique_service()
    run = secrets.token_hex(6)  # a resource attribute of this test's records only
    trace_a, trace_b = new_trace_id(), new_trace_id()
    span_a = new_span_id()
    records: list[tuple[str, dict[str, Any]]] = []
    for i in range(60):
        r = log(
            ("Connection REFUSED" if i % 4 == 0 else "request ok") + f" #{i}",
            base + i * 13 * SECOND,
            SEVERITIES[i % len(SEVERITIES)],
            attributes={"http.status_code": 503 if i % 5 == 0 else 200, "user.id": str(i % 3)},
        )
        if i % 6 == 0:
            r.update(traceId=trace_a, spanId=span_a if i % 12 == 0 else new_span_id())
        elif i % 6 == 1:
            r.update(traceId=trace_b, spanId=new_span_id())
        records.append((api if i % 2 else worker, r))
    for service in (api, worker):
        body = logs_body(service, [r for s, r in records if s == service])
        body["resourceLogs"][0]["resource"]["attributes"].append(attr("test.run", run))
        post(secured.url, "logs", body, bearer(T1))

    def sev(r: dict[str, Any]) -> int:
        return int(r["severityNumber"])

    def value(r: dict[str, Any], key: str) -> str:
        v = next(a["value"] for a in r["attributes"] if a["key"] == key)
        return str(v.get("intValue", v.get("stringValue")))

    def refused(r: dict[str, Any]) -> bool:
        return "REFUSED" in r["body"]["stringValue"]

    Keep = Callable[[str, dict[str, Any]], bool]
    cases: list[tuple[dict[str, str], Keep]] = [
        ({}, lambda s, r: True),
        ({"service": api}, lambda s, r: s == api),
        ({"service": api, "severity": "WARN"}, lambda s, r: s == api and sev(r) >= 13),
        ({"service": worker, "severity": "1"}, lambda s, r: s == worker and sev(r) >= 1),
        ({"severity": "fatal"}, lambda s, r: sev(r) >= 21),
        ({"q": "connection refused"}, lambda s, r: refused(r)),
        ({"traceId": trace_a}, lambda s, r: r.get("traceId") == trace_a),
        (
            {"traceId": trace_b, "service": api},
            lambda s, r: s == api and r.get("traceId") == trace_b,
        ),
        ({"spanId": span_a}, lambda s, r: r.get("spanId") == span_a),
        ({"attr.http.status_code": "503"}, lambda s, r: value(r, "http.status_code") == "503"),
        (
            {"attr.http.status_code": "503", "attr.user.id": "1", "q": "REFUSED"},
            lambda s, r: (
                value(r, "http.status_code") == "503" and value(r, "user.id") == "1" and refused(r)
            ),
        ),
    ]
    end = base + 15 * MINUTE
    for params, keep in cases:
        wanted = [r for s, r in records if keep(s, r)]
        assert wanted, params
        scoped = {**params, "attr.test.run": run, "start": str(base), "end": str(end)}
        got = volume(secured, step="1m", **scoped)
        assert got == expected(wanted, base, end, MINUTE), params
        # The histogram counts exactly what the search lists.
        r = httpx.get(
            f"{secured.url}/api/logs", params={**scoped, "limit": "1000"}, headers=bearer(T1)
        )
        assert len(r.json()["logs"]) == got["total"], params
    # Without the resource attribute, a service still narrows it to its own records.
    got = volume(secured, service=worker, severity="ERROR", start=base, end=end, step="5m")
    wanted = [r for s, r in records if s == worker and sev(r) >= 17]
    assert got == expected(wanted, base, end, 5 * MINUTE)


# -- tenants ---------------------------------------------------------------------------------


def test_each_tenant_counts_only_its_own_records(secured: RunningServer) -> None:
    service, base = unique_service(), base_ns()
    mine = [log("t1", base + i * SECOND, 9) for i in range(5)]
    theirs = [log("t2", base + i * SECOND, 17) for i in range(3)]
    post(secured.url, "logs", logs_body(service, mine), bearer(T1))
    post(secured.url, "logs", logs_body(service, theirs), bearer(T2))
    end = base + MINUTE - 1
    one = volume(secured, T1, service=service, start=base, end=end, step="1m")
    two = volume(secured, T2, service=service, start=base, end=end, step="1m")
    assert one == expected(mine, base, end, MINUTE)
    assert two == expected(theirs, base, end, MINUTE)
    assert one["buckets"][0]["counts"]["INFO"] == 5 and one["buckets"][0]["counts"]["ERROR"] == 0
    assert two["buckets"][0]["counts"]["ERROR"] == 3 and two["buckets"][0]["counts"]["INFO"] == 0
    # Nothing of t1's at all when t2 asks by body text.
    assert volume(secured, T2, q="t1", start=base, end=end)["total"] == 0


# -- hot rows and Parquet --------------------------------------------------------------------


def parquet_bodies(data_dir: Path) -> list[str]:
    files = sorted((data_dir / "parquet" / "logs").rglob("seg-*.parquet"))
    return [b for f in files for b in pq.read_table(f, columns=["body_text"]).column(0).to_pylist()]


def test_sealed_and_hot_records_are_counted_together(make_server: Any) -> None:
    # Forty rows rotate the hot segment; the maintenance thread then seals it into Parquet.
    srv: RunningServer = make_server(env={"OTTERSCOPE_STORAGE__SEAL_ROWS": "40"})
    service, base = unique_service(), base_ns()
    sealed = [
        log(f"sealed {i}", base + i * 9 * SECOND, SEVERITIES[i % len(SEVERITIES)])
        for i in range(45)
    ]  # 45 records: the first seven minutes, across an hour's files if the base is near one
    post(srv.url, "logs", logs_body(service, sealed))
    deadline = time.monotonic() + 30
    while httpx.get(f"{srv.url}/health").json()["store"]["hotRows"]["logs"]:
        assert time.monotonic() < deadline, "the records were not sealed"
        time.sleep(0.05)
    assert sorted(b for b in parquet_bodies(srv.data_dir) if b.startswith("sealed ")) == sorted(
        r["body"]["stringValue"] for r in sealed
    )
    hot = [log(f"hot {i}", base + 3 * MINUTE + i * 20 * SECOND, 13) for i in range(7)]
    post(srv.url, "logs", logs_body(service, hot))

    end = base + 10 * MINUTE
    for step, step_ns in (("1m", MINUTE), ("30s", 30 * SECOND)):
        got = volume(srv, None, service=service, start=base, end=end, step=step)
        assert got == expected(sealed + hot, base, end, step_ns)
    assert got["total"] == 52
    # The hot records were still hot when counted.
    assert not any(b.startswith("hot ") for b in parquet_bodies(srv.data_dir))
    # A filter on the mixed buckets: only the WARN class, from both tiers.
    got = volume(srv, None, service=service, start=base, end=end, step="1m", severity="WARN")
    assert got == expected(
        [r for r in sealed + hot if int(r["severityNumber"]) >= 13], base, end, MINUTE
    )


# -- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"step": "0"}, "1ms or more"),
        ({"step": "1.5ms"}, "whole number of milliseconds"),
        ({"step": "500us"}, "1ms or more"),
        ({"step": "soon"}, "not a duration"),
        ({"step": "-5m"}, "step"),
        ({"step": "1s"}, "more than 1000"),  # 24 hours in 1-second buckets
        ({"step": "1m", "start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z"}, "2m"),
        ({"limit": "10"}, "limit"),
        ({"cursor": "abc"}, "cursor"),
        ({"severity": "LOUD"}, "severity"),
        ({"traceId": "123"}, "trace id"),
        ({"start": "2024-01-02T00:00:00Z", "end": "2024-01-01T00:00:00Z"}, "start"),
    ],
)
def test_bad_parameters_are_400(
    secured: RunningServer, params: dict[str, str], needle: str
) -> None:
    r = httpx.get(f"{secured.url}/api/logs/volume", params=params, headers=bearer(T1))
    assert needle in assert_error(r, 400, "bad_request")


def test_too_many_buckets_names_a_step_that_fits(secured: RunningServer) -> None:
    r = httpx.get(
        f"{secured.url}/api/logs/volume",
        params={"step": "1s", "start": "2024-01-01T00:00:00Z", "end": "2024-01-01T01:00:00Z"},
        headers=bearer(T1),
    )
    message = assert_error(r, 400, "bad_request")
    assert "3601 buckets" in message and "5s" in message
    # The step it names does fit, and exactly 1000 buckets is still an answer.
    r = httpx.get(
        f"{secured.url}/api/logs/volume",
        params={"step": "5s", "start": "2024-01-01T00:00:00Z", "end": "2024-01-01T01:00:00Z"},
        headers=bearer(T1),
    )
    assert r.status_code == 200 and len(r.json()["buckets"]) == 721
    start = 1_704_067_200_000  # 2024-01-01T00:00:00Z in milliseconds
    r = httpx.get(
        f"{secured.url}/api/logs/volume",
        params={"step": "1s", "start": str(start), "end": str(start + 999_999)},
        headers=bearer(T1),
    )
    assert r.status_code == 200 and len(r.json()["buckets"]) == 1000
    r = httpx.get(
        f"{secured.url}/api/logs/volume",
        params={"step": "1s", "start": str(start), "end": str(start + 1_000_000)},
        headers=bearer(T1),
    )
    assert "1001 buckets" in assert_error(r, 400, "bad_request")


def test_a_token_with_the_read_scope_is_needed(secured: RunningServer) -> None:
    r = httpx.get(f"{secured.url}/api/logs/volume")
    assert_error(r, 401, "unauthorized")
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = httpx.get(f"{secured.url}/api/logs/volume", headers=bearer("not-a-token-at-all"))
    assert_error(r, 401, "unauthorized")
    r = httpx.get(f"{secured.url}/api/logs/volume", headers=bearer(INGEST_ONLY))
    assert "read" in assert_error(r, 403, "forbidden")
    assert volume(secured, T1)["stepMs"] == 30 * 60_000
