"""Service graph metrics: the requests between services (and to and from virtual nodes) as
Tempo's metrics-generator and the OpenTelemetry Collector's servicegraph connector expose
them, so Grafana's Tempo "Service graph" tab works through a Prometheus scraping otterscope.

The store pairs the spans (``service_sql.service_graph``); this module turns each
(tenant, client, server, connection type) row into the four series of that edge:
``traces_service_graph_request_total``, ``traces_service_graph_request_failed_total``
(created at the first failure, as Tempo does) and the
``traces_service_graph_request_server_seconds`` / ``_client_seconds`` histograms with
Tempo's default buckets, labelled ``client``, ``server`` and ``connection_type`` (no
``job``). They live in the accumulator with every other series, so they are kept in its
snapshot and bounded by the same per-metric series limit (edges beyond
``metrics.max_series_per_metric`` go to the overflow series).

A client span's server span may be committed a little after it: the pairing lags
``metrics.service_graph_wait`` behind the newest commit (as Tempo waits before it calls an
unpaired client span a request to a virtual node). ``Lag`` remembers when each fold's
newest ingest number was reached, to know up to where that wait has passed.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from typing import Any

import orjson

from otterscope.store.base import SERVICE_GRAPH_BOUNDS_S

Row = dict[str, Any]

REQUESTS = "traces.service_graph.request"
FAILED = "traces.service_graph.request.failed"
SERVER_SECONDS = "traces.service_graph.request.server"
CLIENT_SECONDS = "traces.service_graph.request.client"
NAMES = (REQUESTS, FAILED, SERVER_SECONDS, CLIENT_SECONDS)
# No resource: the series belong to an edge, not a service, and have no ``job`` (nor a
# target_info), as Tempo's.
RESOURCE = ""


def attributes(row: Row) -> str:
    """The labels of an edge's series (JSON, keys sorted)."""
    return orjson.dumps(
        {
            "client": str(row["client"]),
            "connection_type": str(row["connection_type"] or ""),
            "server": str(row["server"]),
        },
        option=orjson.OPT_SORT_KEYS,
    ).decode()


def buckets(row: Row, side: str) -> list[int]:
    """Per-bucket counts from the row's cumulative ``cle_i`` or ``sle_i`` counts."""
    cumulative = [int(row[f"{side}le_{i}"]) for i in range(len(SERVICE_GRAPH_BOUNDS_S))]
    cumulative.append(int(row["calls"]))
    return [cumulative[0]] + [b - a for a, b in itertools.pairwise(cumulative)]


class Lag:
    """When the ingest numbers were reached, to pair spans ``wait_s`` after their commit."""

    def __init__(self, wait_s: float) -> None:
        self.wait_s = wait_s
        self._seen: collections.deque[tuple[float, int]] = collections.deque(maxlen=4096)
        self._lock = threading.Lock()

    def upto(self) -> int | None:
        """The newest ingest number reached at least ``wait_s`` ago (None: the newest one
        now, when there is no wait; -1: none yet)."""
        if self.wait_s <= 0:
            return None
        limit = time.monotonic() - self.wait_s
        with self._lock:
            ready = [seq for at, seq in self._seen if at <= limit]
            while len(self._seen) > 1 and self._seen[1][0] <= limit:
                self._seen.popleft()
        return max(ready, default=-1)

    def reached(self, seq: int) -> None:
        with self._lock:
            if not self._seen or self._seen[-1][1] < seq:
                self._seen.append((time.monotonic(), seq))
