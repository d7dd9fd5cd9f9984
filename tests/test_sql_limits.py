"""``POST /api/query`` within bounds: answer bytes, the sandbox's memory, queries at once,
spill files, and settings that would show the server's paths.

The server's RSS is read from /proc while a query that makes 500 MB of text runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import httpx
import pytest
import yaml

from otterscope.config import load
from otterscope.errors import ConfigError
from otterscope.query.sql_runner import AnswerTooLarge, collect
from tests.conftest import RunningServer, start_server

MAX_BYTES = 2**20
HOSTILE = "SELECT repeat('x', 20000000) FROM (SELECT unnest(generate_series(1, 25)))"
SLOW = (
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10000000000) "
    "SELECT count(*) FROM r"
)
# A hash aggregate far bigger than 64 MB: DuckDB spills it.
SPILLING = (
    "SELECT count(*) FROM (SELECT DISTINCT i * 7919 % 100000007 AS v, "
    "repeat('y', 40) || i AS pad FROM (SELECT unnest(range(1000000)) AS i))"
)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = {
        "sql": {
            "timeout": "6s",
            "memory_limit": "64MB",
            "max_bytes": MAX_BYTES,
            "max_concurrent": 2,
        }
    }
    server = start_server(tmp_path_factory.mktemp("sql-limits"), config)
    yield server
    server.stop()


def query(srv: RunningServer, text: str) -> httpx.Response:
    return httpx.post(f"{srv.url}/api/query", json={"query": text}, timeout=60)


def pid(srv: RunningServer) -> int:
    assert srv.proc is not None
    return srv.proc.pid


def rss(process: int) -> int:
    for line in Path(f"/proc/{process}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def watching(srv: RunningServer, text: str, look: Callable[[], None]) -> httpx.Response:
    """The answer to ``text``, calling ``look`` every few milliseconds while it runs."""
    answered = threading.Event()

    def watch() -> None:
        while not answered.is_set():
            look()
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        return query(srv, text)
    finally:
        answered.set()
        watcher.join()


def running_queries(srv: RunningServer) -> list[Path]:
    return list((srv.data_dir / "sql-sandbox").glob("*"))


def test_a_large_answer_is_cut_at_max_bytes(srv: RunningServer) -> None:
    r = query(
        srv, "SELECT i, repeat('x', 100000) AS s FROM (SELECT unnest(range(100)) AS i) ORDER BY i"
    )
    assert r.status_code == 200, r.text[:300]
    assert len(r.content) <= MAX_BYTES
    got = r.json()
    assert got["truncated"] is True
    assert 8 <= len(got["rows"]) <= 10  # 100 kB each: what fits in 1 MiB
    assert got["rows"] == [[i, "x" * 100000] for i in range(len(got["rows"]))]
    # Below the caps nothing is cut.
    small = query(srv, "SELECT unnest(range(3)) AS i").json()
    assert small["rows"] == [[0], [1], [2]] and small["truncated"] is False


def test_an_error_quoting_a_huge_value_is_a_short_400(srv: RunningServer) -> None:
    r = query(srv, "SELECT error(repeat('x', 20000000))")
    assert r.status_code == 400, r.text[:300]
    message = r.json()["error"]["message"]
    assert len(message) < 10_000 and "characters in all" in message


def test_a_query_making_500_mb_leaves_the_server_small(srv: RunningServer) -> None:
    server = pid(srv)
    before = rss(server)
    peaks = [before]
    r = watching(srv, HOSTILE, lambda: peaks.append(rss(server)))
    peak = max(peaks)
    assert r.status_code == 400, r.text[:300]
    error = r.json()["error"]
    assert error["code"] == "bad_request"
    assert "more memory than the SQL sandbox has" in error["message"], error
    assert peak - before < 64 * 2**20, (before, peak)
    # The sandbox still starts and answers under its limits afterwards.
    assert query(srv, "SELECT 42 AS n").json()["rows"] == [[42]]


def test_more_queries_than_max_concurrent_get_429(srv: RunningServer) -> None:
    answers: list[httpx.Response] = []
    slow = [threading.Thread(target=lambda: answers.append(query(srv, SLOW))) for _ in range(2)]
    for t in slow:
        t.start()
    deadline = time.monotonic() + 5
    while len(running_queries(srv)) < 2:  # each running query has its export directory
        assert time.monotonic() < deadline, "the two slow queries did not start"
        time.sleep(0.02)
    refused = query(srv, "SELECT 1")
    for t in slow:
        t.join()
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "overloaded"
    assert "sql.max_concurrent" in refused.json()["error"]["message"]
    assert int(refused.headers["Retry-After"]) >= 1
    assert [a.status_code for a in answers] == [503, 503], [a.text for a in answers]
    # The slots come back, whichever way the queries ended.
    assert query(srv, "SELECT 1 AS one").json()["rows"] == [[1]]
    assert query(srv, "SELEC nonsense").status_code == 400
    assert query(srv, "SELECT 2 AS two").json()["rows"] == [[2]]


def test_spill_files_stay_in_the_data_directory(srv: RunningServer) -> None:
    cwd_tmp = Path(os.readlink(f"/proc/{pid(srv)}/cwd")) / ".tmp"
    in_sandbox: set[str] = set()
    in_cwd: set[str] = set()

    def look() -> None:
        in_sandbox.update(p.name for p in (srv.data_dir / "sql-sandbox").glob("*/tmp/*"))
        if cwd_tmp.is_dir():
            in_cwd.update(p.name for p in cwd_tmp.iterdir())

    r = watching(srv, SPILLING, look)
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [[1000000]]
    assert not in_cwd, in_cwd
    assert any(name.startswith("duckdb_temp") for name in in_sandbox), in_sandbox
    assert not running_queries(srv)  # and removed with the query's directory


PATH_SETTINGS = [
    "allowed_paths",
    "allowed_directories",
    "temp_directory",
    "home_directory",
    "secret_directory",
    "extension_directory",
]


@pytest.mark.parametrize("name", PATH_SETTINGS)
def test_settings_naming_paths_are_not_shown(srv: RunningServer, name: str) -> None:
    for text in (
        f"SELECT current_setting('{name}')",
        f"SELECT current_setting('{name.upper()}') AS x FROM spans",
    ):
        r = query(srv, text)
        assert r.status_code == 400, r.text
        assert "not shown" in r.json()["error"]["message"]
        assert str(srv.data_dir) not in r.text


def test_current_setting_takes_only_a_plain_name(srv: RunningServer) -> None:
    for text in (
        "SELECT current_setting('allowed_' || 'paths')",
        "SELECT current_setting(n) FROM (SELECT 'temp_directory' AS n)",
        "SELECT list_transform(['allowed_paths'], s -> current_setting(s))",
    ):
        r = query(srv, text)
        assert r.status_code == 400, r.text
        assert "string literal" in r.json()["error"]["message"], r.text
    assert query(srv, "SELECT current_setting('threads') AS t").json()["rows"] == [[1]]


def test_no_setting_shows_a_path_of_the_server(srv: RunningServer) -> None:
    names = [
        n for (n,) in duckdb.connect().execute("SELECT name FROM duckdb_settings()").fetchall()
    ]
    listed = set(names)
    shown: dict[str, object] = {}
    refused = []
    while names:  # one query for all, minus each one refused
        each = ", ".join(f"current_setting('{n}') AS \"{n}\"" for n in names)
        r = query(srv, f"SELECT {each}")
        if r.status_code == 200:
            shown = dict(zip(r.json()["columns"], r.json()["rows"][0], strict=True))
            break
        message = r.json()["error"]["message"]
        assert r.status_code == 400, r.text
        named = next(n for n in names if f"'{n}'" in message or f'"{n}"' in message)
        if "not shown" in message:
            refused.append(named)
        names.remove(named)  # or a setting of an extension the sandbox does not load
    assert set(PATH_SETTINGS) & listed <= set(refused)
    server_cwd = os.readlink(f"/proc/{pid(srv)}/cwd")
    text = repr(shown)
    for secret in (str(srv.data_dir), "sql-sandbox", server_cwd, os.path.expanduser("~")):
        assert secret not in text, secret


def python(code: str) -> subprocess.Popen[bytes]:
    pipe = subprocess.PIPE
    return subprocess.Popen([sys.executable, "-c", code], stdin=pipe, stdout=pipe, stderr=pipe)


def test_the_answer_is_read_with_a_cap_and_a_deadline() -> None:
    chatty = python("import sys; sys.stdout.write('x' * 10**7)")
    with pytest.raises(AnswerTooLarge):
        collect(chatty, b"", 2**20, time.monotonic() + 30)
    chatty.kill()
    chatty.wait()
    silent = python("import time; time.sleep(30)")
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        collect(silent, b"", 2**20, started + 0.5)
    assert time.monotonic() - started < 5
    silent.kill()
    silent.wait()
    fine = python("import sys; sys.stdout.write(sys.stdin.read().upper())")
    assert collect(fine, b"answer", 2**20, time.monotonic() + 30) == (b"ANSWER", b"")
    assert fine.wait() == 0


@pytest.mark.parametrize(
    ("key", "value"), [("max_concurrent", 0), ("max_bytes", "0MiB"), ("memory_limit", "lots")]
)
def test_sql_limits_are_checked_at_start_up(tmp_path: Path, key: str, value: object) -> None:
    path = tmp_path / "otterscope.yaml"
    path.write_text(yaml.safe_dump({"sql": {key: value}}))
    with pytest.raises(ConfigError, match=f"sql.{key}"):
        load({}, str(path), {})
