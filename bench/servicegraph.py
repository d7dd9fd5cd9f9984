"""What the service graph metrics add to a metrics fold (``Store.metric_aggregates``).

    flock /work/wt/bench.lock .venv/bin/python bench/servicegraph.py --traces 100000

1. Writes ``--traces`` traces straight into an EmbeddedStore under ``--data-dir``, in
   commits of ``--batch`` traces; each trace is four spans: frontend SERVER root, frontend
   CLIENT, backend SERVER (its child), backend CLIENT to PostgreSQL (``db.system``) over
   ``--pairs`` frontend/backend service pairs, 5 % with status ERROR.
2. Times the fold of everything (after 0) and of the last commit only, each ``--runs``
   times, without the service graph (``graph=None``, what a fold cost before) and with it
   (the range (after, newest]); checks the service graph counted every request once.
3. Prints JSON; deletes the data dir unless ``--keep``. Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import time
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from otterscope.otlp.anyvalue import Limits
from otterscope.otlp.rows import spans_batch
from otterscope.store.embedded.store import EmbeddedStore


def _kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def make_span(
    trace_id: bytes,
    ids: list[bytes],
    t0: int,
    failed: bool,
    shape: tuple[int, bytes, int, int],
    attrs: tuple[KeyValue, ...],
) -> Span:
    """Span ``i`` of a trace (index, parent id, kind, milliseconds); the backend's SERVER
    span (2) fails in a failed trace."""
    i, parent, kind, ms = shape
    return Span(
        trace_id=trace_id,
        span_id=ids[i],
        parent_span_id=parent,
        name=f"op{i}",
        kind=kind,
        start_time_unix_nano=t0 + i * 10**6,
        end_time_unix_nano=t0 + i * 10**6 + ms * 10**6,
        attributes=list(attrs),
        status=Status(code=2 if failed and i == 2 else 0),
    )


def request(rng: random.Random, traces: int, pairs: int, base_ns: int) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    by_service: dict[str, list[Span]] = {}
    for _ in range(traces):
        pair = rng.randrange(pairs)
        front, back = f"frontend-{pair}", f"backend-{pair}"
        trace_id = os.urandom(16)
        ids = [os.urandom(8) for _ in range(4)]
        t0 = base_ns + rng.randrange(60 * 10**9)
        failed = rng.random() < 0.05

        def span(shape: tuple[int, bytes, int, int], *attrs: KeyValue) -> Span:
            return make_span(trace_id, ids, t0, failed, shape, attrs)  # noqa: B023 - called at once

        db = (_kv("db.system", "postgresql"), _kv("db.name", "shop"))
        by_service.setdefault(front, []).extend([span((0, b"", 2, 80)), span((1, ids[0], 3, 60))])
        by_service.setdefault(back, []).extend(
            [span((2, ids[1], 2, 50)), span((3, ids[2], 3, 5), *db)]
        )
    for service, spans in by_service.items():
        rs = req.resource_spans.add()
        rs.resource.attributes.append(_kv("service.name", service))
        rs.scope_spans.add().spans.extend(spans)
    return req


def timed(fn: object, runs: int) -> tuple[float, object]:
    out: list[float] = []
    result: object = None
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()  # type: ignore[operator]
        out.append(time.perf_counter() - t)
    return statistics.median(out) * 1000, result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=2_000)
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument(
        "--data-dir", type=Path, default=Path("/work/wt/benchdata/grafana-servicegraph")
    )
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    shutil.rmtree(args.data_dir, ignore_errors=True)
    args.data_dir.mkdir(parents=True)
    rng = random.Random(42)
    store = EmbeddedStore(args.data_dir)
    base = time.time_ns() - 120 * 10**9
    seqs = []
    t = time.perf_counter()
    for _ in range(args.traces // args.batch):
        batch = spans_batch(request(rng, args.batch, args.pairs, base), "default", Limits())
        seqs.append(store.write([batch]))
    write_s = time.perf_counter() - t
    last, before_last = seqs[-1], seqs[-2] if len(seqs) > 1 else 0
    res: dict[str, object] = {"traces": args.traces, "spans": args.traces * 4, "write_s": write_s}
    for label, after in (("all", 0), ("last_commit", before_last)):
        plain, _ = timed(lambda a=after: store.metric_aggregates(a), args.runs)
        with_graph, folded = timed(
            lambda a=after: store.metric_aggregates(a, (), (a, None)), args.runs
        )
        rows = folded.graph  # type: ignore[attr-defined]
        calls = sum(int(r["calls"]) for r in rows)
        res[label] = {
            "fold_ms_without_graph": round(plain, 1),
            "fold_ms_with_graph": round(with_graph, 1),
            "graph_rows": len(rows),
            "graph_requests": calls,
        }
    expected = {"all": args.traces * 3, "last_commit": args.batch * 3}  # pair, db, user
    for label, want in expected.items():
        got = res[label]["graph_requests"]  # type: ignore[index]
        res[label]["requests_expected"] = want  # type: ignore[index]
        assert got == want, (label, got, want)
    res["load_average"] = os.getloadavg()
    res["last_seq"] = last
    store.close()
    if not args.keep:
        shutil.rmtree(args.data_dir, ignore_errors=True)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
