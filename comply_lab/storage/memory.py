"""In-memory storage for tests, notebooks and short-lived tools."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from typing import Any

import orjson

from comply_lab import _forksafe
from comply_lab.errors import (
    ConcurrentOperationError,
    ConfigurationError,
    StorageError,
)
from comply_lab.storage.base import StorageBase
from comply_lab.storage.decode import summarize_segments
from comply_lab.storage.deletions import check_deletion, deletion_record
from comply_lab.storage.manifest import (
    DELETIONS,
    RETENTION,
    chain_record,
    record_line,
    retention_record,
)
from comply_lab.storage.segments import Segment


class MemoryStorage(StorageBase):
    """Keeps entries in memory, partitioned by UTC day like every other backend.

    Entries are held as their stored JSON lines and decoded when read, exactly as from a
    file, so what a test sees here is what a file would give back.

    Args:
        max_entries: When set, the oldest entries are evicted (first in, first out) once
            the store holds more than this many.

    Example:
        >>> storage = MemoryStorage(max_entries=1000)
        >>> storage.count_sync()
        0
    """

    def __init__(self, max_entries: int | None = None) -> None:
        if max_entries is not None and (isinstance(max_entries, bool) or max_entries < 1):
            raise ConfigurationError(
                f"max_entries must be a positive int or None, got {max_entries!r}"
            )
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._maintenance = threading.Lock()
        self._order: deque[date] = deque()
        self._days: dict[date, deque[bytes]] = {}
        self._metadata: dict[str, list[bytes]] = {}
        _forksafe.register(self)

    def __repr__(self) -> str:
        return f"MemoryStorage(max_entries={self.max_entries!r})"

    @contextmanager
    def maintenance(self, operation: str) -> Iterator[None]:
        """Hold this store's maintenance lock while the block runs (one process: a lock).

        Raises:
            ConcurrentOperationError: another thread holds it.
        """
        if not self._maintenance.acquire(blocking=False):
            raise ConcurrentOperationError(
                f"{operation} cannot start: another maintenance operation is running on "
                f"{self!r}; run it again once that one has finished"
            )
        try:
            yield
        finally:
            self._maintenance.release()

    def __reduce__(self) -> tuple[Any, ...]:
        """Refuse to be pickled: the entries live in this process only.

        Raises:
            StorageError: always; Dask's threaded scheduler reads a MemoryStorage in
                place, other processes need a FileStorage or S3Storage.
        """
        raise StorageError(
            "a MemoryStorage lives in one process and cannot be sent to another; use "
            "Dask's threaded scheduler (dask.config.set(scheduler='threads')) or log to a "
            "FileStorage or S3Storage"
        )

    def append(self, day: date, line: bytes) -> int | None:
        """Store one entry; it is as durable as memory allows at once."""
        with self._lock:
            self._days.setdefault(day, deque()).append(line)
            self._order.append(day)
            if self.max_entries is not None and len(self._order) > self.max_entries:
                oldest = self._order.popleft()
                bucket = self._days[oldest]
                bucket.popleft()
                if not bucket:
                    del self._days[oldest]
        return None

    def wait_durable(self, ticket: int) -> None:
        """Return at once: memory has no slower level of durability."""

    def days(self) -> list[date]:
        """Return the days that hold entries, oldest first."""
        with self._lock:
            return sorted(self._days)

    def segments(self, day: date) -> list[Segment]:
        """Return the day's one segment: its JSON lines in insertion order."""
        with self._lock:
            lines = self._days.get(day)
            if not lines:
                return []
            return [Segment(day, f"memory/{day.isoformat()}.jsonl", "jsonl", 0, False, len(lines))]

    def read_segment(self, segment: Segment) -> bytes:
        """Return the JSON lines of a day."""
        with self._lock:
            return b"".join(self._days.get(segment.day, ()))

    def read_metadata(self, name: str) -> bytes:
        """Return the records appended to a metadata file, as JSON lines."""
        with self._lock:
            return b"".join(self._metadata.get(name, ()))

    def append_metadata(self, name: str, record: dict[str, Any]) -> None:
        """Keep a metadata record in memory, chained to the one before it."""
        with self._lock:
            trail = self._metadata.setdefault(name, [])
            previous = orjson.loads(trail[-1]) if trail else None
            trail.append(record_line(chain_record(record, previous)) + b"\n")

    def delete_sync(
        self, entry_id: str, *, by: str | None = None, reason: str | None = None
    ) -> bool:
        """Delete one entry at once: its deletion is recorded, then its line is dropped.

        Nothing here is sealed, so nothing waits for sealing; the record lets a
        verification of this store report the entry ``deleted_on_request``.
        """
        entry = self.read_sync(entry_id)
        if entry is None:
            return False
        check_deletion(self, entry)
        self.append_metadata(DELETIONS, deletion_record(entry, by, reason))
        day = entry.timestamp.date()
        with self._lock:
            bucket = self._days.get(day, deque())
            kept = deque(line for line in bucket if orjson.loads(line).get("id") != entry_id)
            if len(kept) < len(bucket):
                self._order.remove(day)
            if kept:
                self._days[day] = kept
            else:
                self._days.pop(day, None)
        return True

    def drain(self) -> dict[date, bytes]:
        """Remove and return everything held, as JSON lines per day (for uploading)."""
        with self._lock:
            taken = {day: b"".join(lines) for day, lines in self._days.items()}
            self._days.clear()
            self._order.clear()
        return taken

    def drop_day(self, day: date, details: Mapping[str, Any] | None = None) -> int:
        """Delete all entries of ``day``, recorded first; return how many there were."""
        segments = self.segments(day)
        if segments:
            count, writers = summarize_segments(self, segments)
            names = [s.name for s in segments]
            self.append_metadata(RETENTION, retention_record(day, names, count, details, writers))
        with self._lock:
            bucket = self._days.pop(day, deque())
            if bucket:
                self._order = deque(d for d in self._order if d != day)
        return len(bucket)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._maintenance = threading.Lock()
