"""Figures for SCALE.md: per-writer rates, bytes per entry, query time per GB, by engine.

Measured here, on this machine, then scaled in SCALE.md to 1 billion entries a month:

- entries/s of one writer (``log_sync`` of a realistic interaction in a loop, hash-only,
  default durability), and of sealing (JSONL to Parquet, one process);
- bytes per entry as JSONL and as sealed Parquet (zstd);
- one aggregate query over every sealed entry (failure rate and mean latency per model)
  with DuckDB on the Parquet files, with ``log.sql``, with pandas via ``entries()``, and
  with Dask (``to_dask`` + ``safety_rates`` on a 2-worker LocalCluster), as seconds per
  GB of Parquet and per million entries.

Baselines, measured in the same run: a bare JSON-lines append (no validation, hashing or
chain), pyarrow's own JSON-to-Parquet conversion (no checks, no manifest), the JSONL
size, and a full scan of the JSONL files in Python.

Writes ``bench/out/scale.json``. Run: ``python bench/scale.py [--entries 1000000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.json as pj
import pyarrow.parquet as pq

from comply_lab import AuditLogger, open_log
from comply_lab.audit import FileStorage
from comply_lab.lab.stats import safety_rates
from comply_lab.sample import write_sample
from comply_lab.storage.compaction import compact

sys.path.insert(0, str(Path(__file__).parent))
from _common import END, report, row, timed

QUERY = (
    "select model, count(*) entries, avg(case when safety_passed then 0 else 1 end) "
    "failure_rate, avg(latency_ms) mean_ms from {source} group by model"
)


def _writer_rate(path: Path, n: int) -> float:
    """Entries/s of one writer logging a realistic interaction in a loop."""
    with AuditLogger(FileStorage(path)) as logger:
        started = time.perf_counter()
        for i in range(n):
            logger.log_sync(
                input=f"Summarize ticket {i} for the support team",
                output="The customer reports a billing error; refund approved.",
                provider="openai",
                model="gpt-4o",
                conversation_id=f"c-{i // 4}",
                latency_ms=812.5,
                input_tokens=412,
                output_tokens=96,
                metadata={"user_id": f"u-{i % 1000}", "department": "support"},
            )
        return n / (time.perf_counter() - started)


def _size(path: Path, pattern: str) -> int:
    return sum(f.stat().st_size for f in path.glob(pattern))


def _bare_writer_rate(path: Path, n: int) -> float:
    """Baseline: append the same fields as JSON lines, no validation, hashing or chain."""
    path.mkdir(parents=True)
    fd = os.open(path / "bare.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    started = time.perf_counter()
    for i in range(n):
        record = {
            "input": f"Summarize ticket {i} for the support team",
            "output": "The customer reports a billing error; refund approved.",
            "model": "gpt-4o",
            "latency_ms": 812.5,
            "metadata": {"user_id": f"u-{i % 1000}", "department": "support"},
        }
        os.write(fd, json.dumps(record).encode() + b"\n")
    rate = n / (time.perf_counter() - started)
    os.close(fd)
    return rate


def _naive_query(path: Path) -> dict[str, list[float]]:
    """Baseline: parse every JSONL line and aggregate in Python (a full scan)."""
    totals: dict[str, list[float]] = {}
    for file in sorted(path.glob("audit_*.jsonl")):
        with file.open("rb") as f:
            for line in f:
                record = json.loads(line)
                t = totals.setdefault(record["model"], [0, 0, 0.0])
                t[0] += 1
                t[1] += not record["safety_passed"]
                t[2] += record["latency_ms"]
    return totals


def measure(entries: int) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Run every measurement on ``entries`` sample entries over 30 days."""
    root = Path(tempfile.mkdtemp(prefix="comply-lab-scale-"))
    writer = _writer_rate(root / "writer", 100_000)
    bare = _bare_writer_rate(root / "bare", 100_000)
    path = root / "log"
    write_sample(lambda c: AuditLogger(FileStorage(path), clock=c), entries, 30, end=END).close()
    jsonl_bytes = _size(path, "audit_*.jsonl")
    naive_s = timed(lambda: _naive_query(path), 1)
    raw = root / "raw.parquet"
    convert_s = timed(lambda: _raw_convert(path, raw), 1)
    started = time.perf_counter()
    compact(path)
    seal_s = time.perf_counter() - started
    parquet_bytes = _size(path, "date=*/*.parquet")
    files = f"{path}/date=*/*.parquet"

    connection = duckdb.connect()
    source = f"read_parquet('{files}', hive_partitioning = true)"
    duck_s = timed(lambda: connection.sql(QUERY.format(source=source)).fetchall())
    log = open_log(path, progress=False)
    sql_s = timed(lambda: log.sql(QUERY.format(source="entries")))
    columns = ["model", "safety_passed", "latency_ms"]
    pandas_s = timed(lambda: safety_rates(log.entries(columns=columns), by="model"))

    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0"
        ) as cluster,
        Client(cluster),
    ):
        dask_s = timed(lambda: safety_rates(log.to_dask(columns=columns), by="model"))
    shutil.rmtree(root)
    gb = parquet_bytes / 1e9
    results = [
        row("one writer, log_sync", writer, bare, None, "entries/s"),
        row(
            "sealing, one process",
            entries / seal_s,
            entries / convert_s,
            None,
            "entries/s",
        ),
        row(
            "bytes per entry, sealed Parquet",
            parquet_bytes / entries,
            jsonl_bytes / entries,
            None,
            "bytes",
            higher_is_better=False,
        ),
    ]
    for name, seconds in [
        ("DuckDB on the files", duck_s),
        ("log.sql", sql_s),
        ("pandas entries()", pandas_s),
        ("Dask to_dask(), 2 workers", dask_s),
    ]:
        results.append(
            row(
                f"aggregate, {name}",
                seconds,
                naive_s,
                None,
                "s",
                higher_is_better=False,
                note=f"{seconds / gb:.2f} s per GB of Parquet; baseline: JSONL scanned in Python",
            )
        )
    return results, {"parquet_gb": gb, "entries": entries}


def _raw_convert(path: Path, target: Path) -> None:
    tables = [pj.read_json(f) for f in sorted(path.glob("audit_*.jsonl"))]
    pq.write_table(
        pa.concat_tables(tables, promote_options="permissive"), target, compression="zstd"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    args = parser.parse_args()
    results, sizes = measure(args.entries)
    print(f"{sizes['entries']:,} entries over 30 days, {sizes['parquet_gb'] * 1000:.1f} MB Parquet")
    report("scale", results)


if __name__ == "__main__":
    main()
