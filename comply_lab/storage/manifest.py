"""The manifest: one chained record per sealed segment, in ``_manifest.jsonl``.

Each record names a sealed segment and what it must contain: entry count, time range,
SHA-256 and size of its bytes, first and last entry hash, and ``prev_manifest_hash``, the
hash of the record before it, so the manifest itself is a hash chain (like CloudTrail
digest files). The file starts with ``_`` so dataset readers (pyarrow, DuckDB, Spark)
ignore it. Several processes may append; an exclusive ``flock`` keeps the chain linear.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from comply_lab.audit.entry import GENESIS_HASH

MANIFEST = "_manifest.jsonl"


def record_hash(record: dict[str, Any]) -> str:
    """Return the hash of a manifest record: SHA-256 of its canonical form without it."""
    body = {k: v for k, v in record.items() if k != "manifest_hash"}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def read_manifest(root: Path) -> list[dict[str, Any]]:
    """Return the readable manifest records of the store at ``root``, in order."""
    try:
        data = (root / MANIFEST).read_bytes()
    except FileNotFoundError:
        return []
    return list(_records(data))


def _records(data: bytes) -> Iterator[dict[str, Any]]:
    for line in data.split(b"\n"):
        if line.strip():
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a torn line; verification reports it
            if isinstance(record, dict):
                yield record


def append_manifest(root: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Chain ``record`` to the last manifest record, append it durably and return it."""
    fd = os.open(root / MANIFEST, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        data = os.pread(fd, size, 0) if size else b""
        previous = [r for r in _records(data) if "manifest_hash" in r]
        chained = dict(
            record, prev_manifest_hash=previous[-1]["manifest_hash"] if previous else GENESIS_HASH
        )
        chained["manifest_hash"] = record_hash(chained)
        prefix = b"\n" if data and not data.endswith(b"\n") else b""
        os.write(fd, prefix + orjson.dumps(chained) + b"\n")
        os.fsync(fd)
        return chained
    finally:
        os.close(fd)
