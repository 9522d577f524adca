"""Benchmark results: collect a run into one file, and compare two runs.

Every figure of a run is measured beside a baseline in the same run (the original tool,
a bare primitive such as hashing every entry once, or the same work done the naive way)
and kept as its ratio to it, better when larger. Comparing ratios rather than seconds
keeps two runs comparable across machines and loads; a figure whose ratio fell by more
than ``--factor`` (2 by default) is flagged as a regression.

    python bench/compare.py collect                 # bench/out/*.json -> bench/out/results.json
    python bench/compare.py bench/release.json bench/out/results.json

``bench/release.json`` holds the results of the last release; ``make bench`` collects the
run and compares it with that file, and exits 1 when a figure regressed.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
RESULTS = "results.json"


def collect(folder: Path) -> dict[str, Any]:
    """Return every figure of the result files in ``folder`` as one document."""
    figures: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.json")):
        if path.name == RESULTS:
            continue
        data = json.loads(path.read_text())
        rows = data.get("rows", []) if isinstance(data, dict) else data
        for row in rows:
            if not isinstance(row, dict) or "workload" not in row:
                continue
            baseline = row.get("baseline", row.get("original"))
            figures.append(
                {
                    "bench": path.stem,
                    "workload": row["workload"],
                    "unit": row.get("unit"),
                    "ours": row.get("ours"),
                    "baseline": baseline,
                    "ratio": row.get("ratio"),
                }
            )
    return {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "figures": figures,
    }


def compare(
    old: dict[str, Any], new: dict[str, Any], factor: float = 2.0
) -> tuple[list[str], list[str]]:
    """Compare two collected runs.

    Returns:
        The report's lines, and the figures that regressed (ratio fell by more than
        ``factor``).
    """
    before = {(f["bench"], f["workload"]): f for f in old["figures"]}
    lines = [f"{'figure':<78}{'before':>10}{'now':>10}{'change':>9}"]
    regressed = []
    for figure in new["figures"]:
        key = (figure["bench"], figure["workload"])
        was = before.pop(key, None)
        name = f"{key[0]}: {key[1]}"[:76]
        if was is None:
            lines.append(f"{name:<78}{'':>10}{_ratio(figure['ratio']):>10}    (new)")
            continue
        then, now = was.get("ratio"), figure.get("ratio")
        if not then or not now:
            continue
        change = now / then
        flag = ""
        if change < 1 / factor:
            flag = "  REGRESSED"
            regressed.append(f"{name}: ratio {then:.3g} -> {now:.3g} ({change:.2f}x)")
        lines.append(f"{name:<78}{_ratio(then):>10}{_ratio(now):>10}{change:>8.2f}x{flag}")
    lines += [f"{k[0]}: {k[1]}"[:76] + "  (gone)" for k in before]
    return lines, regressed


def _ratio(value: float | None) -> str:
    return "" if not value else f"{value:.3g}x"


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (1 if a figure regressed)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", help="'collect', or the earlier results file")
    parser.add_argument("new", nargs="?", help="the later results file")
    parser.add_argument("--out", type=Path, default=HERE / "out", help="result folder")
    parser.add_argument("--factor", type=float, default=2.0, help="how much worse is flagged")
    args = parser.parse_args(argv)
    if args.old == "collect":
        document = collect(args.out)
        (args.out / RESULTS).write_text(json.dumps(document, indent=2, default=str))
        print(f"collected {len(document['figures'])} figures into {args.out / RESULTS}")
        return 0
    if args.new is None:
        parser.error("give two results files, or 'collect'")
    old, new = (json.loads(Path(p).read_text()) for p in (args.old, args.new))
    lines, regressed = compare(old, new, args.factor)
    print("\n".join(lines))
    if regressed:
        print(f"\n{len(regressed)} figure(s) more than {args.factor:g}x worse than before:")
        print("\n".join(f"  {r}" for r in regressed))
        return 1
    print(f"\nno figure more than {args.factor:g}x worse than before")
    return 0


if __name__ == "__main__":
    sys.exit(main())
