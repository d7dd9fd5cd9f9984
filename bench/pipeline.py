"""In-process cost of each ingest stage, without HTTP: where a span's microseconds go.

    python bench/pipeline.py --signal traces --batch 500 --requests 200 --group 8

Stages, timed one after the other on the same pre-built bodies (single thread):
  parse     wire.parse_request (protobuf -> message, upb)
  rows      rows.<signal>_batch (the per-item Python loop, attributes JSON, Arrow table)
    attrs   of which: attributes -> dict (anyvalue.attributes_to_json) + orjson.dumps,
            estimated by running them alone over the same messages
    arrow   of which: building the Arrow table from Python lists, estimated alone
  (parse/rows figures are CPU time of the one thread, so a busy machine does not skew them)
  decode (C) otterscope.otlp.fast.spans_batch_from_bytes when the code has it (traces)
  write     EmbeddedStore.write of ``--group`` batches per call (one transaction + commit,
            as the group-commit writer does), on a fresh data dir in /tmp
  write+gil the same writes while another thread runs pure-Python work (the event loop's
            situation in the server): shows how much the writer loses to the GIL
Prints µs per item for each stage and the implied single-core ceiling in items/s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
import pyarrow as pa
from common import OUT_DIR, build_templates

from otterscope.otlp import anyvalue, rows, wire
from otterscope.otlp.anyvalue import LimitCounter, Limits
from otterscope.store.embedded.store import EmbeddedStore

BUILD = {"traces": rows.spans_batch, "logs": rows.logs_batch, "metrics": rows.metrics_batch}


def _items_attrs(signal: str, msg: object) -> list[object]:
    """Every attribute list the rows builder turns into JSON, per item."""
    out: list[object] = []
    if signal == "traces":
        for rs in msg.resource_spans:  # type: ignore[attr-defined]
            for ss in rs.scope_spans:
                for sp in ss.spans:
                    out.append(sp.attributes)
    elif signal == "logs":
        for rl in msg.resource_logs:  # type: ignore[attr-defined]
            for sl in rl.scope_logs:
                for rec in sl.log_records:
                    out.append(rec.attributes)
    else:
        for rm in msg.resource_metrics:  # type: ignore[attr-defined]
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    for dp in getattr(m, kind).data_points:
                        out.append(dp.attributes)
    return out


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--signal", choices=list(BUILD), default="traces")
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--group", type=int, default=8, help="batches per store.write (group commit)")
    p.add_argument("--data-dir", type=Path, default=Path("/tmp/otterscope-bench/pipeline"))
    p.add_argument(
        "--switch-interval",
        type=float,
        default=None,
        help="sys.setswitchinterval (seconds) for the write+gil stage; Python's default is 0.005",
    )
    args = p.parse_args()

    templates = build_templates(args.signal, min(args.requests, 100), args.batch)
    bodies = [templates[i % len(templates)].render() for i in range(args.requests)]
    items = sum(templates[i % len(templates)].items for i in range(args.requests))
    limits = Limits()
    res: dict[str, float] = {}

    clock = time.thread_time  # CPU time: the machine may be shared, wall time would lie
    t = clock()
    msgs = [wire.parse_request(args.signal, b, "protobuf") for b in bodies]
    res["parse"] = clock() - t

    t = clock()
    batches = [BUILD[args.signal](m, "default", limits) for m in msgs]  # type: ignore[operator]
    res["rows"] = clock() - t

    # The C spans decoder (otterscope.otlp.fast), when the code has one: bytes -> batch.
    if args.signal == "traces":
        try:
            from otterscope.otlp.fast import spans_batch_from_bytes
        except ImportError:
            spans_batch_from_bytes = None
        if spans_batch_from_bytes is not None:
            t = clock()
            for b in bodies:
                spans_batch_from_bytes(b, "default", limits)
            res["decode (C, otlp.fast)"] = clock() - t

    # attrs alone: the same conversion the builder does, per item
    attr_lists = [_items_attrs(args.signal, m) for m in msgs]
    t = clock()
    counter = LimitCounter()
    for lst in attr_lists:
        for kvs in lst:
            d, _ = anyvalue.attributes_to_json(kvs, limits, counter)
            orjson.dumps(d).decode()
    res["rows.attrs"] = clock() - t

    # arrow alone: lists -> Arrow arrays for the same columns
    pylists = [b.table.to_pydict() for b in batches]
    schema = batches[0].table.schema
    t = clock()
    for cols in pylists:
        pa.Table.from_arrays([pa.array(cols[f.name], f.type) for f in schema], schema=schema)
    res["rows.arrow"] = clock() - t

    # field access alone: touching every scalar field the builder reads (protobuf getattr cost)
    if args.signal == "traces":
        t = clock()
        for m in msgs:
            for rs in m.resource_spans:  # type: ignore[attr-defined]
                for ss in rs.scope_spans:
                    for sp in ss.spans:
                        (
                            sp.trace_id,
                            sp.span_id,
                            sp.parent_span_id,
                            sp.trace_state,
                            sp.flags,
                            sp.name,
                            sp.kind,
                            sp.start_time_unix_nano,
                            sp.end_time_unix_nano,
                            sp.status.code,
                            sp.status.message,
                            sp.dropped_attributes_count,
                            len(sp.events),
                            sp.dropped_events_count,
                            len(sp.links),
                            sp.dropped_links_count,
                        )
        res["rows.fields"] = clock() - t

    def write_all(store: EmbeddedStore) -> tuple[float, float, list[float]]:
        per: list[float] = []
        c0 = time.process_time()  # DuckDB works on its own threads too
        t0 = time.perf_counter()
        for i in range(0, len(batches), args.group):
            s = time.perf_counter()
            store.write(batches[i : i + args.group])
            per.append(time.perf_counter() - s)
        return time.perf_counter() - t0, time.process_time() - c0, per

    def fresh_store(name: str) -> EmbeddedStore:
        d = args.data_dir / name
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        return EmbeddedStore(d)

    store = fresh_store("plain")
    wall, cpu, per = write_all(store)
    store.close()
    res["write"] = wall
    res["write.process_cpu"] = cpu
    per.sort()
    commit_ms = {"p50": per[len(per) // 2] * 1000, "max": per[-1] * 1000}

    # The same writes while another thread keeps the GIL busy with Python work.
    stop = threading.Event()

    def spin() -> None:
        x = 0
        while not stop.is_set():
            for i in range(1000):
                x += i

    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    th = threading.Thread(target=spin, daemon=True)
    th.start()
    store = fresh_store("gil")
    wall2, _cpu2, per2 = write_all(store)
    stop.set()
    th.join()
    store.close()
    res["write+gil"] = wall2
    per2.sort()
    shutil.rmtree(args.data_dir, ignore_errors=True)

    unit = {"traces": "span", "logs": "record", "metrics": "point"}[args.signal]
    print(
        f"\n=== ingest pipeline stages: {args.signal}, {args.requests} requests x {args.batch}, "
        f"group of {args.group} per commit ({items:,} {unit}s) ==="
    )
    decode = res["parse"] + res["rows"]
    for key in (
        "parse",
        "rows",
        "rows.fields",
        "rows.attrs",
        "rows.arrow",
        "decode (C, otlp.fast)",
        "write",
        "write.process_cpu",
        "write+gil",
    ):
        if key not in res:
            continue
        us = res[key] / items * 1e6
        print(
            f"  {key:<28} {us:7.2f} µs/{unit}   -> {items / res[key]:>10,.0f} {unit}s/s on one core"
        )
    print(
        f"  {'decode total (parse+rows)':<28} {decode / items * 1e6:7.2f} µs/{unit}   -> {items / decode:>10,.0f} {unit}s/s on one core"
    )
    print(
        f"  commit (store.write of {args.group}) p50 {commit_ms['p50']:.1f} ms, max {commit_ms['max']:.1f} ms; "
        f"with a busy Python thread p50 {per2[len(per2) // 2] * 1000:.1f} ms"
    )
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out = OUT_DIR / f"pipeline-{args.signal}-b{args.batch}-g{args.group}.json"
    out.write_text(
        json.dumps(
            {
                "items": items,
                "seconds": res,
                "us_per_item": {k: v / items * 1e6 for k, v in res.items()},
                "commit_ms": commit_ms,
            },
            indent=2,
        )
    )
    print(f"JSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
