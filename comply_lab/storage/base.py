"""The storage protocol every backend implements, and the async twins derived from it.

A store is a set of UTC **day partitions**. Backends implement a handful of primitive,
synchronous methods; querying, retention and DataFrame loading are written once on top of them
(see [`comply_lab.storage.scan`][comply_lab.storage.scan]), so every backend behaves the same.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator, Mapping
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

import orjson

from comply_lab._twins import Closing
from comply_lab.errors import InvalidEntryError
from comply_lab.model.chain import Chain
from comply_lab.model.entry import AuditEntry
from comply_lab.model.ids import id_time
from comply_lab.model.validate import stored_fields, unencodable
from comply_lab.storage.decode import count_day, read_day
from comply_lab.storage.deletions import check_deletion, deleted, deletion_record
from comply_lab.storage.manifest import DELETIONS
from comply_lab.storage.scan import entries_between, find_entry
from comply_lab.storage.segments import Segment

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    from comply_lab._time import TimeLike


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
            A ticket to pass to [`wait_durable`][comply_lab.storage.base.Storage.wait_durable],
            or None when the entry is already as durable as the backend's policy promises.
        """
        ...

    def wait_durable(self, ticket: int) -> None:
        """Block until the append that returned ``ticket`` is durable."""
        ...

    def days(self) -> list[date]:
        """Return the day partitions that hold data, oldest first."""
        ...

    def segments(self, day: date) -> list[Segment]:
        """Return the readable segments of one day partition, in write order.

        A segment must be listed once: a backend that keeps an entry in two places for a
        moment (a JSONL source and its sealed Parquet twin) lists only one of them.
        """
        ...

    def read_segment(self, segment: Segment) -> bytes:
        """Return a segment's bytes (JSONL or Parquet).

        Raises:
            FileNotFoundError: the segment was sealed or deleted since it was listed.
        """
        ...

    def drop_day(self, day: date, details: Mapping[str, Any] | None = None) -> int:
        """Delete a whole day partition and return how many entries it held.

        Backends record the deletion first (a ``_retention.jsonl`` record, see
        `retention_record`, with ``details`` such as
        who and under which policy), so verification reports the partition as expired by
        policy rather than missing.
        """
        ...

    def read_metadata(self, name: str) -> bytes:
        """Return a metadata file (``_manifest.jsonl``, ``_retention.jsonl``); b"" if absent."""
        ...

    def append_metadata(self, name: str, record: dict[str, Any]) -> None:
        """Append a record to a chained metadata file (``_access.jsonl``, ...)."""
        ...

    def close(self) -> None:
        """Make everything durable and release files, threads and connections."""
        ...


class StorageBase(Closing):
    """Shared behaviour of the bundled backends, written once over the primitives.

    Subclasses implement the [`Storage`][comply_lab.storage.base.Storage] primitives; this class
    adds reading a day, counting, async twins and context management.

    Attributes:
        signing_key: The Ed25519 key that signs every record the store appends (None: the
            store signs nothing).
        origin: The name a new log's genesis record gives it (None: ``comply-lab/`` and
            the key's fingerprint), which its checkpoints carry.
        root_key: The log's root public key, pinned by whoever opened the store
            (``open_log(..., public_key=...)``): the trails the store checks before acting
            (holds before retention or a deletion, every trail before a checkpoint) must
            verify under it. None: the signing key's own is taken for the root.
    """

    signing_key: Ed25519PrivateKey | None = None
    root_key: Ed25519PublicKey | None = None
    origin: str | None = None

    def register_writer(self, writer_id: str) -> None:
        """Register a writer's chain before its first entry, in a store with a signing key.

        The first writer of a new log writes its genesis record too (see
        [`comply_lab.storage.genesis`][comply_lab.storage.genesis]); a store without a key
        records nothing (its log is unsigned: nothing in it is proof), and may not write
        into a signed log at all.

        Raises:
            SigningKeyRequiredError: the store has no key and the log is signed (it has a
                genesis record), or it signs with an operator key the pinned root did not
                certify for ``seal``.
            UnadoptedLogError: the store has a key, and the log exists without a genesis.
            StorageError: the record could not be stored; no entry was written.
        """
        from comply_lab.storage.genesis import refuse_keyless, register

        if self.signing_key is None:
            refuse_keyless(self)
            return
        from comply_lab.storage.manifest import WRITERS
        from comply_lab.storage.signers import check_may_sign

        check_may_sign(self, WRITERS)
        storage = cast("Storage", self)  # every backend is a Storage
        register(storage, writer_id, self.signing_key, self.origin, self.heartbeat_cadence())

    def note_head(self, writer_id: str, seq: int, entry_hash: str) -> None:
        """Take note of a chain's newest stored entry: the next heartbeat signs it.

        A heartbeat that signs each chain's head makes any later change to the entries it
        covers a finding, whoever can write the files; a store without a key keeps none.
        """
        if self.signing_key is not None:
            self.__dict__.setdefault("_heads", {})[writer_id] = [seq, entry_hash]

    def chain_heads(self) -> dict[str, list[Any]]:
        """Return the newest ``[seq, entry_hash]`` of each chain written through this store."""
        return dict(self.__dict__.get("_heads", {}))

    def heartbeat_cadence(self) -> float | None:
        """Return the heartbeat cadence this store keeps, in seconds (None: none)."""
        return None

    def __dask_tokenize__(self) -> tuple[str, int]:
        """Name this storage in Dask task keys by identity (its data changes over time)."""
        return (type(self).__name__, id(self))

    def days(self) -> list[date]:
        """Return the day partitions that hold data, oldest first."""
        raise NotImplementedError

    def segments(self, day: date) -> list[Segment]:
        """Return the readable segments of one day partition, in write order."""
        raise NotImplementedError

    def read_segment(self, segment: Segment) -> bytes:
        """Return a segment's bytes."""
        raise NotImplementedError

    def read_metadata(self, name: str) -> bytes:
        """Return a metadata file; backends without metadata have none."""
        return b""

    def append_metadata(self, name: str, record: dict[str, Any]) -> None:
        """Append a record to a metadata file; subclasses that keep metadata override it."""
        raise NotImplementedError

    def read_day(self, day: date) -> Iterator[AuditEntry]:
        """Yield the entries of one day partition in stored order."""
        return read_day(self, day)

    def count_sync(self) -> int:
        """Return the number of stored entries, from manifests where they know it.

        Entries deleted on request are not counted (see
        `count_day`).
        """
        hidden = deleted(self)
        return sum(count_day(self, day, hidden) for day in self.days())

    async def count(self) -> int:
        """Return the number of stored entries (async twin of `count_sync`)."""
        return await asyncio.to_thread(self.count_sync)

    def write_sync(self, entry: AuditEntry | Any) -> str:
        """Store an entry made elsewhere and return its id (the original API's ``write``).

        ``entry`` is an [`AuditEntry`][comply_lab.model.entry.AuditEntry], or any object with
        the original entry's ``to_dict()``. Its values are checked as ``log()`` checks them and
        it joins this store's own writer chain (any chain fields it carried are replaced), so
        the log still verifies; it is durable when this returns, as the store's fsync policy
        says. Logging through [`AuditLogger`][comply_lab.audit.logger.AuditLogger] is the fast
        path.

        A UUIDv7 id names its day, and lookups by id read only that day, so an id whose day
        differs from the timestamp's is refused.

        Raises:
            InvalidEntryError: a value cannot be stored (the error names the field).
            StorageError: the store failed; nothing was written.
        """
        if not isinstance(entry, AuditEntry):
            to_dict = getattr(entry, "to_dict", None)
            if not callable(to_dict):
                raise InvalidEntryError(
                    "entry", f"expected an AuditEntry, got {type(entry).__name__}"
                )
            entry = AuditEntry.from_dict(to_dict())
        named = id_time(entry.id)
        if named is not None and named.date() != entry.timestamp.date():
            raise InvalidEntryError(
                "id",
                f"a UUIDv7 id names its day ({named.date()}) but the entry's timestamp is on "
                f"{entry.timestamp.date()}, so lookups by id would not find "
                "it: give the entry a new id (or its own timestamp)",
            )
        record = stored_fields(entry.record())
        chain = self._own_chain()
        storage = cast("Storage", self)  # every backend is a Storage
        day = entry.timestamp.date()
        try:
            ticket = chain.append(
                record,
                entry.input_content,
                entry.output_content,
                lambda line: storage.append(day, line),
                self,
            )
        except orjson.JSONEncodeError:
            raise unencodable(record) from None
        if ticket is not None:
            storage.wait_durable(ticket)
        return entry.id

    async def write(self, entry: AuditEntry | Any) -> str:
        """Store an entry made elsewhere (async twin of `write_sync`)."""
        return await asyncio.to_thread(self.write_sync, entry)

    def _own_chain(self) -> Chain:
        """Return the writer chain of this store's ``write()`` (a new one after a fork)."""
        found: tuple[int, Chain] | None = getattr(self, "_writes", None)
        if found is None or found[0] != os.getpid():
            found = (os.getpid(), Chain())
            self._writes = found
        return found[1]

    def read_sync(self, entry_id: str) -> AuditEntry | None:
        """Return the entry with ``entry_id``, or None (the original API's ``read``).

        A UUIDv7 id names its day, so only that day is read.

        Raises:
            InvalidQueryError: ``entry_id`` is not a string.
        """
        return find_entry(cast("Storage", self), entry_id)  # every backend is a Storage

    async def read(self, entry_id: str) -> AuditEntry | None:
        """Return the entry with ``entry_id``, or None (async twin of `read_sync`)."""
        return await asyncio.to_thread(self.read_sync, entry_id)

    def delete_sync(
        self, entry_id: str, *, by: str | None = None, reason: str | None = None
    ) -> bool:
        """Delete one entry on request (the original API's ``delete``); False if there is none.

        The deletion is recorded first in the ``_deletions.jsonl`` trail (signed with the
        store's key, if it has one): the entry, its hash and chain position, ``by`` (who asked)
        and ``reason``. Every read leaves the entry out from then on; its bytes are removed when
        its segment is sealed, or, once sealed, at the next compaction
        ([`compact`][comply_lab.storage.compaction.compact]), many entries in one rewrite.
        Verification reports it ``deleted_on_request``, not ``missing``. Readers that open the
        Parquet files themselves (DuckDB, pandas) see it until then.

        Raises:
            InvalidQueryError: ``entry_id`` is not a string.
            StorageError: the record could not be stored; nothing was deleted.
        """
        entry = self.read_sync(entry_id)
        if entry is None:
            return False
        check_deletion(self, entry)
        self.append_metadata(DELETIONS, deletion_record(entry, by, reason))
        return True

    async def delete(
        self, entry_id: str, *, by: str | None = None, reason: str | None = None
    ) -> bool:
        """Delete one entry on request (async twin of `delete_sync`)."""
        return await asyncio.to_thread(self.delete_sync, entry_id, by=by, reason=reason)

    def list_entries_sync(self, start: TimeLike, end: TimeLike) -> list[AuditEntry]:
        """Return the entries of ``[start, end]``, both included, by time (``list_entries``).

        Only the days in range are read; naive times and ISO strings are UTC.

        Raises:
            InvalidQueryError: a bound is not a time, or the range is reversed.
        """
        return entries_between(cast("Storage", self), start, end)

    async def list_entries(self, start: TimeLike, end: TimeLike) -> list[AuditEntry]:
        """Return the entries of ``[start, end]`` (async twin of `list_entries_sync`)."""
        return await asyncio.to_thread(self.list_entries_sync, start, end)
