"""Regenerate the sample log shipped in data/sample/ (run: .venv/bin/python data/make_sample.py).

The same seed gives the same interactions; entry ids, writer ids, ciphertexts and
signatures differ from run to run, as in any real log. The keys are the published test
keys of ``comply_lab.sample.sample_keys()`` — never use them for real data.

Contents:

- ``jsonl/``: 1,000 entries over 14 days as JSONL day files, content stored encrypted;
- ``parquet/``: the same log sealed into signed Parquet partitions, with its manifest;
- ``writer.pub``: the public key that verifies the Parquet manifest;
- ``checkpoint.txt``: a signed checkpoint (C2SP signed note) of the Parquet log.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from comply_lab import AuditLogger, open_log
from comply_lab.audit import FileStorage
from comply_lab.crypto.signing import public_key_pem
from comply_lab.sample import sample_keys, write_sample
from comply_lab.storage.compaction import compact

HERE = Path(__file__).resolve().parent / "sample"
END = datetime(2026, 1, 31, tzinfo=UTC)


def main() -> None:
    """Write data/sample/ afresh."""
    shutil.rmtree(HERE, ignore_errors=True)
    encryption, signing = sample_keys()
    write_sample(
        lambda clock: AuditLogger(
            FileStorage(HERE / "jsonl", fsync="never"),
            encryption=encryption,
            store_content=True,
            clock=clock,
        ),
        1000,
        14,
        end=END,
        seed=2026,
    ).close()
    shutil.copytree(HERE / "jsonl", HERE / "parquet")
    compact(HERE / "parquet", signing_key=signing)
    (HERE / "writer.pub").write_bytes(public_key_pem(signing))
    open_log(HERE / "parquet").checkpoint(signing).save(HERE / "checkpoint.txt")
    print(f"wrote {HERE}")


if __name__ == "__main__":
    main()
