"""Bytes per item on disk for data that never repeats, through the store's own code path.

    python bench/storage.py --signal traces --items 200000

``ingest.py`` sends its 200 templates over and over (with fresh ids and times), so attribute
values repeat every 100k spans and Parquet compresses them a little better than real data.
This script builds one distinct template per request instead (nothing repeats except what
real data repeats: routes, services, methods …), writes them with ``EmbeddedStore.write``
(8 batches per commit, as the group-commit writer does), seals with ``seal_now()`` and
measures the hot segment before sealing, the Parquet files, the whole data dir, and the
compressed bytes per column. No server, no HTTP: it is quick and does not depend on load.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import duckdb
from common import OUT_DIR, apparent_size, build_templates, disk_usage

from otterscope.otlp import rows, wire
from otterscope.otlp.anyvalue import Limits
from otterscope.store.embedded.store import EmbeddedStore

BUILD = {"traces": rows.spans_batch, "logs": rows.logs_batch, "metrics": rows.metrics_batch}


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--signal", choices=list(BUILD), default="traces")
    p.add_argument("--items", type=int, default=200_000)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--group", type=int, default=8)
    p.add_argument("--data-dir", type=Path, default=Path("/tmp/otterscope-bench/storage"))
    args = p.parse_args()

    n_req = max(1, args.items // args.batch)
    t0 = time.perf_counter()
    templates = build_templates(args.signal, n_req, args.batch, seed=7)
    print(
        f"built {n_req} distinct {args.signal} bodies in {time.perf_counter() - t0:.1f}s",
        flush=True,
    )
    shutil.rmtree(args.data_dir, ignore_errors=True)
    args.data_dir.mkdir(parents=True)
    store = EmbeddedStore(args.data_dir)
    pending = []
    items = 0
    for t in templates:
        msg = wire.parse_request(args.signal, t.render(), "protobuf")
        batch = BUILD[args.signal](msg, "default", Limits())  # type: ignore[operator]
        items += batch.table.num_rows
        pending.append(batch)
        if len(pending) == args.group:
            store.write(pending)
            pending = []
    if pending:
        store.write(pending)
    store.close()
    hot = disk_usage(args.data_dir)
    store = EmbeddedStore(args.data_dir)
    t1 = time.perf_counter()
    store.seal_now()
    seal_s = time.perf_counter() - t1
    store.close()
    files = sorted(str(f) for f in (args.data_dir / "parquet").rglob("*.parquet"))
    con = duckdb.connect()
    stored = int(con.execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchone()[0])
    cols = con.execute(
        "SELECT path_in_schema, sum(total_compressed_size), sum(total_uncompressed_size) "
        "FROM parquet_metadata(?) GROUP BY 1 ORDER BY 2 DESC",
        [files],
    ).fetchall()
    pq = apparent_size(args.data_dir / "parquet")
    total = disk_usage(args.data_dir)
    unit = {"traces": "span", "logs": "record", "metrics": "point"}[args.signal]
    print(
        f"\n=== storage: {stored:,} distinct {args.signal} ({args.batch}/request, {args.group} requests/commit) ==="
    )
    print(f"hot segment logs, unsealed {hot / stored:7.1f} B/{unit}")
    print(
        f"sealed Parquet              {pq / stored:7.1f} B/{unit}   ({len(files)} files, seal took {seal_s:.1f}s)"
    )
    print(f"whole data dir after seal   {total / stored:7.1f} B/{unit}")
    print("largest columns (compressed B/item):")
    for name, comp, unc in cols[:10]:
        print(f"  {name:<34} {comp / stored:6.1f}   (uncompressed {unc / stored:6.1f})")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out = OUT_DIR / f"storage-{args.signal}.json"
    out.write_text(
        json.dumps(
            {
                "signal": args.signal,
                "rows": stored,
                "hot_bytes_per_item": hot / stored,
                "sealed_bytes_per_item": pq / stored,
                "total_bytes_per_item": total / stored,
                "seal_seconds": seal_s,
                "columns": {str(n): int(c) for n, c, _ in cols},
            },
            indent=2,
        )
    )
    print(f"JSON: {out}")
    shutil.rmtree(args.data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
