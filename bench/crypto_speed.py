"""Encryption cost: logging and selective decryption, beside raw AES-GCM and Fernet.

Run: ``.venv/bin/python bench/crypto_speed.py [--entries 100000]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from comply_lab import AuditLogger, EncryptionManager, KeyRing, open_log
from comply_lab.audit import FileStorage

sys.path.insert(0, str(Path(__file__).parent))
from _common import report, row

PROMPT = "Summarize the quarterly report for the finance team, with the main risks"
ANSWER = "Q4 showed 15% revenue growth, driven by the new subscription tier; risks are ..."


def log_rate(n: int, **options: object) -> tuple[float, Path]:
    """Entries/s of log_sync with the given logger options; return the log's path too."""
    path = Path(tempfile.mkdtemp())
    logger = AuditLogger(FileStorage(path, fsync="never"), **options)  # type: ignore[arg-type]
    started = time.perf_counter()
    for _ in range(n):
        logger.log_sync(input=PROMPT, output=ANSWER, provider="openai", model="gpt-4o")
    rate = n / (time.perf_counter() - started)
    logger.close()
    return rate, path


def raw_rate(n: int, encrypt: object) -> float:
    """Encryptions/s of a bare cipher call on the same text (two per entry)."""
    started = time.perf_counter()
    for _ in range(n):
        encrypt(PROMPT)  # type: ignore[operator]
        encrypt(ANSWER)  # type: ignore[operator]
    return n / (time.perf_counter() - started)


def main() -> None:
    """Run the benchmark, print the table, write bench/out/crypto_speed.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    args = parser.parse_args()
    n = args.entries
    plain, _ = log_rate(n)
    ring = KeyRing.generate()
    gcm, ring_path = log_rate(n, encryption=ring, store_content=True)
    fernet, _ = log_rate(n, encryption=EncryptionManager(), store_content=True)
    aes = AESGCM(os.urandom(32))
    raw_gcm = raw_rate(n, lambda t: aes.encrypt(os.urandom(12), t.encode(), b"id|field"))
    fernet_key = Fernet(Fernet.generate_key())
    raw_fernet = raw_rate(n, lambda t: fernet_key.encrypt(t.encode()))
    log = open_log(ring_path, progress=False)
    ids = log.entries(columns=["id"])["id"]
    started = time.perf_counter()
    result = log.decrypt(ids, ring, reason="benchmark")
    decrypt_rate = len(ids) / (time.perf_counter() - started)
    assert result["decrypted"].all()
    report(
        "crypto_speed",
        [
            row(
                "log_sync(), AES-GCM key ring vs hash-only",
                gcm,
                plain,
                None,
                "entries/s",
                note=f"encryption keeps {gcm / plain:.0%} of hash-only logging speed",
            ),
            row("log_sync(), Fernet vs AES-GCM key ring", fernet, gcm, None, "entries/s"),
            row(
                "AES-GCM ring logging vs raw AES-GCM (2 calls an entry)",
                gcm,
                raw_gcm,
                None,
                "entries/s",
            ),
            row(
                "raw Fernet vs raw AES-GCM (2 calls an entry)",
                raw_fernet,
                raw_gcm,
                None,
                "entries/s",
            ),
            row(
                f"log.decrypt() of {len(ids):,} selected rows vs raw AES-GCM",
                decrypt_rate,
                raw_gcm,
                None,
                "rows/s",
                note="includes reading the rows and the access record",
            ),
        ],
    )


if __name__ == "__main__":
    main()
