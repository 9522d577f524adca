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

from comply_lab import AuditLogger, EncryptionManager, KeyRing, SubjectKeys, open_log
from comply_lab.audit import FileStorage

sys.path.insert(0, str(Path(__file__).parent))
from _common import report, row

PROMPT = "Summarize the quarterly report for the finance team, with the main risks"
ANSWER = "Q4 showed 15% revenue growth, driven by the new subscription tier; risks are ..."


def log_rate(n: int, subjects: int = 0, **options: object) -> tuple[float, Path]:
    """Entries/s of log_sync with the given logger options; return the log's path too.

    With ``subjects``, entries name one of that many users in ``metadata["user_id"]``.
    """
    path = Path(tempfile.mkdtemp())
    logger = AuditLogger(FileStorage(path, fsync="never"), **options)  # type: ignore[arg-type]
    users = [{"user_id": f"user-{i}"} for i in range(subjects)] or [None]
    started = time.perf_counter()
    for i in range(n):
        logger.log_sync(
            input=PROMPT,
            output=ANSWER,
            provider="openai",
            model="gpt-4o",
            metadata=users[i % len(users)],
        )
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
    subject_keys = SubjectKeys(tempfile.mkdtemp(), ring)
    started = time.perf_counter()
    for i in range(1000):  # first use files each subject's key (fsynced); timed apart
        subject_keys.write_key(None, f"user-{i}")
    first_use = (time.perf_counter() - started) / 1000
    per_subject, _ = log_rate(n, 1000, encryption=subject_keys, store_content=True)
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
                "log_sync(), keys for 1,000 subjects vs one key ring",
                per_subject,
                gcm,
                None,
                "entries/s",
                note=f"a stat() of the key file per value, to notice shredding; a subject's "
                f"first entry also files its key: {first_use * 1e3:.2f} ms",
            ),
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
