"""Logging and one-day query throughput, each beside a naive baseline run on the same machine.

Baselines are what a straightforward implementation does (and what the original tool
does): build the record with uuid4/utcnow/json, then open-append-close the day file per
entry (in a worker thread per entry for the async API, as aiofiles does); a query opens
and JSON-parses every file of the log.

Run: ``.venv/bin/python bench/log_throughput.py [--entries 20000] [--query-entries 200000]``
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from comply_lab import AuditLogger, EncryptionManager, KeyRing
from comply_lab.audit import FileStorage
from comply_lab.sample import write_sample

sys.path.insert(0, str(Path(__file__).parent))
from _common import naive_query, report, row, timed

FIELDS: dict[str, Any] = {
    "input": "Summarize the quarterly report for the finance team",
    "output": "Q4 showed 15% revenue growth, driven by ...",
    "provider": "openai",
    "model": "gpt-4o",
    "conversation_id": "conv-0000042",
    "safety_passed": True,
    "latency_ms": 812.5,
    "input_tokens": 150,
    "output_tokens": 220,
    "metadata": {"user_id": "user-0042", "department": "finance"},
}


def naive_record(encryption: EncryptionManager | KeyRing | None) -> str:
    """Serialize one entry the straightforward way."""
    content = {"input_content": None, "output_content": None}
    if isinstance(encryption, KeyRing):
        content = {
            f"{side}_content": encryption.encrypt(FIELDS[side], entry_id="e", field=side)
            for side in ("input", "output")
        }
    elif encryption is not None:
        content = {
            "input_content": encryption.encrypt(FIELDS["input"]),
            "output_content": encryption.encrypt(FIELDS["output"]),
        }
    record = {
        "id": str(uuid.uuid4()),
        "timestamp": datetime.utcnow().isoformat(),
        "input_hash": hashlib.sha256(FIELDS["input"].encode()).hexdigest(),
        "output_hash": hashlib.sha256(FIELDS["output"].encode()).hexdigest(),
        **content,
        **{k: v for k, v in FIELDS.items() if k not in ("input", "output")},
    }
    return json.dumps(record) + "\n"


def naive_append(path: Path, line: str) -> None:
    """Open, append, close: once per entry."""
    with path.open("a", encoding="utf-8") as f:
        f.write(line)


def rate(count: int, fn: Callable[[], None]) -> float:
    """Entries per second of ``fn``, which handles ``count`` entries."""
    started = time.perf_counter()
    fn()
    return count / (time.perf_counter() - started)


def _ours_async(logger: AuditLogger, n: int) -> None:
    async def run() -> None:
        for _ in range(n):
            await logger.log(**FIELDS)

    asyncio.run(run())


def _naive_async(path: Path, encryption: EncryptionManager | KeyRing | None, n: int) -> None:
    async def run() -> None:
        for _ in range(n):
            await asyncio.to_thread(naive_append, path, naive_record(encryption))

    asyncio.run(run())


def _ours_sync(logger: AuditLogger, n: int) -> None:
    for _ in range(n):
        logger.log_sync(**FIELDS)


def _naive_sync(path: Path, n: int) -> None:
    for _ in range(n):
        naive_append(path, naive_record(None))


def bench_logging(n: int) -> list[dict[str, Any]]:
    """Compare one-by-one logging, async and sync, hash-only and encrypted."""
    results = []
    variants = (
        ("hash-only", None),
        ("encrypted, Fernet", EncryptionManager()),
        ("encrypted, AES-GCM key ring", KeyRing.generate()),
    )
    for label, encryption in variants:
        tmp = Path(tempfile.mkdtemp())
        logger = AuditLogger(
            FileStorage(tmp / "ours"), encryption=encryption, store_content=encryption is not None
        )
        naive_path = tmp / "naive.jsonl"
        ours = rate(n, functools.partial(_ours_async, logger, n))
        base = rate(n, functools.partial(_naive_async, naive_path, encryption, n))
        results.append(row(f"awaited log(), {label}", ours, base, 5.0, "entries/s"))
        if encryption is None:
            ours = rate(n, functools.partial(_ours_sync, logger, n))
            base = rate(n, functools.partial(_naive_sync, naive_path, n))
            results.append(row("log_sync(), hash-only", ours, base, 5.0, "entries/s"))
        logger.close()
    return results


def bench_query(n: int) -> list[dict[str, Any]]:
    """get_entries for one day out of 30, beside a scan of every file."""
    path = Path(tempfile.mkdtemp()) / "log"
    end = datetime(2026, 1, 31, tzinfo=UTC)
    write_sample(lambda clock: AuditLogger(FileStorage(path), clock=clock), n, 30, end=end).close()
    logger = AuditLogger(path)
    day_start = end - timedelta(days=15)
    day_end = day_start + timedelta(days=1) - timedelta(microseconds=1)
    got: list[int] = []
    ours = timed(lambda: got.append(len(logger.get_entries_sync(day_start, day_end))))
    base = timed(lambda: got.append(len(naive_query(path, day_start, day_end))))
    assert got[0] == got[1], got
    return [
        row(
            f"get_entries(1 day of 30), {n:,} entries",
            ours,
            base,
            20.0,
            "s",
            higher_is_better=False,
            rows=got[0],
        )
    ]


def main() -> None:
    """Run the benchmarks, print a table and write bench/out/log_throughput.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20_000, help="entries per logging run")
    parser.add_argument("--query-entries", type=int, default=200_000, help="entries in the log")
    args = parser.parse_args()
    report("log_throughput", bench_logging(args.entries) + bench_query(args.query_entries))


if __name__ == "__main__":
    main()
