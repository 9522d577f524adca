"""Digests of stored bytes."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path


def prefix_sha256(path: Path) -> tuple[int, str] | None:
    """Return the size of a file and the SHA-256 of that many bytes.

    The size is taken first, so bytes appended meanwhile by other writers are left out.

    Returns:
        None if the file is gone, or is a symbolic link (never followed).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as err:
        if err.errno == errno.ELOOP:
            return None
        raise
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(fd).st_size
        digest = hashlib.sha256()
        left = size
        while left and (chunk := f.read(min(left, 1 << 20))):
            digest.update(chunk)
            left -= len(chunk)
    return size - left, digest.hexdigest()
