"""Lab queries at scale: 1,000,000 entries over 30 days (10,000,000 with --large).

Each figure stands beside a baseline measured in the same run on the same data: the
original tool's approach of JSON-parsing every file and filtering (for queries, lookups
and counts) and of building a DataFrame from the list of parsed records (for memory).
Lookups are measured twice: by comply_lab's UUIDv7 ids (an id names its day), and in a
copy of the log as the original tool writes it (random UUIDv4 ids, naive timestamps, no
chain fields) compacted by comply_lab, where the id index finds them.

Run: ``.venv/bin/python bench/query_scale.py [--entries N | --large]``
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from comply_lab import open_log

sys.path.insert(0, str(Path(__file__).parent))
from _common import END, build, naive_query, peak_rss, report, row, timed

_RSS_OURS = """
import sys
from pathlib import Path
from comply_lab import open_log
frame = open_log(sys.argv[1], progress=False).entries()
print(len(frame), _peak())
"""
_RSS_BASELINE = """
import json, sys
from pathlib import Path
import pandas as pd
records = [json.loads(l) for f in sorted(Path(sys.argv[1]).glob("audit_*.jsonl")) for l in open(f)]
frame = pd.DataFrame(records)
print(len(frame), _peak())
"""


def compare_range(
    log: Any, jsonl: Path, label: str, start: datetime, span: timedelta, entries: int
) -> dict[str, Any]:
    """Time entries() for one range against the full-scan baseline; rows must agree."""
    end = start + span - timedelta(microseconds=1)
    counts: list[int] = []
    ours = timed(lambda: counts.append(len(log.entries(start, end))))
    base = timed(lambda: counts.append(len(naive_query(jsonl, start, end))), repeat=1)
    assert len(set(counts)) == 1, counts
    target = 50.0 if label == "1 day" else None
    return row(
        f"entries(), {label} of {entries:,}",
        ours,
        base,
        target,
        "s",
        higher_is_better=False,
        rows=counts[0],
        note="target: under 0.3 s" if label == "1 day" else None,
    )


def naive_find(path: Path, entry_id: str) -> dict[str, Any] | None:
    """Scan files in order until the id turns up (the original tool's get_entry)."""
    for file in sorted(path.glob("audit_*.jsonl")):
        with file.open(encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                if record["id"] == entry_id:
                    return record
    return None


def original_copy(jsonl: Path, root: Path) -> tuple[Path, list[str]]:
    """Rewrite the sample as the original tool writes it (UUIDv4 ids), then compact it."""
    import orjson

    from comply_lab.storage.compaction import compact

    target = root / "original"
    target.mkdir()
    rng = random.Random(11)
    ids = []
    drop = ("hash_key_id", "writer_id", "seq", "prev_hash", "entry_hash")
    for file in sorted(jsonl.glob("audit_*.jsonl")):
        lines = []
        with file.open("rb") as f:
            for line in f:
                record = orjson.loads(line)
                for name in drop:
                    record.pop(name, None)
                record["id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                record["timestamp"] = record["timestamp"].removesuffix("+00:00")
                ids.append(record["id"])
                lines.append(orjson.dumps(record))
        (target / file.name).write_bytes(b"\n".join(lines) + b"\n")
    started = time.perf_counter()
    compact(target)
    print(f"compacted the original-format copy in {time.perf_counter() - started:.1f} s")
    return target, ids


def lookups(path: Path, ids: list[str], label: str, entries: int, base: float) -> dict[str, Any]:
    """Time cold entry(id) for 5 ids and a missing one (the worst), beside a full scan."""
    rng = random.Random(5)
    probe = [ids[rng.randrange(len(ids))] for _ in range(5)]
    missing = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    for entry_id in probe:
        found = open_log(path, progress=False).entry(entry_id)
        assert found is not None and found.id == entry_id
    assert open_log(path, progress=False).entry(missing) is None
    ours = max(
        timed(lambda i=i: open_log(path, progress=False).entry(i), 1) for i in [*probe, missing]
    )
    target = 0.1 if entries > 5_000_000 else 0.05
    return row(
        f"entry(id), {label}, cold, worst of 6",
        ours,
        base,
        None,
        "s",
        higher_is_better=False,
        note=f"target: under {target} s (5 ids and a missing one); "
        f"{'met' if ours < target else 'NOT met'}",
    )


def naive_count(path: Path) -> int:
    """Count non-empty lines of every file (the original tool's count)."""
    total = 0
    for file in path.glob("audit_*.jsonl"):
        with file.open(encoding="utf-8") as f:
            total += sum(1 for line in f if line.strip())
    return total


def main() -> None:
    """Build the data, run every workload, print the table, write bench/out/query_scale.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--large", action="store_true", help="10,000,000 entries")
    parser.add_argument(
        "--lookups-only",
        action="store_true",
        help="measure only entry(id) (the memory baseline of 10,000,000 rows needs ~50 GB)",
    )
    args = parser.parse_args()
    entries = 10_000_000 if args.large else args.entries
    root = Path(tempfile.mkdtemp(prefix="comply-lab-bench-"))
    try:
        jsonl, parquet = build(entries, root)
        results = []
        log = open_log(parquet, progress=False)
        middle = END - timedelta(days=15, hours=10)
        for label, span in (
            ("1 hour", timedelta(hours=1)),
            ("1 day", timedelta(days=1)),
            ("7 days", timedelta(days=7)),
        ):
            if not args.lookups_only:
                results.append(compare_range(log, jsonl, label, middle, span, entries))
        ids = list(log.entries(columns=["id"])["id"])
        scan = timed(lambda: naive_find(jsonl, ids[len(ids) // 2]), repeat=1)
        results.append(lookups(parquet, ids, "UUIDv7", entries, scan))
        original, original_ids = original_copy(jsonl, root)
        results.append(lookups(original, original_ids, "UUIDv4, migrated", entries, scan))
        if args.lookups_only:
            report(f"query_scale_lookups_{entries}", results)
            return
        ours = timed(lambda: open_log(parquet, progress=False).count())
        base = timed(lambda: naive_count(jsonl), repeat=1)
        results.append(row("count()", ours, base, None, "s", higher_is_better=False))
        rows_ours, rss_ours = peak_rss(_RSS_OURS, parquet)
        rows_base, rss_base = peak_rss(_RSS_BASELINE, jsonl)
        assert rows_ours == rows_base == entries
        results.append(
            row(
                f"peak RSS loading {entries:,} rows",
                rss_ours / 2**20,
                rss_base / 2**20,
                None,
                "MiB",
                higher_is_better=False,
                note="target: under 1.5 GB",
            )
        )
        size_parquet = sum(p.stat().st_size for p in parquet.rglob("*.parquet"))
        size_jsonl = sum(p.stat().st_size for p in jsonl.glob("*.jsonl"))
        results.append(
            row(
                "bytes on disk",
                size_parquet / 2**20,
                size_jsonl / 2**20,
                None,
                "MiB",
                higher_is_better=False,
            )
        )
        report("query_scale", results)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
