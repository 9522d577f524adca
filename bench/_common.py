"""Helpers shared by the benchmark scripts: timing, baselines and result tables."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "out"


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
        target = "" if r["target_ratio"] is None else f"{r['target_ratio']:.0f}x "
        verdict = "" if r["met"] is None else ("met" if r["met"] else "BELOW")
        print(
            f"{r['workload']:<46}{r['ours']:>13,.4g}{r['baseline']:>13,.4g}"
            f"{r['ratio']:>8.1f}x  {target}{verdict}  ({r['unit']})"
        )
        for key, value in r.items():
            if key.startswith("note") and value:
                print(f"    {value}")
    OUT.mkdir(exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(results, indent=2, default=str))


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
