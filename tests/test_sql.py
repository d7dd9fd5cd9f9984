"""``POST /api/query``: read-only SQL over the caller's own data, run in a sandbox process.

Data is stored partly in Parquet (before a restart) and partly hot (after it), for two
tenants. A list of hostile statements must all be refused without leaking anything;
timeouts, the row cap, deletes, scopes and bad bodies are checked, and ingest keeps
answering while a query runs until it is stopped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from otterscope.store.embedded.sandbox_sql import VIEWS, columns
from tests.conftest import RunningServer, start_server
from tests.payloads import attr, log, logs_body, new_span_id, new_trace_id, now_ns, span

A_ADMIN, A_READ, B_ADMIN = (
    "a-admin-token-0123456789",
    "a-read-token-0123456789",
    "b-admin-token-0123456789",
)
SECRET = "b-only-secret-service"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def spans_body(service: str, trace_id: str, count: int) -> dict[str, Any]:
    t = now_ns()
    spans = [
        span(
            trace_id,
            new_span_id(),
            f"op-{i}",
            t,
            10**6 * (i + 1),
            attributes={"http.route": f"/r/{i % 2}"},
        )
        for i in range(count)
    ]
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [attr("service.name", service)]},
                "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}],
            }
        ]
    }


def post(srv: RunningServer, signal: str, body: dict[str, Any], token: str) -> None:
    r = httpx.post(f"{srv.url}/v1/{signal}", json=body, headers=bearer(token), timeout=30)
    assert r.status_code == 200, r.text


def sql(srv: RunningServer, query: str, token: str = A_ADMIN, status: int = 200) -> Any:
    r = httpx.post(f"{srv.url}/api/query", json={"query": query}, headers=bearer(token), timeout=60)
    assert r.status_code == status, r.text
    return r.json()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = {
        "auth": {
            "tokens": [
                {"token": A_ADMIN, "tenant": "a", "scopes": ["ingest", "read", "admin"]},
                {"token": A_READ, "tenant": "a", "scopes": ["read"]},
                {"token": B_ADMIN, "tenant": "b", "scopes": ["ingest", "read", "admin"]},
            ]
        },
        "sql": {"timeout": "2s", "max_rows": 50},
    }
    server = start_server(tmp_path_factory.mktemp("sql"), config)
    post(server, "traces", spans_body("shop", new_trace_id(), 6), A_ADMIN)
    post(server, "traces", spans_body(SECRET, new_trace_id(), 3), B_ADMIN)
    post(server, "logs", logs_body("shop", [log("sealed line", now_ns() - 10**9)]), A_ADMIN)
    assert server.stop() == 0
    server.start()  # the recovered segment is sealed into Parquet in the background
    deadline = time.monotonic() + 60
    while not list((server.data_dir / "parquet" / "traces").glob("tenant=b/*/*.parquet")):
        assert time.monotonic() < deadline, "nothing was sealed"
        time.sleep(0.2)
    post(server, "traces", spans_body("shop", new_trace_id(), 4), A_ADMIN)  # hot
    post(server, "logs", logs_body("shop", [log("hot line", now_ns())]), A_ADMIN)
    yield server
    server.stop()


def test_a_select_sees_sealed_and_hot_rows_of_its_tenant_only(srv: RunningServer) -> None:
    got = sql(
        srv,
        "SELECT service_name, count(*) AS n, count(DISTINCT trace_id) AS traces, "
        "min(length(trace_id)) AS hex, max(attributes->>'http.route') AS route "
        "FROM spans GROUP BY service_name",
    )
    assert got["columns"] == ["service_name", "n", "traces", "hex", "route"]
    assert got["rows"] == [["shop", 10, 2, 32, "/r/1"]]
    assert got["truncated"] is False
    assert got["types"][1] == "BIGINT"
    logs = sql(srv, "SELECT body->>'$' AS body FROM logs ORDER BY timestamp_unix_nano")
    assert [r[0] for r in logs["rows"]] == ["sealed line", "hot line"]
    theirs = sql(srv, "SELECT DISTINCT service_name FROM spans", token=B_ADMIN)
    assert theirs["rows"] == [[SECRET]]
    assert SECRET not in str(sql(srv, "SELECT * FROM spans"))
    # Identifiers are case-insensitive, as in DuckDB.
    assert sql(srv, "WITH X AS (SELECT 1 AS n FROM Spans) SELECT count(*) FROM x")["rows"] == [[10]]


def test_views_have_the_documented_columns(srv: RunningServer) -> None:
    for view, signal in VIEWS.items():
        got = sql(srv, f"SELECT * FROM {view} LIMIT 0")
        assert got["columns"] == columns(signal)


def other_tenants_file(srv: RunningServer) -> str:
    files = sorted((srv.data_dir / "parquet" / "traces").glob("tenant=b/*/*.parquet"))
    assert files, "tenant b has a sealed file"
    return str(files[0])


HOSTILE = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM glob('/*')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM spans, read_csv('/etc/passwd')",
    "SELECT (SELECT count(*) FROM read_text('/etc/passwd'))",
    "SELECT * FROM read_parquet('{other}')",
    "SELECT * FROM '{other}'",
    "SELECT * FROM hot_spans",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM main.nothing",
    "ATTACH '/tmp/otterscope-sql-test.db' AS x",
    "COPY (SELECT 1) TO '/tmp/otterscope-sql-test.csv'",
    "COPY spans TO '/tmp/otterscope-sql-test.csv'",
    "EXPORT DATABASE '/tmp/otterscope-sql-test'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SET threads = 8",
    "RESET lock_configuration",
    "PRAGMA memory_limit = '64GB'",
    "CALL pragma_version()",
    "CREATE TABLE t AS SELECT 1",
    "CREATE VIEW spans2 AS SELECT * FROM spans",
    "DROP VIEW spans",
    "INSERT INTO spans VALUES (1)",
    "DELETE FROM spans",
    "UPDATE spans SET name = 'x'",
    "SELECT 1; SELECT 2",
    "SELECT 1; ATTACH '/tmp/x.db'",
    "SELECT * FROM read_csv_auto('https://example.com/x.csv')",
    "SELEC nonsense",
    "",
]


@pytest.mark.parametrize("statement", HOSTILE)
def test_hostile_statements_are_refused(srv: RunningServer, statement: str) -> None:
    text = statement.replace("{other}", other_tenants_file(srv))
    r = httpx.post(f"{srv.url}/api/query", json={"query": text}, headers=bearer(A_ADMIN))
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "bad_request" and error["message"]
    assert "root:" not in r.text and SECRET not in r.text
    assert not Path("/tmp/otterscope-sql-test.csv").exists()
    assert not Path("/tmp/otterscope-sql-test.db").exists()


def test_the_server_is_unchanged_after_them(srv: RunningServer) -> None:
    for statement in ("SET enable_external_access = true", "SET threads = 8"):
        sql(srv, statement, status=400)
    assert sql(srv, "SELECT current_setting('enable_external_access')")["rows"] == [[False]]
    r = httpx.get(f"{srv.url}/api/traces", headers=bearer(A_ADMIN))
    assert r.status_code == 200 and len(r.json()["traces"]) == 2


SLOW = (
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10000000000) "
    "SELECT count(*) FROM r"
)


def test_a_slow_query_is_stopped_and_ingest_goes_on(srv: RunningServer) -> None:
    answers: list[httpx.Response] = []

    def slow() -> None:
        answers.append(
            httpx.post(
                f"{srv.url}/api/query", json={"query": SLOW}, headers=bearer(A_ADMIN), timeout=60
            )
        )

    runner = threading.Thread(target=slow)
    started = time.monotonic()
    runner.start()
    acks = []
    while runner.is_alive():
        t = time.monotonic()
        post(srv, "traces", spans_body("during", new_trace_id(), 50), A_ADMIN)
        acks.append(time.monotonic() - t)
        time.sleep(0.1)
    runner.join()
    (answer,) = answers
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "query_timeout"
    assert time.monotonic() - started < 2 + 5 + 3  # the timeout, the kill grace, slack
    assert acks and max(acks) < 1.0, acks


def test_rows_are_capped(srv: RunningServer) -> None:
    many = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 500) "
    got = sql(srv, many + "SELECT n FROM r ORDER BY n")
    assert len(got["rows"]) == 50 and got["truncated"] is True
    assert got["rows"][:3] == [[1], [2], [3]]


def test_deleted_spans_are_not_seen(srv: RunningServer) -> None:
    trace_id = new_trace_id()
    post(srv, "traces", spans_body("doomed", trace_id, 2), A_ADMIN)
    count = f"SELECT count(*) FROM spans WHERE trace_id = '{trace_id}'"
    assert sql(srv, count)["rows"] == [[2]]
    r = httpx.delete(f"{srv.url}/v1/traces/{trace_id}", headers=bearer(A_ADMIN))
    assert r.status_code == 204
    assert sql(srv, count)["rows"] == [[0]]


def test_scopes_and_bodies(srv: RunningServer) -> None:
    r = httpx.post(f"{srv.url}/api/query", json={"query": "SELECT 1"}, headers=bearer(A_READ))
    assert r.status_code == 403
    r = httpx.post(f"{srv.url}/api/query", json={"query": "SELECT 1"})
    assert r.status_code == 401
    for body, words in (
        (b"not json", "not JSON"),
        (b"[]", "JSON object"),
        (b'{"query": 1}', "non-empty string"),
        (b'{"sql": "SELECT 1"}', "unknown field"),
    ):
        r = httpx.post(f"{srv.url}/api/query", content=body, headers=bearer(A_ADMIN))
        assert r.status_code == 400 and words in r.json()["error"]["message"], r.text
    r = httpx.get(f"{srv.url}/api/query", headers=bearer(A_ADMIN))
    assert r.status_code == 405
    assert sql(srv, "SELECT 1 AS one")["rows"] == [[1]]
    assert not any((srv.data_dir / "sql-sandbox").iterdir())  # exports are removed
