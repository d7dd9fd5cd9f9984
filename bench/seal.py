"""Seal a stopped server's data dir into Parquet and report what is on disk.

    python bench/seal.py DATA_DIR

Opens the embedded store on DATA_DIR (the server must be stopped: one process owns a data
dir), seals every hot segment into Parquet with ``seal_now()``, closes it, then counts the
rows of the sealed files per signal. Prints one JSON line (the last line of stdout).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import duckdb
from common import apparent_size, disk_usage

from otterscope.store.embedded.store import EmbeddedStore


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    data_dir = Path(argv[0])
    before = disk_usage(data_dir)
    t0 = time.perf_counter()
    store = EmbeddedStore(data_dir)
    opened = time.perf_counter() - t0
    t1 = time.perf_counter()
    store.seal_now()
    sealed_s = time.perf_counter() - t1
    store.close()
    parquet = data_dir / "parquet"
    per_signal: dict[str, dict[str, int]] = {}
    con = duckdb.connect()
    for sig_dir in sorted(parquet.iterdir()) if parquet.exists() else []:
        files = sorted(str(p) for p in sig_dir.rglob("*.parquet"))
        rows = 0
        row_groups = 0
        if files:
            rows = int(con.execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchone()[0])
            row_groups = int(
                con.execute(
                    "SELECT count(DISTINCT (file_name, row_group_id)) FROM parquet_metadata(?)",
                    [files],
                ).fetchone()[0]
            )
        per_signal[sig_dir.name] = {
            "files": len(files),
            "rows": rows,
            "row_groups": row_groups,
            "bytes": apparent_size(sig_dir),
            "disk_bytes": disk_usage(sig_dir),
        }
    # Per column compressed size of the sealed files: where the bytes go.
    columns: dict[str, dict[str, int]] = {}
    for sig, info in per_signal.items():
        if not info["files"]:
            continue
        files = sorted(str(p) for p in (parquet / sig).rglob("*.parquet"))
        res = con.execute(
            "SELECT path_in_schema, sum(total_compressed_size), sum(total_uncompressed_size) "
            "FROM parquet_metadata(?) GROUP BY 1 ORDER BY 2 DESC",
            [files],
        ).fetchall()
        columns[sig] = {str(name): int(comp) for name, comp, _unc in res}
    result = {
        "data_dir": str(data_dir),
        "disk_bytes_before_seal": before,
        "open_seconds": round(opened, 3),
        "seal_seconds": round(sealed_s, 3),
        "parquet": per_signal,
        "parquet_columns": columns,
        "hot_disk_bytes_after": disk_usage(data_dir / "hot"),
        "total_disk_bytes_after": disk_usage(data_dir),
        "total_apparent_bytes_after": apparent_size(data_dir),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
