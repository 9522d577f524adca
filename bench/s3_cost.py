"""S3 request counts and one-day query time, beside one object per entry, on a local server.

Both approaches log the same entries (30 days) into the same S3-compatible server (moto's
server mode on 127.0.0.1, started here): comply_lab batches through its spool into
Parquet objects; the baseline stores each entry as its own JSON object, as the original
tool does, and answers a one-day query by listing that day and fetching every object.

Run: ``.venv/bin/python bench/s3_cost.py [--entries 100000]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from comply_lab import AuditLogger, MemoryStorage, open_log
from comply_lab.sample import interactions
from comply_lab.storage.s3 import S3Storage

sys.path.insert(0, str(Path(__file__).parent))
from _common import END, report, row, timed


class Requests:
    """Counts the HTTP requests a boto3 client sends, by method."""

    def __init__(self, client: Any) -> None:
        self.counts: Counter[str] = Counter()
        client.meta.events.register("before-send.s3", self._count)

    def _count(self, request: Any, **_: Any) -> None:
        self.counts[request.method] += 1

    def take(self) -> Counter[str]:
        """Return the counts so far and start again."""
        counts, self.counts = self.counts, Counter()
        return counts


def per_entry_objects(client: Any, bucket: str, items: list[Any]) -> None:
    """Store each entry as its own object, as the original tool does."""
    current = [items[0].when]
    logger = AuditLogger(MemoryStorage(max_entries=1), clock=lambda: current[0])
    for item in items:
        current[0] = item.when
        entry = logger.get_entry_sync(logger.log_sync(**item.fields))
        assert entry is not None
        record = entry.to_dict()  # the original tool stores exactly this
        client.put_object(
            Bucket=bucket,
            Key=f"orig/{entry.timestamp:%Y-%m-%d}/{entry.id}.json",
            Body=json.dumps(record).encode(),
        )


def per_entry_day_query(client: Any, bucket: str, day: str) -> int:
    """List one day and GET every object of it (the original tool's query)."""
    found = 0
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"orig/{day}/"
    ):
        for item in page.get("Contents", []):
            json.loads(client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
            found += 1
    return found


def main() -> None:
    """Run both approaches, print the table, write bench/out/s3_cost.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    args = parser.parse_args()
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        client = boto3.client("s3", endpoint_url=f"http://{host}:{port}")
        client.create_bucket(Bucket="bench")
        requests = Requests(client)
        items = list(interactions(args.entries, 30, end=END))
        current = [items[0].when]
        storage = S3Storage(
            "bench",
            "ours/",
            client=client,
            fsync="never",
            spool_dir=tempfile.mkdtemp(prefix="comply-lab-spool-"),
            flush_max_entries=args.entries + 1,
        )
        logger = AuditLogger(storage, clock=lambda: current[0])
        started = time.perf_counter()
        for item in items:
            current[0] = item.when
            logger.log_sync(**item.fields)
        logger.close()
        ours_log_s = time.perf_counter() - started
        ours_writes = requests.take()
        started = time.perf_counter()
        per_entry_objects(client, "bench", items)
        base_log_s = time.perf_counter() - started
        base_writes = requests.take()
        day = (END - timedelta(days=15)).date().isoformat()
        log = open_log(storage, progress=False)
        rows: list[int] = []
        ours_query = timed(lambda: rows.append(len(log.entries(day, day))), repeat=3)
        ours_reads = requests.take()
        base_query = timed(lambda: rows.append(per_entry_day_query(client, "bench", day)), repeat=1)
        base_reads = requests.take()
        assert len(set(rows)) == 1, rows
        n = args.entries
        results = [
            row(
                f"write requests for {n:,} entries",
                sum(ours_writes.values()),
                sum(base_writes.values()),
                100.0,
                "requests",
                higher_is_better=False,
                note=f"ours {dict(ours_writes)}, per-entry objects {dict(base_writes)}; "
                f"logging took {ours_log_s:.1f} s vs {base_log_s:.1f} s",
            ),
            row(
                f"one-day query ({rows[0]:,} entries)",
                ours_query,
                base_query,
                20.0,
                "s",
                higher_is_better=False,
                note=f"requests per query: ours {sum(ours_reads.values()) // 3}, "
                f"per-entry objects {sum(base_reads.values())}",
            ),
        ]
        report("s3_cost", results)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
