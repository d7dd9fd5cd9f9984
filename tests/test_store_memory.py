"""The hot-byte budget (``storage.hot_bytes_budget``) on a real store and a real server.

Hot rows of every signal count against one budget: the active segment is retired at half
of it, and while retired and active segments take all of it a commit waits for sealing
(and is refused once it has waited ``unsealed_wait_s``). Nothing acknowledged is lost:
every row a commit returned for is read back after sealing.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from otterscope.errors import StoreError
from otterscope.store.embedded.store import EmbeddedOptions, EmbeddedStore
from tests.conftest import RunningServer
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
from tests.test_store_embedded import T0, resource, write_logs, write_spans
from tests.test_store_embedded import log as log_record
from tests.test_store_embedded import span as make_span

MakeServer = Callable[..., RunningServer]

BUDGET = 2 * 1024 * 1024


def _spans(store: EmbeddedStore, n: int, start: int) -> int:
    spans = [
        make_span(
            os.urandom(16),
            os.urandom(8),
            "GET /cart",
            T0 + start + i,
            1000,
            attrs={"user.id": f"user-{start + i}", "pad": "x" * 200},
        )
        for i in range(n)
    ]
    return write_spans(store, [(resource("cart"), spans)])


def _logs(store: EmbeddedStore, n: int, start: int) -> int:
    records = [log_record(T0 + start + i, f"line {start + i} " + "y" * 200) for i in range(n)]
    return write_logs(store, [(resource("cart"), records)])


def _sealed_rows(data_dir: Path) -> dict[str, int]:
    """Rows in the sealed Parquet files of each signal (everything, once sealed)."""
    return {
        signal: sum(
            pq.ParquetFile(f).metadata.num_rows
            for f in (data_dir / "parquet" / signal).rglob("*.parquet")
        )
        for signal in ("traces", "logs")
    }


@pytest.fixture
def budgeted(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(
        tmp_path / "data",
        EmbeddedOptions(
            seal_rows=10**9,
            seal_bytes=1 << 40,
            seal_interval_s=1e9,
            hot_bytes_budget=BUDGET,
            unsealed_wait_s=0.5,
        ),
    )


def test_hot_bytes_count_every_signal_and_drop_to_zero_when_sealed(
    budgeted: EmbeddedStore,
) -> None:
    assert budgeted.hot_bytes() == 0
    _spans(budgeted, 200, 0)
    after_spans = budgeted.hot_bytes()
    assert after_spans > 200 * 200  # the padding alone
    _logs(budgeted, 200, 0)
    assert budgeted.hot_bytes() > after_spans + 200 * 200
    budgeted.seal_now()
    assert budgeted.hot_bytes() == 0
    budgeted.close()


def test_budget_retires_early_then_holds_commits_until_sealing_frees_memory(
    budgeted: EmbeddedStore,
) -> None:
    """Spans and logs alternate; no maintenance runs, so the budget fills up. Hot memory
    never passes the budget by more than one commit; the commit that would is refused
    (never acknowledged), and once sealing runs commits go on."""
    acknowledged = {"traces": 0, "logs": 0}
    biggest_commit = 0
    refused = None
    for k in range(400):
        before = budgeted.hot_bytes()
        try:
            if k % 2:
                _logs(budgeted, 50, k * 100)
                acknowledged["logs"] += 50
            else:
                _spans(budgeted, 50, k * 100)
                acknowledged["traces"] += 50
        except StoreError as exc:
            refused = exc
            break
        biggest_commit = max(biggest_commit, budgeted.hot_bytes() - before)
        assert budgeted.hot_bytes() <= BUDGET + biggest_commit
    assert refused is not None, "the budget never held a commit back"
    assert "sealing is behind" in str(refused)
    # Refused only once the hot rows took the whole budget, spread over 2+ segments: the
    # active one was retired at half the budget, before any segment count limit.
    assert budgeted.hot_bytes() >= BUDGET
    assert budgeted.stats().hot_rows["traces"] > 0

    # A waiting commit goes through as soon as sealing frees memory.
    done = threading.Event()

    def commit() -> None:
        _spans(budgeted, 50, 10**9)
        done.set()

    budgeted.options = replace(budgeted.options, unsealed_wait_s=30.0)
    waiter = threading.Thread(target=commit)
    waiter.start()
    time.sleep(0.2)
    assert not done.is_set()  # still waiting: nothing was sealed yet
    budgeted.maintain(time.time_ns(), retention=False)
    waiter.join(10)
    assert done.is_set()
    acknowledged["traces"] += 50
    assert budgeted.hot_bytes() < BUDGET

    budgeted.seal_now()
    assert budgeted.hot_bytes() == 0
    assert _sealed_rows(budgeted.layout.root) == acknowledged
    budgeted.close()


def test_server_hot_bytes_stay_within_the_budget_under_load(
    make_server: MakeServer, tmp_path: Path
) -> None:
    """Over HTTP, spans and logs at once against a 4 MiB budget: the gauge never passes
    the budget by more than the largest commit, several segments get sealed, and every
    acknowledged item is stored."""
    config = tmp_path / "small.yaml"
    config.write_text("storage:\n  hot_bytes_budget: 4MiB\n")
    server = make_server(args=["--config", str(config)])
    seen: list[float] = []
    stop = threading.Event()

    def watch() -> None:
        with httpx.Client(timeout=10) as c:
            while not stop.is_set():
                text = c.get(f"{server.url}/metrics").text
                for line in text.splitlines():
                    if line.startswith("otterscope_hot_bytes "):
                        seen.append(float(line.split()[1]))
                time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    sent = {"traces": 0, "logs": 0}
    t = now_ns()
    for _ in range(60):  # each post asserts its 200
        trace = new_trace_id()
        spans = [
            span(trace, new_span_id(), "op", t + i, attributes={"pad": "p" * 300})
            for i in range(200)
        ]
        post(server.url, "traces", traces_body("svc", spans))
        sent["traces"] += 200
        post(server.url, "logs", logs_body("svc", [log("z" * 300, t + i) for i in range(200)]))
        sent["logs"] += 200
    stop.set()
    watcher.join(10)
    assert seen and max(seen) <= 4 * 1024 * 1024 + 512 * 1024, max(seen)
    assert server.stop() == 0
    # Sealed early by the budget while it ran (nothing else would: one hour, few rows).
    assert len(list((server.data_dir / "parquet" / "traces").rglob("*.parquet"))) >= 2
    store = EmbeddedStore(server.data_dir)
    store.seal_now()
    store.close()
    assert _sealed_rows(server.data_dir) == sent
