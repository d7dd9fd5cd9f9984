"""Damaged files never stop the server nor vanish in silence (SPEC §4), over real sockets.

Each test writes data through a real ``otterscope serve``, stops it (SIGTERM or SIGKILL),
damages files the way a disk, an operator or a copy gone wrong does, and starts it again:
it must start, answer /ready, still serve the good data, keep the damaged file in
``<data-dir>/quarantine/`` under its original path, say so in one ERROR line, count it in
``otterscope_quarantined_files_total`` and take new data.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from tests.conftest import RunningServer, free_port, start_server
from tests.payloads import (
    log,
    logs_body,
    new_span_id,
    new_trace_id,
    now_ns,
    post,
    span,
    traces_body,
)

SEALING = {"storage": {"seal_interval": "1s"}}


def send_trace(srv: RunningServer, service: str = "shop") -> str:
    trace_id = new_trace_id()
    root = new_span_id()
    start = now_ns()
    spans = [span(trace_id, root, "GET /cart", start)] + [
        span(trace_id, new_span_id(), f"step {i}", start + i * 1000, parent=root) for i in range(3)
    ]
    post(srv.url, "traces", traces_body(service, spans))
    return trace_id


def spans_of(srv: RunningServer, trace_id: str) -> int:
    r = httpx.get(f"{srv.url}/api/traces/{trace_id}", timeout=30)
    if r.status_code == 404:
        return 0
    assert r.status_code == 200, r.text
    return len(r.json()["spans"])


def parquet_files(srv: RunningServer, signal: str = "traces") -> list[Path]:
    return sorted((srv.data_dir / "parquet" / signal).rglob("seg-*.parquet"))


def sealed_trace(srv: RunningServer) -> tuple[str, Path]:
    """Send a trace and wait until it is sealed; return it and its Parquet file."""
    trace_id = send_trace(srv)
    time.sleep(1.1)
    send_trace(srv, "filler")  # the commit after seal_interval rotates the segment
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for path in parquet_files(srv):
            ids = pq.read_table(path, columns=["trace_id"]).column(0).to_pylist()
            if bytes.fromhex(trace_id) in ids:
                return trace_id, path
        time.sleep(0.05)
    raise AssertionError("the segment was not sealed")


def quarantined(srv: RunningServer, kind: str) -> float:
    text = httpx.get(f"{srv.url}/metrics", timeout=30).text
    m = re.search(rf'^otterscope_quarantined_files_total\{{kind="{kind}"\}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def error_lines(srv: RunningServer) -> list[str]:
    return [line for line in srv.log().splitlines() if " ERROR otterscope.quarantine" in line]


def assert_takes_new_data(srv: RunningServer) -> None:
    trace_id = send_trace(srv)
    assert spans_of(srv, trace_id) == 4


# -- Parquet -------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_damaged_parquet_file_is_quarantined_at_start_up(tmp_path: Path, damage: str) -> None:
    srv = start_server(tmp_path, SEALING)
    kept, _ = sealed_trace(srv)
    lost, path = sealed_trace(srv)
    assert srv.stop() == 0
    data = path.read_bytes()
    path.write_bytes(
        {"truncated": data[: len(data) // 2], "garbage": os.urandom(4096), "empty": b""}[damage]
    )
    srv.start()
    assert httpx.get(f"{srv.url}/ready").status_code == 200
    assert spans_of(srv, kept) == 4
    assert spans_of(srv, lost) == 0
    inside = path.relative_to(srv.data_dir)
    assert (srv.data_dir / "quarantine" / inside).exists()
    assert not path.exists()
    (line,) = error_lines(srv)
    assert str(inside) in line and "quarantine" in line
    assert "traces" in line and "tenant default" in line and "hour " in line
    assert quarantined(srv, "parquet") == 1
    assert_takes_new_data(srv)
    srv.stop()


def test_a_stray_file_in_an_hour_folder_is_quarantined(tmp_path: Path) -> None:
    srv = start_server(tmp_path, SEALING)
    kept, path = sealed_trace(srv)
    assert srv.stop() == 0
    stray = path.parent / "copy of seg.parquet"
    stray.write_bytes(b"not parquet at all")
    srv.start()
    assert spans_of(srv, kept) == 4
    assert (srv.data_dir / "quarantine" / stray.relative_to(srv.data_dir)).exists()
    assert not stray.exists()
    assert len(error_lines(srv)) == 1
    assert quarantined(srv, "stray") == 1
    assert_takes_new_data(srv)
    srv.stop()


@pytest.mark.parametrize("damage", ["pages", "truncated"])
def test_a_parquet_file_damaged_while_running_is_quarantined_and_the_query_answered(
    tmp_path: Path, damage: str
) -> None:
    srv = start_server(tmp_path, SEALING)
    kept, _ = sealed_trace(srv)
    lost, path = sealed_trace(srv)
    assert spans_of(srv, lost) == 4  # read once: DuckDB keeps the file's metadata
    data = bytearray(path.read_bytes())
    if damage == "pages":
        # Bit rot in the data pages; the footer (what start-up checks) stays whole.
        footer = int.from_bytes(data[-8:-4], "little") + 8
        data[4 : len(data) - footer] = os.urandom(len(data) - footer - 4)
    else:
        del data[len(data) // 2 :]
    path.write_bytes(bytes(data))
    # Every read of the file fails: the first query finds it, moves it away and answers.
    r = httpx.get(f"{srv.url}/api/traces/{lost}", timeout=30)
    assert r.status_code == 404, r.text
    assert spans_of(srv, kept) == 4
    assert (srv.data_dir / "quarantine" / path.relative_to(srv.data_dir)).exists()
    assert len(error_lines(srv)) == 1
    assert quarantined(srv, "parquet") == 1
    assert_takes_new_data(srv)
    srv.stop()


# -- snapshots and state -------------------------------------------------------------------


def delta_counter(value: int) -> dict[str, Any]:
    point = {
        "startTimeUnixNano": str(now_ns() - 10**9),
        "timeUnixNano": str(now_ns()),
        "asInt": str(value),
    }
    metric = {
        "name": "orders",
        "sum": {"dataPoints": [point], "aggregationTemporality": 1, "isMonotonic": True},
    }
    return {
        "resourceMetrics": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]
                },
                "scopeMetrics": [{"scope": {"name": "tests"}, "metrics": [metric]}],
            }
        ]
    }


def orders_total(srv: RunningServer) -> float:
    text = httpx.get(f"{srv.url}/metrics", timeout=30).text
    m = re.search(r"^orders_total\{[^}]*\} (\S+)$", text, re.M)
    assert m, text
    return float(m.group(1))


def test_a_damaged_metrics_snapshot_is_rebuilt_from_the_stored_points(tmp_path: Path) -> None:
    srv = start_server(tmp_path)
    for n in (3, 4):
        post(srv.url, "metrics", delta_counter(n))
    assert orders_total(srv) == 7
    assert srv.stop() == 0  # writes the snapshot
    snapshot = srv.data_dir / "metrics-state.json"
    snapshot.write_bytes(snapshot.read_bytes()[: snapshot.stat().st_size // 2])
    srv.start()
    assert orders_total(srv) == 7
    assert (srv.data_dir / "quarantine" / "metrics-state.json").exists()
    (line,) = error_lines(srv)
    assert "metrics-state.json" in line and "rebuilding" in line
    assert quarantined(srv, "metrics_state") == 1
    post(srv.url, "metrics", delta_counter(5))
    assert orders_total(srv) == 12
    srv.stop()


def test_a_damaged_alert_state_is_quarantined_and_the_server_starts(tmp_path: Path) -> None:
    srv = start_server(tmp_path)
    rule = {
        "name": "checkout errors",
        "serviceId": "checkout",
        "metricName": "error_rate",
        "condition": "gt",
        "threshold": 0.5,
        "windowSeconds": 600,
        "webhooks": [],
    }
    r = httpx.post(f"{srv.url}/api/alerts/configs", json=rule, timeout=30)
    assert r.status_code == 201, r.text
    assert srv.stop() == 0
    state = srv.data_dir / "alerts.json"
    state.write_bytes(state.read_bytes()[:-7])
    srv.start()
    assert (srv.data_dir / "quarantine" / "alerts.json").exists()
    (line,) = error_lines(srv)
    assert "alerts.json" in line and "alert rule" in line
    assert quarantined(srv, "alert_state") == 1
    assert httpx.get(f"{srv.url}/api/alerts/configs").json()["configs"] == []
    r = httpx.post(f"{srv.url}/api/alerts/configs", json=rule, timeout=30)
    assert r.status_code == 201, r.text
    srv.stop()


# -- hot logs ------------------------------------------------------------------------------


def hot_log(srv: RunningServer, signal: str = "traces") -> Path:
    (path,) = sorted((srv.data_dir / "hot").glob(f"seg-*.{signal}.arrows"))
    return path


def test_a_torn_tail_after_a_crash_is_dropped_with_a_warning(tmp_path: Path) -> None:
    srv = start_server(tmp_path)
    kept = send_trace(srv)
    size = hot_log(srv).stat().st_size
    torn = send_trace(srv)
    srv.kill()
    path = hot_log(srv)
    # What a crash halfway through the second commit leaves behind.
    os.truncate(path, size + (path.stat().st_size - size) // 2)
    srv.start()
    assert spans_of(srv, kept) == 4
    assert spans_of(srv, torn) == 0
    assert not (srv.data_dir / "quarantine").exists()
    assert error_lines(srv) == []
    (warning,) = [line for line in srv.log().splitlines() if "WARNING otterscope.store" in line]
    assert path.name in warning and "1 commits (4 rows) were read back" in warning
    assert_takes_new_data(srv)
    srv.stop()


def test_garbage_inside_a_hot_log_is_quarantined_and_reported(tmp_path: Path) -> None:
    srv = start_server(tmp_path)
    kept = send_trace(srv)
    size = hot_log(srv).stat().st_size
    damaged = send_trace(srv)
    after = send_trace(srv)
    srv.kill()
    path = hot_log(srv)
    original = path.read_bytes()
    data = bytearray(original)
    data[size : size + 64] = os.urandom(64)
    path.write_bytes(bytes(data))
    srv.start()
    assert spans_of(srv, kept) == 4
    assert spans_of(srv, damaged) == 0 and spans_of(srv, after) == 0
    copy = srv.data_dir / "quarantine" / path.relative_to(srv.data_dir)
    assert copy.read_bytes() == bytes(data)
    (line,) = error_lines(srv)
    assert path.name in line and "traces commit after the first 1 (4 rows, kept)" in line
    assert f"last {len(original) - size} of the {len(original)} bytes" in line
    assert quarantined(srv, "hot_log") == 1
    assert_takes_new_data(srv)
    srv.stop()
    # Cut back to what was read: the next start reads it cleanly and reports nothing more.
    srv.start()
    assert spans_of(srv, kept) == 4
    assert len(error_lines(srv)) == 1
    srv.stop()


def test_a_closed_hot_log_cut_short_is_reported_as_lost_commits(tmp_path: Path) -> None:
    srv = start_server(tmp_path)
    kept = send_trace(srv)
    size = hot_log(srv).stat().st_size
    cut = send_trace(srv)
    post(srv.url, "logs", logs_body("shop", [log("hello", now_ns())]))
    assert srv.stop() == 0  # closes the logs: each ends with the end-of-stream marker
    path = hot_log(srv)
    os.truncate(path, size + 40)
    srv.start()
    assert spans_of(srv, kept) == 4
    assert spans_of(srv, cut) == 0
    (line,) = error_lines(srv)
    assert "acknowledged commits were cut off" in line and path.name in line
    assert quarantined(srv, "hot_log") == 1
    assert_takes_new_data(srv)
    srv.stop()


def test_a_damaged_line_of_the_deletes_is_quarantined_and_the_others_still_apply(
    tmp_path: Path,
) -> None:
    srv = start_server(tmp_path)
    first, second, kept = send_trace(srv), send_trace(srv), send_trace(srv)
    for trace_id in (first, second):
        r = httpx.delete(f"{srv.url}/v1/traces/{trace_id}", timeout=30)
        assert r.status_code == 204, r.text
    srv.kill()
    deletes = srv.data_dir / "deletes.jsonl"
    lines = deletes.read_bytes().splitlines(keepends=True)
    assert len(lines) == 2
    # The first delete's line damaged; a torn append (never acknowledged) after the last.
    damaged = b"#" * (len(lines[0]) - 1) + b"\n" + lines[1] + lines[1][:20]
    deletes.write_bytes(damaged)
    srv.start()
    assert spans_of(srv, second) == 0  # its delete still applies
    assert spans_of(srv, first) == 4  # its delete is the one lost, and said so
    assert spans_of(srv, kept) == 4
    assert (srv.data_dir / "quarantine" / "deletes.jsonl").read_bytes() == damaged
    assert deletes.read_bytes() == lines[1]
    (line,) = error_lines(srv)
    assert "deletes.jsonl" in line and "1 deletes" in line
    assert quarantined(srv, "deletes") == 1
    r = httpx.delete(f"{srv.url}/v1/traces/{first}", timeout=30)
    assert r.status_code == 204, r.text
    srv.kill()
    srv.start()  # the appended delete did not join a torn line: nothing more to report
    assert spans_of(srv, first) == 0 and spans_of(srv, second) == 0
    assert len(error_lines(srv)) == 1
    srv.stop()


def test_a_damaged_cursor_key_is_replaced_and_only_old_cursors_fail(tmp_path: Path) -> None:
    srv = start_server(tmp_path)
    for _ in range(2):
        send_trace(srv)
    page = httpx.get(f"{srv.url}/api/traces", params={"limit": 1}, timeout=30).json()
    cursor = page["nextCursor"]
    assert cursor
    assert srv.stop() == 0
    (srv.data_dir / "cursor.key").write_bytes(b"short")
    srv.start()
    assert (srv.data_dir / "quarantine" / "cursor.key").read_bytes() == b"short"
    assert len((srv.data_dir / "cursor.key").read_bytes()) == 32
    (line,) = error_lines(srv)
    assert "cursor.key" in line and "cursors" in line
    assert quarantined(srv, "cursor_key") == 1
    r = httpx.get(f"{srv.url}/api/traces", params={"limit": 1, "cursor": cursor}, timeout=30)
    assert r.status_code == 400, r.text
    page = httpx.get(f"{srv.url}/api/traces", params={"limit": 1}, timeout=30).json()
    r = httpx.get(
        f"{srv.url}/api/traces", params={"limit": 1, "cursor": page["nextCursor"]}, timeout=30
    )
    assert r.status_code == 200 and len(r.json()["traces"]) == 1
    srv.stop()


def test_a_damaged_layout_version_refuses_the_start_with_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "otterscope.json").write_bytes(b'{"layout_vers')
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTTERSCOPE_")}
    done = subprocess.run(
        [sys.executable, "-m", "otterscope", "serve", "--data-dir", str(data)]
        + ["--http-port", str(free_port()), "--grpc-port", str(free_port())],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode != 0
    (line,) = done.stderr.decode().strip().splitlines()
    assert "otterscope.json" in line and '{"layout_version": 1}' in line
    assert not (data / "quarantine").exists()


def test_a_metrics_snapshot_ahead_of_the_store_is_rebuilt(tmp_path: Path) -> None:
    # The snapshot covers a commit that a damaged hot log then loses: the numbers of the
    # lost rows are given to new rows, which the metrics must still count.
    srv = start_server(tmp_path)
    post(srv.url, "metrics", delta_counter(3))
    post(srv.url, "logs", logs_body("shop", [log("hello", now_ns())]))
    send_trace(srv)  # the newest rows
    assert srv.stop() == 0  # the snapshot covers the trace; the logs are closed
    os.truncate(hot_log(srv), 100)
    srv.start()
    assert quarantined(srv, "hot_log") == 1
    assert orders_total(srv) == 3
    post(srv.url, "metrics", delta_counter(4))
    assert orders_total(srv) == 7
    assert "rebuilt from the stored points" in srv.log()
    srv.stop()
