"""One maintenance operation at a time per log: compaction, key rotation, retention.

Writers never wait for this lock: appending and a writer's own sealing are safe alongside
anything (per-segment ``flock`` and create-only names see to that). Operations that rewrite or
delete what is stored take the log's maintenance lock first, and a second one started meanwhile
stops at once with [`ConcurrentOperationError`][comply_lab.errors.ConcurrentOperationError]
naming the operation that holds it — never a half-done race on the same files.

- Locally the lock is an exclusive ``flock`` on ``_maintenance.lock`` in the log's
  directory: the kernel releases it when its process dies, so a killed operation never
  leaves the log locked.
- In S3 it is an object ``_maintenance/lock`` created only if absent. A process that dies
  holding it cannot release it, so the object names its holder and an expiry
  ([`S3_LOCK_HOURS`][comply_lab.storage.lock.S3_LOCK_HOURS]); once expired, the next operation
  takes it over.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from comply_lab._time import utc_now
from comply_lab.errors import ConcurrentOperationError
from comply_lab.storage.folder import Folder

if TYPE_CHECKING:
    from comply_lab.storage.s3_objects import S3Objects

LOCK_FILE = "_maintenance.lock"
S3_LOCK = "_maintenance/lock"
S3_LOCK_HOURS = 24
"""How long an S3 maintenance lock holds before another operation may take it over."""


def _holder(operation: str) -> dict[str, str | int]:
    return {
        "operation": operation,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since": utc_now().isoformat(timespec="seconds"),
    }


def _busy(operation: str, where: str, holder: bytes) -> ConcurrentOperationError:
    try:
        info = orjson.loads(holder)
        who = (
            f"{info['operation']}, pid {info['pid']} on {info['host']}, since {info['since']}"
            if isinstance(info, dict)
            else "another process"
        )
    except (orjson.JSONDecodeError, KeyError):
        who = "another process"
    return ConcurrentOperationError(
        f"{operation} cannot start: another maintenance operation is running on {where} "
        f"({who}); run it again once that one has finished"
    )


@contextmanager
def local_lock(root: Path, operation: str) -> Iterator[None]:
    """Hold the maintenance lock of the log directory ``root`` while the block runs.

    Raises:
        ConcurrentOperationError: another process (or thread) holds it.
        ForeignFileError: the lock file is a symbolic link.
    """
    with Folder(root) as folder:
        fd = folder.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _busy(operation, str(root), os.pread(fd, 4096, 0)) from None
        info = orjson.dumps(_holder(operation))
        os.ftruncate(fd, 0)
        os.pwrite(fd, info, 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)


@contextmanager
def s3_lock(store: S3Objects, operation: str) -> Iterator[None]:
    """Hold the maintenance lock object of an S3 log while the block runs.

    Raises:
        ConcurrentOperationError: another process holds it and it has not expired.
    """
    holder = dict(_holder(operation))
    expires = utc_now() + timedelta(hours=S3_LOCK_HOURS)
    holder["expires"] = expires.isoformat(timespec="seconds")
    body = orjson.dumps(holder)
    if not store.put_new(S3_LOCK, body):
        try:
            held = store.get(S3_LOCK)
            current = orjson.loads(held)
        except (FileNotFoundError, orjson.JSONDecodeError):
            held, current = b"", {}
        until = current.get("expires") if isinstance(current, dict) else None
        try:
            expired = datetime.fromisoformat(str(until)) < utc_now()
        except ValueError:
            expired = True  # unreadable: treat as left by a process that died
        if not expired:
            raise _busy(operation, store.url(""), held)
        store.delete_under([S3_LOCK])
        if not store.put_new(S3_LOCK, body):
            raise _busy(operation, store.url(""), store.get(S3_LOCK))
    try:
        yield
    finally:
        try:
            if store.get(S3_LOCK) == body:
                store.delete_under([S3_LOCK])
        except FileNotFoundError:
            pass
