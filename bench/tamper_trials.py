"""Count tampering trials: random honest histories, then every kind of single edit.

For each backend, ``--histories`` random sequences of honest operations (logging,
sealing, reopening, holds, releases, retention, decryption, key rotation, shredding) are
run and verified with the writer's key and a checkpoint taken at the end: each must be OK.
Then single random edits of the result — a flipped byte, a deleted, duplicated or swapped
line, a truncated, deleted or copied file or object — are applied one at a time, and each
must make verification fail. The table gives, per backend and kind of edit, how many
trials ran and how many were detected; ``bench/out/tamper.json`` holds them.
RELIABILITY.md reports the figures of the last run.

Run from the repository root: ``python bench/tamper_trials.py --histories 200``. S3
backends run against a local S3-compatible server (moto) started on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.conftest import local_s3
from tests.tamper import OPERATIONS, run_trial

OUT = Path(os.environ.get("COMPLY_LAB_BENCH_OUT") or Path(__file__).parent / "out")


def trial(backend: str, seed: int, endpoint: str | None, tally: Counter[tuple[str, str]]) -> None:
    """Run one history on ``backend`` and its edits, counting each edit by kind."""
    rng = random.Random(seed)
    operations = [rng.choice(OPERATIONS) for _ in range(rng.randrange(2, 9))]
    result = run_trial(backend, operations, seed, endpoint)
    tally[("honest history", "ok" if result.honest.ok else "FALSE ALARM")] += 1
    if not result.honest.ok:
        print(f"false alarm, seed {seed}, {backend}, {result.done}:\n{result.honest}", flush=True)
    for edit, report in result.edits:
        tally[(edit.kind, "detected" if not report.ok else "MISSED")] += 1
        if report.ok:
            print(f"missed, seed {seed}, {backend}: {edit}", flush=True)


def main() -> None:
    """Run the trials, print the table, write bench/out/tamper.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--histories", type=int, default=100, help="per local backend")
    parser.add_argument("--s3-histories", type=int, default=None, help="per S3 backend")
    args = parser.parse_args()
    s3_histories = args.s3_histories if args.s3_histories is not None else args.histories // 4
    results: dict[str, dict[str, int]] = {}
    started = time.perf_counter()
    with local_s3() as endpoint:
        for backend, count in (
            ("jsonl", args.histories),
            ("parquet", args.histories),
            ("s3-jsonl", s3_histories),
            ("s3-parquet", s3_histories),
        ):
            tally: Counter[tuple[str, str]] = Counter()
            for seed in range(count):
                trial(backend, seed, endpoint if backend.startswith("s3-") else None, tally)
            results[backend] = {f"{k}: {outcome}": n for (k, outcome), n in sorted(tally.items())}
            print(f"{backend}: {count} histories done", flush=True)
    print(f"\n{'backend':<12}{'trial':<34}{'count':>8}")
    for backend, rows in results.items():
        for label, n in rows.items():
            print(f"{backend:<12}{label:<34}{n:>8,}")

    def count(word: str) -> int:
        return sum(n for rows in results.values() for label, n in rows.items() if word in label)

    honest, alarms, missed = count("honest"), count("FALSE"), count("MISSED")
    print(
        f"\n{count(': ') - honest:,} edits, {missed} missed; {honest:,} honest histories, "
        f"{alarms} false alarms; {time.perf_counter() - started:.0f} s"
    )
    OUT.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "histories": args.histories,
        "s3_histories": s3_histories,
        "results": results,
    }
    (OUT / "tamper.json").write_text(json.dumps(payload, indent=2))
    if missed or alarms:
        sys.exit(1)


if __name__ == "__main__":
    main()
