"""What the damage checks cost a read: decoding parts with and without them.

Every Parquet part the lab reads is decoded through ``comply_lab.storage.parts``: its
footer is read and checked against the manifest record (row count, declared size: the
decompression-bomb bound) and the decoded table is validated (strings must be UTF-8), so
damage is a typed error rather than a crash later. Baselines, measured in the same run on
the same files: ``log.entries()`` with the checks switched off, and
``pyarrow.parquet.read_table`` alone reading every part, whole and projected to three
columns.

Run: ``.venv/bin/python bench/read_checks.py [--entries 300000]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow.parquet as pq

from comply_lab import open_log
from comply_lab.audit import FileStorage
from comply_lab.storage import parts
from comply_lab.storage.parts import read_part

sys.path.insert(0, str(Path(__file__).parent))
from _common import build, report, row, timed

COLUMNS = ["timestamp", "model", "latency_ms"]


def main() -> None:
    """Build the sample, time both ways of decoding it, print and save the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=300_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        _, parquet = build(args.entries, Path(tmp))
        storage = FileStorage(parquet, format="parquet")
        segments = [s for day in storage.days() for s in storage.segments(day)]
        paths = [str(storage.local_path(s)) for s in segments]
        results = []
        log = open_log(parquet, progress=False)
        ours = timed(lambda: log.entries(), repeat=7)
        with _unchecked():
            base = timed(lambda: log.entries(), repeat=7)
        results.append(
            row(
                f"log.entries(), {args.entries:,} entries",
                ours,
                base,
                0.8,
                "s",
                higher_is_better=False,
                note=f"the checks cost {ours / base - 1:+.0%} of the whole read into pandas",
            )
        )
        for name, options in (("whole parts", {}), ("three columns", {"columns": COLUMNS})):
            ours = timed(lambda o=options: [read_part(storage, s, **o) for s in segments])
            base = timed(lambda o=options: [pq.read_table(p, **o) for p in paths])
            results.append(
                row(
                    f"decode {len(segments)} parts, {name}",
                    ours,
                    base,
                    0.7,
                    "s",
                    higher_is_better=False,
                    note=f"checks cost {ours / base - 1:+.0%} of a plain pyarrow read",
                )
            )
        report("read_checks", results)


@contextmanager
def _unchecked() -> Iterator[None]:
    """Read without the footer checks and UTF-8 validation (the baseline of the first row)."""
    saved = parts.check_footer, parts.check_values
    parts.check_footer = parts.check_values = lambda *args, **kwargs: None  # type: ignore[assignment]
    try:
        yield
    finally:
        parts.check_footer, parts.check_values = saved


if __name__ == "__main__":
    main()
