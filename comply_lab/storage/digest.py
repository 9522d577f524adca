"""Digests of stored bytes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def file_sha256(path: Path) -> str:
    """Return the hex SHA-256 of a file's bytes, read in chunks (constant memory)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def prefix_sha256(path: Path) -> tuple[int, str] | None:
    """Return the size of a file and the SHA-256 of that many bytes; None if it is gone.

    The size is taken first, so bytes appended meanwhile by other writers are left out.
    """
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            digest = hashlib.sha256()
            left = size
            while left and (chunk := f.read(min(left, 1 << 20))):
                digest.update(chunk)
                left -= len(chunk)
    except FileNotFoundError:
        return None
    return size - left, digest.hexdigest()
