"""The group-commit writer: what it does with requests that gave up, and with failures."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otterscope.errors import Unavailable
from otterscope.ingest.writer import Writer
from otterscope.otlp.anyvalue import Limits
from otterscope.otlp.rows import Batch, spans_batch
from otterscope.store.base import KeyIdent
from otterscope.store.embedded.store import EmbeddedStore
from tests.test_store_embedded import T0, resource, span


def batch_of(trace_id: bytes, n: int) -> Batch:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.CopyFrom(resource("svc"))
    ss = rs.scope_spans.add()
    for i in range(n):
        ss.spans.append(span(trace_id, (i + 1).to_bytes(8, "big"), f"op{i}", T0 + i, T0 + i + 10))
    return spans_batch(req, "default", Limits())


class GatedStore(EmbeddedStore):
    """The real store, whose commits wait for the test to open a gate first."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.fail_next = False

    def write(self, batches: Sequence[Batch], keys: Sequence[KeyIdent] = ()) -> int:
        self.entered.set()
        assert self.gate.wait(10)
        if self.fail_next:
            self.fail_next = False
            from otterscope.errors import StoreError

            raise StoreError("disk on fire")
        return super().write(batches, keys)


@pytest.fixture
def gated(tmp_path: Path) -> GatedStore:
    return GatedStore(tmp_path / "data")


def test_a_cancelled_request_is_not_committed_and_the_writer_lives_on(gated: GatedStore) -> None:
    writer = Writer(gated, max_items=10_000, max_spans_per_trace=1000, retry_after=1)
    writer.start()
    a = writer.submit(batch_of(b"\x0a" * 16, 3))
    assert gated.entered.wait(5)  # the writer holds A's commit open
    b = writer.submit(batch_of(b"\x0b" * 16, 3))
    c = writer.submit(batch_of(b"\x0c" * 16, 3))
    assert b.cancel()  # B's client gave up while queued
    gated.gate.set()
    assert a.result(5).rejected == 0
    assert c.result(5).rejected == 0
    assert len(gated.get_trace("default", b"\x0a" * 16)) == 3
    assert gated.get_trace("default", b"\x0b" * 16) == []
    assert len(gated.get_trace("default", b"\x0c" * 16)) == 3
    # The writer is still there for the next request.
    d = writer.submit(batch_of(b"\x0d" * 16, 2))
    assert d.result(5).rejected == 0
    assert writer.drain(5)
    gated.close()


def test_the_per_trace_cap_counts_only_spans_that_were_stored(tmp_path: Path) -> None:
    store = GatedStore(tmp_path / "data")
    store.gate.set()
    writer = Writer(store, max_items=10_000, max_spans_per_trace=100, retry_after=1)
    writer.start()
    trace = b"\x0e" * 16
    store.fail_next = True
    with pytest.raises(Unavailable):
        writer.submit(batch_of(trace, 60)).result(5)
    # The retry of the same 60 spans is not held against a cap they never reached.
    assert writer.submit(batch_of(trace, 60)).result(5).rejected == 0
    # 60 stored: 40 more fit, the rest are turned away.
    second = batch_of(trace, 60)
    assert writer.submit(second).result(5).rejected == 60 - 40
    assert writer.drain(5)
    store.close()


def test_a_key_is_committed_once_even_when_its_retry_is_already_queued(
    gated: GatedStore,
) -> None:
    writer = Writer(gated, max_items=10_000, max_spans_per_trace=1000, retry_after=1)
    writer.start()
    key = ("default", "traces", "k1")
    gated.fail_next = True
    gated.gate.set()
    with pytest.raises(Unavailable):
        writer.submit(batch_of(b"\x1a" * 16, 2), key).result(5)
    assert not gated.key_committed(*key)  # a failed commit keeps no key
    gated.gate.clear()
    gated.entered.clear()  # set by the failed commit: the next wait must see the next one
    first = writer.submit(batch_of(b"\x1b" * 16, 2), key)
    assert gated.entered.wait(5)  # its commit runs: its sender can no longer withdraw it
    # The sender gave up anyway and sent again; the retry waits behind the commit.
    retry = writer.submit(batch_of(b"\x1c" * 16, 2), key)
    gated.gate.set()
    assert first.result(5).rejected == 0 and retry.result(5).rejected == 0
    assert len(gated.get_trace("default", b"\x1b" * 16)) == 2
    assert gated.get_trace("default", b"\x1c" * 16) == []
    # The same key of another tenant is another key.
    other = writer.submit(batch_of(b"\x1d" * 16, 2), ("other", "traces", "k1"))
    assert other.result(5).rejected == 0
    assert writer.drain(5)
    gated.close()


def traces_batch(counts: dict[bytes, int]) -> Batch:
    """One request holding ``counts[trace]`` spans of each trace."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.CopyFrom(resource("svc"))
    ss = rs.scope_spans.add()
    for trace_id, n in counts.items():
        for i in range(n):
            sid = (i + 1).to_bytes(8, "big")
            ss.spans.append(span(trace_id, sid, f"op{i}", T0 + i, T0 + i + 10))
    return spans_batch(req, "default", Limits())


def test_the_per_trace_cap_per_trace_of_a_request_and_its_bounded_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Remember only two traces, so forgetting the oldest shows within a few requests.
    monkeypatch.setattr("otterscope.ingest.writer.TRACE_MEMORY", 2)
    store = EmbeddedStore(tmp_path / "data")
    writer = Writer(store, max_items=10_000, max_spans_per_trace=5, retry_after=1)
    writer.start()
    a, b, c, d, e = (bytes([x]) * 16 for x in (1, 2, 3, 4, 5))
    # Several traces in one request: only the one past the cap loses spans.
    commit = writer.submit(traces_batch({a: 3, b: 7, c: 3})).result(5)
    assert commit.rejected == 2
    assert "more than 5 spans" in commit.message
    assert len(store.get_trace("default", b)) == 5
    # d and e are now the two remembered traces; a and b were forgotten and count afresh.
    assert writer.submit(traces_batch({d: 3, e: 4})).result(5).rejected == 0
    assert writer.submit(traces_batch({a: 5})).result(5).rejected == 0
    # e is still remembered (4 spans): 1 more fits.
    assert writer.submit(traces_batch({e: 3})).result(5).rejected == 2
    assert writer.drain(5)
    store.close()


def test_the_same_key_twice_in_one_group_is_written_once(gated: GatedStore) -> None:
    """A sender gave up while its batch waited in the queue and its retry joined it: one
    group commit holds both, and only the first is stored."""
    writer = Writer(gated, max_items=10_000, max_spans_per_trace=1000, retry_after=1)
    writer.start()
    gated.gate.clear()
    blocker = writer.submit(batch_of(b"\x2a" * 16, 1))
    assert gated.entered.wait(5)  # the writer is busy: what follows waits in the queue
    key = ("default", "traces", "same")
    first = writer.submit(batch_of(b"\x2b" * 16, 2), key)
    again = writer.submit(batch_of(b"\x2c" * 16, 2), key)
    gated.gate.set()
    assert blocker.result(5).rejected == 0
    assert first.result(5).rejected == 0 and again.result(5).rejected == 0
    assert len(gated.get_trace("default", b"\x2b" * 16)) == 2
    assert gated.get_trace("default", b"\x2c" * 16) == []
    assert writer.drain(5)
    gated.close()
