"""What some stores can do beyond the storage protocol, each a small runtime-checkable protocol.

Callers ask ``isinstance(storage, Capability)`` (as structlog's ``typing.py`` does for
its processors) instead of probing for attributes, and the conformance suite
(``tests/storage_contract.py``) checks which capabilities each backend declares and what
each one does there.

| capability | FileStorage | S3Storage | MemoryStorage |
| --- | --- | --- | --- |
| [`DataFiles`][comply_lab.storage.capabilities.DataFiles] (files dataset readers open, links) | yes
| yes | |
| [`Maintained`][comply_lab.storage.capabilities.Maintained] (one maintenance operation at a time) |
yes | yes | yes |
| [`LocalFiles`][comply_lab.storage.capabilities.LocalFiles] (segments read in place) | yes | | |
| [`Located`][comply_lab.storage.capabilities.Located] (a URL SQL engines read) | yes | yes | |
| [`SourceTracking`][comply_lab.storage.capabilities.SourceTracking] (segments renamed while listed)
| | yes | |
| [`ObjectLocked`][comply_lab.storage.capabilities.ObjectLocked] (write-once locks) | | yes | |
| [`Sealing`][comply_lab.storage.capabilities.Sealing] (a sink for parts and records) | yes | yes |
|
| [`Compactable`][comply_lab.storage.capabilities.Compactable] (JSONL or legacy data to convert) |
yes | yes | |
| [`Registering`][comply_lab.storage.capabilities.Registering] (signed writer registrations) |
yes | yes | yes |
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from comply_lab.storage.segments import Segment

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from comply_lab.storage.seal import SealReport
    from comply_lab.storage.sink import Sink


@runtime_checkable
class Registering(Protocol):
    """A store that registers each writer's chain before its first entry, and its heads.

    In a store with a signing key, the registration is a signed record (see
    [`comply_lab.storage.genesis`][comply_lab.storage.genesis]), and each heartbeat signs
    the newest entry of every chain written through the store (``heads``); without a key
    it does nothing.
    """

    def register_writer(self, writer_id: str) -> None:
        """Register the chain ``writer_id`` (called once, before its first entry)."""
        ...

    def note_head(self, writer_id: str, seq: int, entry_hash: str) -> None:
        """Take note of chain ``writer_id``'s newest stored entry."""
        ...


@runtime_checkable
class DataFiles(Protocol):
    """A store whose files or objects dataset readers (pandas, DuckDB, SQL engines) open.

    Verification compares what they would read with what the manifest vouches for.
    """

    def data_files(self) -> list[str]:
        """Return every stored name that a dataset reader would read, relative to the root.

        See `reader_visible`. Objects of the original
        tool's layout are left out: they are read, and reported, as their day's segment.
        """
        ...

    def links(self) -> list[str]:
        """Return every symbolic link below the root, relative to it (none in a bucket).

        comply_lab never follows one; verification reports each as ``foreign``.
        """
        ...


@runtime_checkable
class Maintained(Protocol):
    """A store whose maintenance operations (compaction, key rotation, retention) take turns.

    See `comply_lab.storage.lock`.
    """

    def maintenance(self, operation: str) -> AbstractContextManager[None]:
        """Return a context that holds the store's maintenance lock.

        Raises:
            ConcurrentOperationError: on entering, when another operation holds it.
        """
        ...


@runtime_checkable
class LocalFiles(Protocol):
    """A store whose segments are files on this machine, which readers open in place."""

    def local_path(self, segment: Segment) -> Path:
        """Return the file holding ``segment``."""
        ...


@runtime_checkable
class Located(Protocol):
    """A store that SQL engines can read where it is (see `comply_lab.ddl`)."""

    def location(self) -> str:
        """Return the log's root as a URL: ``file:///abs/path/`` or ``s3://bucket/prefix/``."""
        ...


@runtime_checkable
class SourceTracking(Protocol):
    """A store whose segments may be listed under other names while a reader lists them.

    Readers track segments by source so each entry is read once (see
    `read_day_segments`); without this capability the
    source is derived from the segment's name.
    """

    def source_of(self, segment: Segment) -> str:
        """Return what identifies the data of ``segment`` wherever it is stored."""
        ...


@runtime_checkable
class ObjectLocked(Protocol):
    """A store whose objects a write-once lock may keep (S3 Object Lock)."""

    def locked_until(self, day: date) -> datetime | None:
        """Return until when a lock keeps some data of ``day``; None if nothing is locked."""
        ...


@runtime_checkable
class Sealing(Protocol):
    """A store that sealing and key rotation write parts and manifest records to."""

    def sink(self, signing_key: Ed25519PrivateKey | None = None) -> Sink:
        """Return the sink writing this store's parts, signed with ``signing_key``."""
        ...


@runtime_checkable
class Compactable(Protocol):
    """A store whose written data compaction converts into the sealed Parquet layout.

    Local directories seal their JSONL segments (the original tool's included); S3 logs move the
    original tool's per-entry objects. See
    [`comply_lab.storage.compaction.compact`][comply_lab.storage.compaction.compact].
    """

    def compact(self, executor: Executor | None = None) -> SealReport:
        """Convert what there is to convert; ``executor`` runs days in parallel if supported.

        Raises:
            ConfigurationError: the store cannot use ``executor``.
        """
        ...


def maintenance(storage: object, operation: str) -> AbstractContextManager[None]:
    """Return ``storage``'s maintenance lock for ``operation`` (none for other stores)."""
    return storage.maintenance(operation) if isinstance(storage, Maintained) else nullcontext()
