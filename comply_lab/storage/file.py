"""Local storage: one JSONL file per UTC day, rotated by size.

Layout (compatible with the original tool)::

    path/audit_20260128.jsonl        first segment of 28 January 2026
    path/audit_20260128_001.jsonl    next segment, started when the first reached the size
    path/audit_20260129.jsonl

Unlike the original, rotation never renames a file: a full segment stays where it is and
the next one gets the next number, so several processes can append to one directory
(each line goes out in a single ``O_APPEND`` write, which the kernel keeps whole) and
readers never see a file move under them.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from comply_lab import _forksafe
from comply_lab.audit.entry import AuditEntry
from comply_lab.errors import InvalidQueryError, StorageError
from comply_lab.storage.base import StorageBase
from comply_lab.storage.durability import FsyncPolicy, GroupCommit
from comply_lab.storage.jsonl import parse_segment

_SEGMENT = re.compile(r"^audit_(\d{8})(?:_(\d{3,}))?\.jsonl$")
_RESTAT_EVERY = 256  # appends between size checks that notice other processes' writes


@dataclass(slots=True)
class _Open:
    """The segment this storage currently appends to."""

    day: date
    index: int
    path: Path
    fd: int
    size: int
    needs_newline: bool
    since_stat: int = 0


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def segment_name(day: date, index: int) -> str:
    """Return the file name of segment ``index`` (0 is the first) of ``day``."""
    stem = f"audit_{day:%Y%m%d}"
    return f"{stem}.jsonl" if index == 0 else f"{stem}_{index:03d}.jsonl"


class FileStorage(StorageBase):
    """Stores entries as JSONL day files in a directory.

    Args:
        path: Directory of the log; created if missing.
        rotation_size_mb: A segment that reaches this size is closed and the next write
            goes to the day's next segment.
        fsync: Durability against machine crashes: ``"never"``, ``"interval"`` (default)
            or ``"always"``; see :mod:`comply_lab.storage.durability`.
        fsync_interval_s: Longest delay before written data is fsynced under ``"interval"``.

    Raises:
        StorageError: the directory cannot be created.

    Example:
        >>> import tempfile
        >>> storage = FileStorage(tempfile.mkdtemp(), rotation_size_mb=50)
        >>> storage.days()
        []
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        rotation_size_mb: float = 100,
        *,
        fsync: FsyncPolicy = "interval",
        fsync_interval_s: float = 1.0,
    ) -> None:
        if isinstance(rotation_size_mb, bool) or not rotation_size_mb > 0:
            raise InvalidQueryError(f"rotation_size_mb must be > 0, got {rotation_size_mb!r}")
        self.path = Path(path)
        self.rotation_size_mb = rotation_size_mb
        self._limit = int(rotation_size_mb * 1024 * 1024)
        self._commit = GroupCommit(fsync, self._fsync, fsync_interval_s)
        self._lock = threading.Lock()
        self._open: _Open | None = None
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StorageError(
                f"cannot create log directory {self.path}: {err.strerror}; check the path and "
                "its permissions"
            ) from err
        _forksafe.register(self)

    def __repr__(self) -> str:
        return f"FileStorage({str(self.path)!r}, rotation_size_mb={self.rotation_size_mb!r})"

    # -- writing ---------------------------------------------------------------------

    def append(self, day: date, line: bytes) -> int | None:
        """Append ``line`` to the segment of ``day`` in a single write.

        Raises:
            StorageError: the write failed (disk full, read-only, ...); the entry is not
                stored, and the next append starts on a fresh line.
        """
        with self._lock:
            seg = self._segment_for(day)
            data = b"\n" + line if seg.needs_newline else line
            try:
                written = os.write(seg.fd, data)
            except OSError as err:
                # Reopen on the next append: the fault may be gone by then (space freed).
                self._open = None
                _close_quietly(seg.fd)
                raise StorageError(
                    f"could not append an entry to {seg.path}: {err.strerror}; the "
                    "entry was not stored (free space or fix permissions, then log again)"
                ) from err
            seg.size += written
            seg.since_stat += 1
            if written != len(data):
                seg.needs_newline = True
                raise StorageError(
                    f"short write of an entry to {seg.path} ({written} of {len(data)} "
                    "bytes, disk full?); the entry was not stored, its fragment will be "
                    "reported and skipped by readers"
                )
            seg.needs_newline = False
            return self._commit.written()

    def wait_durable(self, ticket: int) -> None:
        """Block until an fsync covers the append that returned ``ticket``."""
        try:
            self._commit.wait(ticket)
        except OSError as err:
            raise StorageError(
                f"fsync of the log in {self.path} failed: {err.strerror}; entries written "
                "since the last fsync may not survive a machine crash"
            ) from err

    def _segment_for(self, day: date) -> _Open:
        seg = self._open
        if seg is not None and seg.day == day:
            if seg.size < self._limit and seg.since_stat < _RESTAT_EVERY:
                return seg
            seg.size = os.fstat(seg.fd).st_size
            seg.since_stat = 0
            if seg.size < self._limit:
                return seg
            index = seg.index + 1
        else:
            index = max((i for i, _ in self._segments(day)), default=0)
        self._close_open()
        self._open = self._open_segment(day, index)
        return self._open

    def _open_segment(self, day: date, index: int) -> _Open:
        while True:
            path = self.path / segment_name(day, index)
            flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            try:
                fd = os.open(path, flags, 0o644)
            except OSError as err:
                raise StorageError(
                    f"cannot open log segment {path}: {err.strerror}; check that the directory "
                    "exists and is writable"
                ) from err
            size = os.fstat(fd).st_size
            if size < self._limit:
                # A file that does not end in a newline was torn by a crash: start afresh.
                torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
                return _Open(day, index, path, fd, size, needs_newline=torn)
            os.close(fd)
            index += 1

    def _close_open(self) -> None:
        seg, self._open = self._open, None
        if seg is None:
            return
        if self._commit.policy != "never":
            os.fsync(seg.fd)
        os.close(seg.fd)

    def _fsync(self) -> None:
        with self._lock:
            fd = os.dup(self._open.fd) if self._open is not None else None
        if fd is not None:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def close(self) -> None:
        """Fsync (unless the policy is ``"never"``) and close the open segment."""
        self._commit.stop()
        with self._lock:
            self._close_open()

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._commit.reset_after_fork()

    # -- reading ---------------------------------------------------------------------

    def _segments(self, day: date) -> list[tuple[int, Path]]:
        prefix = f"audit_{day:%Y%m%d}"
        found = []
        for name in self._names():
            match = _SEGMENT.match(name)
            if match and name.startswith(prefix):
                found.append((int(match.group(2) or 0), self.path / name))
        return sorted(found)

    def _names(self) -> list[str]:
        try:
            return os.listdir(self.path)
        except FileNotFoundError:
            return []

    def days(self) -> list[date]:
        """Return the days that have segment files, oldest first."""
        found = set()
        for name in self._names():
            match = _SEGMENT.match(name)
            if match:
                try:
                    found.add(datetime.strptime(match.group(1), "%Y%m%d").date())
                except ValueError:
                    continue
        return sorted(found)

    def segment_paths(self, day: date) -> list[Path]:
        """Return the segment files of ``day`` in write order."""
        return [path for _, path in self._segments(day)]

    def read_day(self, day: date) -> Iterator[AuditEntry]:
        """Yield the entries of ``day``, segment by segment, skipping damaged lines."""
        for path in self.segment_paths(day):
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue  # deleted by retention while we listed
            except OSError as err:
                raise StorageError(f"cannot read {path}: {err.strerror}") from err
            yield from parse_segment(data, str(path))

    def drop_day(self, day: date) -> int:
        """Delete every segment file of ``day``; return how many entries they held."""
        paths = self.segment_paths(day)
        count = sum(1 for _ in self.read_day(day))
        for path in paths:
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as err:
                raise StorageError(
                    f"cannot delete {path}: {err.strerror}; fix permissions and run retention again"
                ) from err
        return count

    def count_sync(self) -> int:
        """Return the number of readable entries in all segments."""
        return sum(sum(1 for _ in self.read_day(day)) for day in self.days())
