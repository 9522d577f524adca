"""Verification throughput beside raw SHA-256 over the same bytes, and its memory.

The log is 1,000,000 entries over 30 days, sealed into Parquet with a signed manifest.
The baseline is the least any per-entry verifier must do: one ``hashlib.sha256`` call over
each entry's canonical serialization (the bytes its ``entry_hash`` covers), measured in
the same run. Peak memory is measured for logs of two sizes in fresh processes: constant
memory means the two figures stay close.

Run: ``.venv/bin/python bench/verify_speed.py [--entries N]``
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

from comply_lab import open_log
from comply_lab.crypto.signing import generate_signing_key, public_key_pem

sys.path.insert(0, str(Path(__file__).parent))
from _common import END, build, peak_rss, report, row

_RSS = """
import sys
from pathlib import Path
from comply_lab import open_log
log = Path(sys.argv[1])
report = open_log(log, progress=False).verify(public_key=log.parent / "writer.pub")
assert report.ok, report
print(report.entries, _peak())
"""


def canonical_bodies(jsonl: Path) -> list[bytes]:
    """Return each entry's canonical serialization, as its entry_hash covers it."""
    suffix = len(b',"entry_hash":"') + 64 + len(b'"}')
    return [
        line[:-suffix] + b"}"
        for path in sorted(jsonl.glob("audit_*.jsonl"))
        for line in path.read_bytes().splitlines()
    ]


def raw_sha256(bodies: list[bytes]) -> float:
    """Seconds to SHA-256 every body once (best of 3)."""
    best = float("inf")
    sha = hashlib.sha256
    for _ in range(3):
        started = time.perf_counter()
        for body in bodies:
            sha(body).digest()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    """Run the benchmark, print the table, write bench/out/verify_speed.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="comply-lab-verify-"))
    key = generate_signing_key()
    try:
        jsonl, parquet = build(args.entries, root, key)
        (root / "writer.pub").write_bytes(public_key_pem(key))
        bodies = canonical_bodies(jsonl)
        raw = raw_sha256(bodies)
        log = open_log(parquet, progress=False)
        started = time.perf_counter()
        result = log.verify(public_key=public_key_pem(key))
        ours = time.perf_counter() - started
        assert result.ok and result.entries == args.entries, result
        n = args.entries
        results = [
            row(
                f"verify(), {n:,} entries, signed",
                n / ours,
                n / raw,
                0.4,
                "entries/s",
                note=f"{ours:.2f} s; baseline: SHA-256 of {sum(map(len, bodies)) / 2**20:.0f} "
                "MiB of canonical bytes, one call per entry",
            )
        ]
        started = time.perf_counter()
        deep = log.verify(start="2026-01-22", end=END.date().isoformat(), deep=True, public_key=key)
        deep_s = time.perf_counter() - started
        results.append(
            row(
                f"verify(deep=True), {deep.entries:,} entries (last 10 days)",
                deep.entries / deep_s,
                n / raw,
                None,
                "entries/s",
                note="recomputes every entry hash and Merkle root from the values",
            )
        )
        small_n = max(n // 10, 1000)
        _, small = build(small_n, root, key)
        rss_small, rss_big = peak_rss(_RSS, small)[1], peak_rss(_RSS, parquet)[1]
        results.append(
            row(
                f"peak RSS, verify {n:,} vs {small_n:,} entries",
                rss_big / 2**20,
                rss_small / 2**20,
                None,
                "MiB",
                higher_is_better=False,
                note="constant memory: the larger log needs about the same",
            )
        )
        report("verify_speed", results)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
