"""Where sealing puts what it writes: the sink protocol of local and S3 stores.

Sealing ([`comply_lab.storage.seal`][comply_lab.storage.seal]), key rotation and compaction
after deletions ([`comply_lab.storage.generations`][comply_lab.storage.generations]) and the id
index ([`comply_lab.storage.idindex`][comply_lab.storage.idindex]) write through a sink:
[`LocalSink`][comply_lab.storage.seal.LocalSink] for a directory,
[`S3Sink`][comply_lab.storage.s3_sink.S3Sink] for a bucket.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pyarrow as pa


class Sink(Protocol):
    """Where sealed segments go: local Parquet files, or S3 objects.

    Every method must be idempotent, so sealing can be run again after a crash.
    """

    def part_name(self, part_day: date, source_day: date, index: int) -> str:
        """Return the name of the sealed part of ``(source_day, index)`` for ``part_day``."""
        ...

    def store_part(self, name: str, table: pa.Table) -> tuple[str, int]:
        """Store ``table`` create-only (a part already there must hold the same rows).

        Returns:
            The SHA-256 and size of the stored bytes.

        Raises:
            IntegrityError: a part already stored under ``name`` differs.
        """
        ...

    def recorded(self) -> set[str]:
        """Return the segment names the manifest already records."""
        ...

    def records(self, trail: str) -> list[dict[str, Any]]:
        """Return the readable records of one of the store's trails (deletions, id index)."""
        ...

    def signs(self) -> bool:
        """Whether the records this sink appends are signed."""
        ...

    def store_index(self, name: str, data: bytes) -> None:
        """Store an id index run (see `comply_lab.storage.idindex`), replacing any."""
        ...

    def remove_index(self, names: list[str]) -> None:
        """Delete id index runs a merged run replaced."""
        ...

    def note(self, trail: str, record: dict[str, Any]) -> None:
        """Append a (chained, signed) record to another trail than the manifest."""
        ...

    def record(self, record: dict[str, Any], leaves: Sequence[bytes] | None = None) -> None:
        """Append a (chained, signed) manifest record.

        ``leaves``: the leaf hashes of a new part, placed in the log-wide tree at the
        record's position in the chain (see `tree_place`).
        """
        ...

    def publish(self, name: str) -> None:
        """Make a stored part that has its manifest record visible to readers."""
        ...

    def quarantine(self, source: str, data: bytes) -> None:
        """Keep the raw bytes of a segment that had damaged lines."""
        ...

    def stage(self, name: str, table: pa.Table) -> tuple[str, int]:
        """Store a new generation of part ``name`` where no reader looks (``_staging/``).

        Returns:
            The SHA-256 and size of the staged bytes.
        """
        ...

    def staged(self) -> dict[str, str]:
        """Return the staged generations: part name -> SHA-256 of the staged bytes."""
        ...

    def commit(self, name: str) -> None:
        """Replace part ``name`` by its staged generation in one step, and drop the staging."""
        ...

    def discard(self, name: str) -> None:
        """Drop the staged generation of part ``name``."""
        ...

    def digest(self, name: str) -> str | None:
        """Return the SHA-256 of part ``name`` as stored now (None if it is gone)."""
        ...
