"""The storage protocol every backend implements, and the async twins derived from it.

A store is a set of UTC **day partitions**. Backends implement a handful of primitive,
synchronous methods; querying, retention and DataFrame loading are written once on top of
them (see :mod:`comply_lab.storage.scan`), so every backend behaves the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date
from typing import Protocol, runtime_checkable

from comply_lab._twins import Closing
from comply_lab.audit.entry import AuditEntry


@runtime_checkable
class Storage(Protocol):
    """What a storage backend provides.

    ``append`` is called by one logger at a time per chain, in chain order, and must keep
    that order within a partition. Backends store the line as given (or a lossless
    transformation of it): the logger serializes and hashes each entry exactly once.
    Reads must tolerate concurrent appends.
    """

    def append(self, day: date, line: bytes) -> int | None:
        """Store one entry of UTC ``day``; ``line`` is its JSONL record, ending in a newline.

        Returns:
            A ticket to pass to :meth:`wait_durable`, or None when the entry is already as
            durable as the backend's policy promises.
        """
        ...

    def wait_durable(self, ticket: int) -> None:
        """Block until the append that returned ``ticket`` is durable."""
        ...

    def days(self) -> list[date]:
        """Return the day partitions that hold data, oldest first."""
        ...

    def read_day(self, day: date) -> Iterator[AuditEntry]:
        """Yield the entries of one day partition in stored order."""
        ...

    def drop_day(self, day: date) -> int:
        """Delete a whole day partition and return how many entries it held."""
        ...

    def count_sync(self) -> int:
        """Return the number of stored entries."""
        ...

    def close(self) -> None:
        """Make everything durable and release files, threads and connections."""
        ...


class StorageBase(Closing):
    """Shared behaviour of the bundled backends: async twins and context management.

    Subclasses implement the :class:`Storage` primitives.
    """

    def count_sync(self) -> int:
        """Return the number of stored entries."""
        raise NotImplementedError

    async def count(self) -> int:
        """Return the number of stored entries (async twin of :meth:`count_sync`)."""
        return await asyncio.to_thread(self.count_sync)
