"""Telling a hot log's torn tail (a crash during a commit) from damage, on real logs.

Every cut a crash can make inside the last commit must read as torn (dropped quietly);
garbage inside earlier commits, data after the end marker and a cut of a closed segment
must read as damage (quarantined and reported). The server-level tests are in
``test_damage.py``.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from otterscope.otlp.anyvalue import Limits
from otterscope.otlp.rows import Batch, spans_batch
from otterscope.store.embedded.damage import ending
from otterscope.store.embedded.segment import Segment, compact, read_log
from otterscope.store.embedded.store import EmbeddedOptions, EmbeddedStore


def batch(n: int) -> Batch:
    spans = [
        Span(
            trace_id=os.urandom(16),
            span_id=os.urandom(8),
            name=f"op {i}",
            start_time_unix_nano=1_700_000_000_000_000_000 + i,
            end_time_unix_nano=1_700_000_000_000_001_000 + i,
        )
        for i in range(n)
    ]
    service = KeyValue(key="service.name", value=AnyValue(string_value="shop"))
    req = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=[service]), scope_spans=[ScopeSpans(spans=spans)]
            )
        ]
    )
    return spans_batch(req, "default", Limits())


def write_log(hot: Path, commits: int, close: bool) -> tuple[Path, list[int]]:
    """A traces log of ``commits`` commits; the file size after each."""
    segment = Segment(1, hot)
    ends = []
    for i in range(commits):
        segment.append("traces", compact(batch(3 + i).table))
        segment.sync()
        ends.append(segment.path("traces").stat().st_size)
    if close:
        segment.close_logs()
    return segment.path("traces"), ends


def classify(path: Path) -> tuple[str, int]:
    _, read = read_log(path, "traces")
    return ending(path, read.good, read.failure).kind, read.commits


def test_a_whole_log_ends_clean_open_or_closed(tmp_path: Path) -> None:
    path, _ = write_log(tmp_path, 3, close=False)
    assert classify(path) == ("clean", 3)
    other = tmp_path / "closed"
    other.mkdir()
    path, _ = write_log(other, 3, close=True)
    _, read = read_log(path, "traces")
    end = ending(path, read.good, read.failure)
    assert (end.kind, end.closed, read.commits) == ("clean", True, 3)


def test_every_cut_inside_the_last_commit_is_a_torn_tail(tmp_path: Path) -> None:
    path, ends = write_log(tmp_path, 2, close=False)
    whole = path.read_bytes()
    for cut in range(ends[0] + 1, ends[1]):
        path.write_bytes(whole[:cut])
        assert classify(path) == ("torn", 1), cut


@pytest.mark.parametrize("garbage", [b"\x5a", b"\x00", b"\xff"])
def test_garbage_inside_an_earlier_commit_is_damage(tmp_path: Path, garbage: bytes) -> None:
    path, ends = write_log(tmp_path, 3, close=False)
    whole = path.read_bytes()
    for at in range(ends[0], ends[1] - 16, 2):
        damaged = bytearray(whole)
        damaged[at : at + 16] = garbage * 16
        path.write_bytes(bytes(damaged))
        kind, commits = classify(path)
        # Bytes that only padding held change nothing: then every commit reads back.
        assert (kind, commits) in (("damaged", 1), ("clean", 3)), at


def test_data_after_the_end_marker_is_damage(tmp_path: Path) -> None:
    path, _ = write_log(tmp_path, 2, close=True)
    with open(path, "ab") as f:
        f.write(b"\xff" * 24)
    assert classify(path) == ("damaged", 2)


def test_a_cut_older_segment_is_quarantined_and_its_readable_commits_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # One segment per commit, none sealed: the older ones were closed by their rotation.
    store = EmbeddedStore(tmp_path / "a", EmbeddedOptions(seal_rows=1))
    for n in (2, 3, 4):
        store.write([batch(n)])
    # What a crash leaves behind (a copy: the first store still holds its files).
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    store.close()
    first = tmp_path / "b" / "hot" / "seg-000001.traces.arrows"
    os.truncate(first, first.stat().st_size - 30)
    found = first.read_bytes()
    with caplog.at_level(logging.WARNING):
        again = EmbeddedStore(tmp_path / "b", EmbeddedOptions(seal_rows=1))
    try:
        assert again.stats().hot_rows["traces"] == 3 + 4
        copy = tmp_path / "b" / "quarantine" / "hot" / "seg-000001.traces.arrows"
        assert copy.read_bytes() == found
        assert first.stat().st_size < len(found)  # cut back to what could be read
        (record,) = [r for r in caplog.records if r.name == "otterscope.quarantine"]
        assert record.levelno == logging.ERROR
        assert "acknowledged commits were cut off" in record.getMessage()
        assert again.quarantine.counter.value(kind="hot_log") == 1
    finally:
        again.close()


def test_a_file_that_cannot_be_opened_for_want_of_descriptors_is_not_damage(
    tmp_path: Path,
) -> None:
    """No file descriptor left is the process's trouble, not the file's: a healthy file
    must stay where it is (StoreError), never be quarantined."""
    import resource

    import pyarrow.parquet as pq

    from otterscope.errors import StoreError
    from otterscope.store.embedded.damage import parquet_problem

    path = tmp_path / "good.parquet"
    pq.write_table(batch(3).table, path)
    assert parquet_problem(path, "traces", pages=True) is None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # A new descriptor takes the lowest free number, and must stay below the limit.
    lowest_free = os.open(os.devnull, os.O_RDONLY)
    os.close(lowest_free)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
    try:
        with pytest.raises(StoreError, match="Too many open files"):
            parquet_problem(path, "traces", pages=True)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert path.exists()
