"""Retention speed: expiring 10 of 30 days of a 1,000,000-entry log.

Ours deletes whole day partitions (after recording each deletion) through
``cleanup_expired``. The baseline is the original tool's approach: find every expired
entry and delete it on its own, rewriting its day file without it. The baseline runs in
the same process on a smaller copy of the same sample (``--baseline-entries``) and is
scaled linearly to the full size — a lower bound, since each rewrite also grows with the
file. Expiring 5 and 20 days as well shows that our time follows the number of
partitions deleted, not the size of the log.

Run: ``.venv/bin/python bench/retention_speed.py [--entries 1000000]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from comply_lab import AuditLogger
from comply_lab.audit import FileStorage

sys.path.insert(0, str(Path(__file__).parent))
from _common import END, build, report, row

DAYS = 30


def ours(source: Path, expire_days: int, format: str) -> tuple[float, int]:
    """Time cleanup_expired on a fresh copy; return (seconds, entries deleted)."""
    copy = Path(tempfile.mkdtemp()) / "log"
    shutil.copytree(source, copy)
    logger = AuditLogger(
        FileStorage(copy, format=format, fsync="never"),  # type: ignore[arg-type]
        retention_days=DAYS - expire_days,
    )
    started = time.perf_counter()
    deleted = logger.cleanup_expired_sync(now=END)
    seconds = time.perf_counter() - started
    logger.close()
    shutil.rmtree(copy.parent)
    return seconds, deleted


def entry_by_entry(source: Path, expire_days: int) -> tuple[float, int]:
    """Time the original approach on a copy: delete each expired entry, rewriting its file."""
    copy = Path(tempfile.mkdtemp()) / "log"
    shutil.copytree(source, copy)
    cutoff = END - timedelta(days=DAYS - expire_days)
    started = time.perf_counter()
    expired = []
    for file in sorted(copy.glob("audit_*.jsonl")):  # the query for expired entries
        for line in file.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if datetime.fromisoformat(record["timestamp"]) < cutoff:
                expired.append((file, record["id"]))
    for file, entry_id in expired:  # delete(entry_id), one at a time
        kept = [
            line
            for line in file.read_text(encoding="utf-8").splitlines()
            if json.loads(line)["id"] != entry_id
        ]
        if kept:
            file.write_text("\n".join(kept) + "\n", encoding="utf-8")
        else:
            file.unlink()
    seconds = time.perf_counter() - started
    shutil.rmtree(copy.parent)
    return seconds, len(expired)


def main() -> None:
    """Run the benchmark, print the table, write bench/out/retention_speed.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--baseline-entries", type=int, default=10_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp())
    jsonl, parquet = build(args.entries, root)
    small, _ = build(args.baseline_entries, root / "small")
    base_seconds, base_deleted = entry_by_entry(small, 10)
    scale = args.entries / args.baseline_entries
    base = base_seconds * scale
    results: list[dict[str, Any]] = []
    per_partition: list[str] = []
    for format, path in (("parquet", parquet), ("jsonl", jsonl)):
        seconds, deleted = ours(path, 10, format)
        results.append(
            row(
                f"cleanup_expired, 10 of 30 days, {format}",
                seconds,
                base,
                100.0,
                "s",
                higher_is_better=False,
                note=f"{deleted:,} entries deleted; baseline measured on "
                f"{args.baseline_entries:,} entries ({base_deleted:,} deleted) in "
                f"{base_seconds:.2f} s and scaled x{scale:g}",
            )
        )
    for expire_days in (5, 10, 20):
        seconds, _ = ours(parquet, expire_days, "parquet")
        per_partition.append(f"{expire_days} days: {seconds * 1e3 / expire_days:.1f} ms/partition")
    results[0]["note_scaling"] = "time per partition deleted (parquet): " + ", ".join(per_partition)
    report("retention_speed", results)
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
