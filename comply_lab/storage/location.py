"""Where a log is: the one rule that tells a URL (``s3://bucket/prefix``) from a path.

A target is a URL when it starts with a scheme and ``://``; ``file://`` URLs are paths.
Every opener (``open_log``, ``AuditLogger``, ``compact``, ``FileStorage``, the command
line) asks here, so the same text never means a folder to one and a bucket to another.
"""

from __future__ import annotations

import os
import re

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def url_scheme(target: str | os.PathLike[str]) -> str | None:
    """Return the scheme of a URL target (``"s3"``), or None for a local path.

    Example:
        >>> url_scheme("s3://bucket/audit/"), url_scheme("logs/audit"), url_scheme("file:///x")
        ('s3', None, None)
    """
    found = _SCHEME.match(os.fspath(target)) if isinstance(target, str) else None
    if found is None or found.group(1).lower() == "file":
        return None
    return found.group(1).lower()


def local_path(target: str | os.PathLike[str]) -> str:
    """Return a local target as a path (``file://`` removed)."""
    text = os.fspath(target)
    return text[len("file://") :] if text.lower().startswith("file://") else text


BUNDLE_HINT = (
    "is an evidence bundle, not a log: check it with comply-lab verify-bundle DIR "
    "--public-key WRITER.pub"
)
"""What to say of a folder that holds an evidence bundle (its ``SHA256SUMS``) where a log
was expected."""


def holds_log(folder: str | os.PathLike[str]) -> bool:
    """Whether a local folder holds a log: day files, partitions or the log's own records.

    An empty folder does not (it may become one); a folder of other things does not.
    """
    try:
        with os.scandir(folder) as entries:
            return any(_log_entry(entry.name) for entry in entries)
    except OSError:
        return False


def logs_below(folder: str | os.PathLike[str], depth: int = 3, limit: int = 10) -> list[str]:
    """Return up to ``limit`` folders under ``folder`` (``depth`` levels at most) holding logs.

    Links are not followed; the paths are given as ``folder/sub/log``.
    """
    found: list[str] = []
    level = [os.fspath(folder)]
    for _ in range(depth):
        below: list[str] = []
        for parent in level:
            try:
                with os.scandir(parent) as entries:
                    children = sorted(e.path for e in entries if e.is_dir(follow_symlinks=False))
            except OSError:
                continue
            for child in children:
                if holds_log(child):
                    found.append(child)
                    if len(found) == limit:
                        return found
                else:
                    below.append(child)
        level = below
    return found


def _log_entry(name: str) -> bool:
    return (
        (name.startswith("audit_") and name.endswith(".jsonl"))
        or name.startswith("date=")
        or (name.startswith("_") and not name.startswith("__"))
    )
