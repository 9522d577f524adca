"""``python -m comply_lab.demo``: log a realistic sample, verify it and summarize it.

Writes 30 days of synthetic traffic (several providers and models, about 8% blocked requests)
into ``data/demo/log`` with [`AuditLogger`][comply_lab.audit.logger.AuditLogger], sealed into
signed Parquet partitions; verifies the log with the writer's public key and saves a checkpoint;
then reads it back through the same API an investigator uses and prints counts, the safety
failure rate and latency figures. The writer's keys stay beside the log (``writer.pub``, and
``writer.key`` readable by its owner only) so the guide's examples can be tried on it; the
commands it prints run as printed from the directory it ran in.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from comply_lab._time import utc_now
from comply_lab.audit import AuditLogger, FileStorage
from comply_lab.crypto.signing import generate_signing_key, private_key_pem, public_key_pem
from comply_lab.lab import open_log, plots
from comply_lab.sample import write_sample

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

_MARKER = ".comply-lab-demo"


def _fresh_dir(path: Path) -> Path:
    """Empty ``path`` if an earlier demo made it; refuse to touch anything else."""
    if path.exists():
        if not (path / _MARKER).exists():
            sys.exit(f"{path} exists and was not made by the demo; pass another --out")
        shutil.rmtree(path)
    path.mkdir(parents=True)
    (path / _MARKER).write_text("made by python -m comply_lab.demo; safe to delete\n")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; return the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m comply_lab.demo", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("data/demo"), help="demo directory")
    parser.add_argument("--entries", type=int, default=50_000, help="entries to log")
    parser.add_argument("--days", type=int, default=30, help="days of traffic")
    parser.add_argument("--seed", type=int, default=7, help="random seed")
    args = parser.parse_args(argv)

    out = _fresh_dir(args.out)
    log_dir = out / "log"
    end = utc_now()
    started = time.perf_counter()
    key = generate_signing_key()
    logger = write_sample(
        lambda clock: AuditLogger(
            FileStorage(log_dir, format="parquet", signing_key=key), clock=clock
        ),
        args.entries,
        args.days,
        end=end,
        seed=args.seed,
    )
    logger.close()
    elapsed = time.perf_counter() - started
    files = sorted(log_dir.rglob("*.parquet"))
    size = sum(f.stat().st_size for f in files)
    print(f"logged and sealed {args.entries:,} entries in {elapsed:.1f} s into {log_dir}/")
    print(f"  {len(files)} Parquet segments, {size / 1e6:.1f} MB, hash-only (no content stored)")

    log = open_log(log_dir, progress=False)
    (out / "writer.pub").write_bytes(public_key_pem(key))
    _keep_key(out / "writer.key", key)
    checkpoint = log.checkpoint(key)
    checkpoint.save(out / "checkpoint.txt")
    report = log.verify(public_key=key, checkpoint=checkpoint)
    print(f"verified: {report.summary_line()}")
    print(f"  public key in {out}/writer.pub, checkpoint in {out}/checkpoint.txt\n")
    report.raise_if_failed()

    reader = AuditLogger(log_dir)
    entries = reader.get_entries_sync(end - timedelta(days=args.days), end)
    print(f"read back {len(entries):,} entries for the last {args.days} days\n")
    summary = log.stats()
    print(summary.text())
    (out / "plots").mkdir()
    for name, figure in summary.plots().items():
        plots.save(figure, out / "plots" / f"{name}.png")
    bundle = log.evidence_bundle(out / "evidence", checkpoint=checkpoint, signing_key=key)
    print(f"\nplots in {out}/plots/, evidence bundle in {bundle}/ (open report.html)")
    print(f"  check it: {_command()} verify-bundle {bundle} --public-key {out}/writer.pub")
    print(f"  the demo's signing key is {out}/writer.key (for trying the guide on this log)")
    return 0


_KEY_NOTE = b"""\
The signing key of the demo log written next to this file by `make demo`
(python -m comply_lab.demo). It is kept so that the guide's holds, retention and
deletion examples can be tried on the demo log. It protects nothing: never use it
for a real log. Make a key of your own with
comply_lab.crypto.signing.generate_signing_key() and keep it in a secrets store.

"""


def _keep_key(path: Path, key: Ed25519PrivateKey) -> None:
    """Write the demo's signing key, readable by its owner only, with a note saying what it is."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(_KEY_NOTE + private_key_pem(key))


def _command() -> str:
    """Return how to run ``comply-lab`` from here: its name if it is on PATH, else its path."""
    script = Path(sys.executable).parent / "comply-lab"
    found = shutil.which("comply-lab")
    if found is not None and Path(found).resolve() == script.resolve():
        return "comply-lab"
    try:
        return os.path.relpath(script)
    except ValueError:  # another drive
        return str(script)


if __name__ == "__main__":
    raise SystemExit(main())
