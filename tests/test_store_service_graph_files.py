"""The service graph fold reads only the span files that can hold the other side of a new
request (their kept trace summaries name one of the new traces), and still pairs a server
span with a client span sealed long before it, in a file with or without summaries."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from otterscope.store.embedded import attrindex
from otterscope.store.embedded.store import EmbeddedStore
from tests.test_store_embedded import MS, T0, resource, span, write_spans


def _client(trace: bytes, sid: bytes, start: int) -> Span:
    s = span(trace, sid, "GET", start, 30 * MS)
    s.kind = Span.SPAN_KIND_CLIENT
    return s


def _graph(store: EmbeddedStore, after: int) -> dict[tuple[str, str, str], int]:
    found = store.metric_aggregates(store.last_seq(), (), (after, store.last_seq()))
    return {(r["client"], r["server"], r["connection_type"]): r["calls"] for r in found.graph}


def _sealed_client_then_server(store: EmbeddedStore, drop_summaries: bool) -> None:
    trace, parent = b"\x01" * 16, b"\x02" * 8
    write_spans(store, [(resource("frontend"), [_client(trace, parent, T0)])])
    store.seal_now()
    # Another file in the window that holds none of the new traces.
    other = [_client(bytes([9, i]) * 8, bytes([i]) * 8, T0 + i * MS) for i in range(1, 20)]
    write_spans(store, [(resource("batch"), other)])
    store.seal_now()
    first, second = sorted(store._files, key=lambda f: f.segment)
    if drop_summaries:
        ident = store._attr_indexes.ident(first.path)
        assert ident is not None
        attrindex.summary_path(store._index_at(first.path)(ident)).unlink()
        store._attr_indexes.drop(first.path)
    after = store.last_seq()
    server = span(trace, b"\x03" * 8, "GET /x", T0 + MS, 10 * MS, parent=parent)
    write_spans(store, [(resource("cart"), [server])])
    with store._sources_lock.read():
        spans = store._snapshot("traces", None)
        read = store._graph_files(spans, after, store.last_seq(), T0 - 10**12, T0 + 10**12)
    assert first in read and second not in read
    assert _graph(store, after)[("frontend", "cart", "")] == 1


@pytest.mark.parametrize("drop_summaries", [False, True], ids=["summaries", "none"])
def test_a_server_span_pairs_with_a_client_sealed_before_it(
    tmp_path: Path, drop_summaries: bool
) -> None:
    store = EmbeddedStore(tmp_path / "data")
    try:
        _sealed_client_then_server(store, drop_summaries)
    finally:
        store.close()
