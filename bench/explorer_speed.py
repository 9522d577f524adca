"""How fast the explorer answers: filters, page turns and orders on 1,000,000 entries.

Each interaction is timed from the call to the table holding its new rows (charts, which
read the whole selection, are off: a selection of a million draws none by default). The
baseline, measured in the same run on the same log, is what the explorer did before it
paged: read the whole filtered range with the table's columns, then show 20 rows.

Run: ``.venv/bin/python bench/explorer_speed.py [--entries N]``
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from comply_lab import open_log
from comply_lab.lab.explore import TABLE_COLUMNS

sys.path.insert(0, str(Path(__file__).parent))
from _common import build, report, row, timed

TARGET_S = 0.2


def _baseline(log: Any, page: int, **filters: Any) -> None:
    """Read the whole selection, sort it newest first, and cut one page out."""
    frame = log.entries(columns=TABLE_COLUMNS, **filters)
    newest = frame.sort_values("timestamp", ascending=False, kind="stable")
    newest.iloc[page * 20 : page * 20 + 20]


def main() -> None:
    """Build the log, time each interaction against the baseline, write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="comply-lab-bench-"))
    try:
        _, parquet = build(args.entries, root)
        log = open_log(parquet, progress=False)
        explorer = log.explore(charts=False)
        failed = {"safety_passed": False, "model": ["gpt-4o"]}
        steps = [
            ("open: first page, newest first", lambda: explorer.apply(), {}, 0),
            ("filter: failed gpt-4o entries", lambda: explorer.apply(outcome="failed",
                                                                     model=["gpt-4o"]),
             failed, 0),
            ("turn to page 2 of the filtered rows", lambda: explorer.show_page(1), failed, 1),
            ("filter: one detector", lambda: explorer.apply(outcome="(all)", model=[],
                                                            detector="pii"),
             {"detector": "pii"}, 0),
            ("order: slowest first (all entries)", lambda: explorer.apply(
                detector="(all)", sort="slowest first"), {}, 0),
            ("turn to page 50, slowest first", lambda: explorer.show_page(49), {}, 49),
            ("order: blocked first (all entries)", lambda: explorer.apply(sort="blocked first"),
             {}, 0),
        ]  # fmt: skip
        results = []
        for name, action, filters, page in steps:
            ours = timed(action, repeat=3)
            base = timed(lambda f=filters, p=page: _baseline(log, p, **f), repeat=1)
            results.append(
                row(
                    name,
                    ours,
                    base,
                    None,
                    "s",
                    higher_is_better=False,
                    note=f"target: under {TARGET_S} s ({'met' if ours < TARGET_S else 'NOT met'})",
                )
            )
        report("explorer_speed", results)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
