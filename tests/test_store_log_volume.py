"""``EmbeddedStore.log_volume`` against a count made here from the records written: hot rows,
sealed Parquet files, both at once and after a reopen, per tenant, under the log search's
conditions."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from otterscope.query.model import LogQuery
from otterscope.store.embedded.store import EmbeddedStore
from tests.test_store_embedded import HOUR, MINUTE, T0, log, resource, write_logs

TRACE = bytes.fromhex("ab" * 16)


@dataclass(frozen=True)
class Sent:
    tenant: str
    service: str
    time_ns: int
    severity: int
    body: str
    trace_id: bytes
    shard: int


def write_random(store: EmbeddedStore, rng: random.Random, n: int, after: int = 0) -> list[Sent]:
    """``n`` records in two tenants and three services over three hours, in a few requests."""
    sent = []
    for tenant in ("acme", "other"):
        by_service: dict[str, list[Any]] = {}
        for i in range(n):
            rec = Sent(
                tenant,
                rng.choice(["api", "worker", "db"]),
                T0 + after + rng.randrange(0, 3 * HOUR),
                rng.choice([0, 1, 4, 5, 9, 12, 13, 16, 17, 20, 21, 24, 25, 127]),
                rng.choice(["request ok", "Connection REFUSED", "disk full"]) + f" {i}",
                TRACE if rng.random() < 0.2 else b"",
                rng.randrange(3),
            )
            sent.append(rec)
            by_service.setdefault(rec.service, []).append(
                log(
                    rec.time_ns,
                    rec.body,
                    severity=rec.severity,
                    trace_id=rec.trace_id,
                    span_id=b"\x01" * 8 if rec.trace_id else b"",
                    attrs={"shard": rec.shard},
                )
            )
        write_logs(store, [(resource(s), recs) for s, recs in by_service.items()], tenant)
    return sent


def severity_class(n: int) -> int:
    return (n + 3) // 4 if 1 <= n <= 24 else 0


def reference(
    sent: list[Sent], tenant: str, q: LogQuery, step: int, keep: Callable[[Sent], bool]
) -> list[dict[str, int]]:
    counts = Counter(
        (r.time_ns // step, severity_class(r.severity))
        for r in sent
        if r.tenant == tenant and q.start_ns <= r.time_ns <= q.end_ns and keep(r)
    )
    return [{"step": s, "severity_class": c, "records": n} for (s, c), n in sorted(counts.items())]


WINDOW = {"start_ns": T0 + 20 * MINUTE, "end_ns": T0 + 2 * HOUR + 50 * MINUTE}
CASES: list[tuple[dict[str, Any], Callable[[Sent], bool]]] = [
    ({}, lambda r: True),
    ({"service": "api"}, lambda r: r.service == "api"),
    ({"min_severity": 13}, lambda r: r.severity >= 13),
    ({"min_severity": 1, "service": "db"}, lambda r: r.severity >= 1 and r.service == "db"),
    ({"text": "connection refused"}, lambda r: "REFUSED" in r.body),
    ({"trace_id": TRACE}, lambda r: r.trace_id == TRACE),
    ({"attributes": (("shard", "2"),)}, lambda r: r.shard == 2),
    ({"attributes": (("service.name", "worker"),)}, lambda r: r.service == "worker"),
]


def check_all(store: EmbeddedStore, sent: list[Sent]) -> None:
    for tenant in ("acme", "other", "nobody"):
        for step in (MINUTE, 7 * MINUTE, HOUR):
            for conditions, keep in CASES:
                q = LogQuery(**WINDOW, **conditions)
                got = store.log_volume(tenant, q, step)
                assert got == reference(sent, tenant, q, step, keep), (tenant, step, conditions)


@pytest.mark.parametrize("seed", [1, 2])
def test_counts_hot_sealed_mixed_and_reopened(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    store = EmbeddedStore(tmp_path / "data")
    try:
        sent = write_random(store, rng, 150)
        check_all(store, sent)  # hot rows only
        store.seal_now()
        assert store.stats().hot_rows["logs"] == 0
        check_all(store, sent)  # Parquet only
        sent += write_random(store, rng, 80, after=30 * MINUTE)
        assert store.stats().hot_rows["logs"] == 160
        check_all(store, sent)  # both
    finally:
        store.close()
    reopened = EmbeddedStore(tmp_path / "data")
    try:
        check_all(reopened, sent)
    finally:
        reopened.close()


def test_volume_counts_what_the_search_finds(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "data")
    try:
        sent = write_random(store, random.Random(3), 200)
        store.seal_now()
        sent += write_random(store, random.Random(4), 100)
        # The same record sent twice is stored twice, and listed and counted twice.
        write_logs(store, [(resource("api"), [log(T0 + HOUR, "twice", severity=9)])] * 2, "acme")
        for conditions, _ in CASES:
            q = LogQuery(**WINDOW, **conditions, limit=1000)
            found = store.search_logs("acme", q).items
            counted = store.log_volume("acme", q, 10 * MINUTE)
            assert sum(r["records"] for r in counted) == len(found), conditions
            by_step = Counter(r["timestamp_unix_nano"] // (10 * MINUTE) for r in found)
            assert {
                s: sum(r["records"] for r in counted if r["step"] == s) for s in by_step
            } == dict(by_step)
    finally:
        store.close()
