"""Helpers shared by the benchmark scripts: timing, baselines and result tables."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from comply_lab import AuditLogger
from comply_lab.audit import FileStorage
from comply_lab.integrity.adoption import adopt
from comply_lab.sample import write_sample
from comply_lab.storage.compaction import compact

OUT = Path(os.environ.get("COMPLY_LAB_BENCH_OUT") or Path(__file__).parent / "out")
"""Where result files go: bench/out/, or $COMPLY_LAB_BENCH_OUT (the tests' own folder)."""
END = datetime(2026, 1, 31, tzinfo=UTC)


def build(entries: int, root: Path, signing_key: Any = None) -> tuple[Path, Path]:
    """Log the sample as JSONL (the baselines' input) and seal a copy into Parquet."""
    jsonl = root / f"jsonl-{entries}"
    started = time.perf_counter()
    write_sample(
        lambda clock: AuditLogger(FileStorage(jsonl, fsync="never"), clock=clock),
        entries,
        30,
        end=END,
    ).close()
    logged = time.perf_counter() - started
    parquet = root / f"parquet-{entries}"
    shutil.copytree(jsonl, parquet)
    started = time.perf_counter()
    if signing_key is not None:  # an unsigned log is signed from its adoption on
        adopt(FileStorage(parquet, signing_key=signing_key))
    compact(parquet, signing_key=signing_key)
    print(
        f"logged {entries:,} entries in {logged:.1f} s; sealed a Parquet copy in "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return jsonl, parquet


_PEAK = """
def _peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024
"""


def peak_rss(script: str, path: Path) -> tuple[int, int]:
    """Run ``script`` on ``path`` in a fresh process; return the two numbers it prints.

    The script prints a count and ``_peak()``, the process's peak resident memory
    (VmHWM, which unlike ``ru_maxrss`` does not inherit the parent's figure).
    """
    done = subprocess.run(
        [sys.executable, "-c", _PEAK + script, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    count, rss = done.stdout.split()
    return int(count), int(rss)


def timed(fn: Callable[[], object], repeat: int = 3) -> float:
    """Return the best wall time of ``repeat`` runs of ``fn``."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def naive_query(path: Path, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Parse every line of every file and filter by time: the original tool's query."""
    found = []
    for file in sorted(path.glob("audit_*.jsonl")):
        with file.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    record = json.loads(line)
                    stamp = datetime.fromisoformat(record["timestamp"])
                    if start <= stamp <= end:
                        found.append(record)
    return found


def row(
    name: str,
    ours: float,
    base: float,
    target: float | None,
    unit: str,
    higher_is_better: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """Return one result: both figures, how many times better ours is, and the target."""
    ratio = ours / base if higher_is_better else base / ours
    met = None if target is None else ratio >= target
    return {
        "workload": name,
        "unit": unit,
        "ours": ours,
        "baseline": base,
        "ratio": ratio,
        "target_ratio": target,
        "met": met,
        **extra,
    }


def report(name: str, results: list[dict[str, Any]]) -> None:
    """Print the results as a table and write them to bench/out/<name>.json."""
    print(f"{platform.machine()}, Python {platform.python_version()}")
    print(f"{'workload':<46}{'ours':>13}{'baseline':>13}{'better':>9}  target")
    for r in results:
        target = "" if r["target_ratio"] is None else f"{r['target_ratio']:g}x "
        verdict = "" if r["met"] is None else ("met" if r["met"] else "BELOW")
        print(
            f"{r['workload']:<46}{_num(r['ours']):>13}{_num(r['baseline']):>13}"
            f"{r['ratio']:>8.2f}x  {target}{verdict}  ({r['unit']})"
        )
        for key, value in r.items():
            if key.startswith("note") and value:
                print(f"    {value}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(results, indent=2, default=str))


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
