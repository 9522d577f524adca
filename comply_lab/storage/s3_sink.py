"""Sealing into S3: spooled segments become create-only objects and manifest records.

A part is uploaded to ``_staging/`` first (where no dataset reader looks), its manifest
record is appended, and only then is it published under its name, create-only, and the
staged copy deleted: pandas, DuckDB and the SQL engines never see a part that no record
vouches for, and a verifier never sees one either. A crash anywhere leaves the spool
segment in place; the next upload repeats every step idempotently (the same bytes, the
record already there), so each entry lands exactly once. A record whose part still waits
in ``_staging/`` is ``incomplete`` for verification.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from comply_lab.errors import IntegrityError
from comply_lab.storage.leaves import tree_place
from comply_lab.storage.manifest import MANIFEST, parse_records
from comply_lab.storage.segments import QUARANTINE, STAGING, day_digits
from comply_lab.storage.signers import counted, store_root

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from comply_lab.storage.s3 import S3Storage


class S3Sink:
    """Seals spool segments into S3 objects and the S3 manifest trail."""

    def __init__(self, store: S3Storage, signing_key: Ed25519PrivateKey | None = None) -> None:
        self.store = store
        self.objects = store.objects
        self.signing_key = signing_key
        self.spool_id = store.spool_id
        self._recorded: set[str] | None = None
        self._bodies: dict[str, bytes] = {}  # staged parts waiting for their record
        self._trails: dict[str, list[dict[str, Any]]] = {}  # read once per sink

    def part_name(self, part_day: date, source_day: date, index: int) -> str:
        """Return the object name of a sealed part (it carries the spool's id)."""
        ext = "parquet" if self.store.format == "parquet" else "jsonl"
        return (
            f"date={part_day.isoformat()}/part-{day_digits(source_day)}-{index:03d}-"
            f"{self.spool_id}.{ext}"
        )

    def store_part(self, name: str, table: Any) -> tuple[str, int]:
        """Stage ``table`` for `publish`; a part published already must hold its rows."""
        from comply_lab.storage.arrow import parquet_bytes, read_parquet, table_to_jsonl
        from comply_lab.storage.parts import DECODE_ERRORS
        from comply_lab.storage.seal import check_part

        body = parquet_bytes(table) if name.endswith(".parquet") else table_to_jsonl(table)
        try:
            existing = self.objects.get(name)
        except FileNotFoundError:
            self.objects.put(f"{STAGING}/{name}", body)
            self._bodies[name] = body
            return hashlib.sha256(body).hexdigest(), len(body)
        if existing != body:
            where = self.objects.url(name)
            if not name.endswith(".parquet"):
                raise IntegrityError(f"{where} exists with other content; the spool is kept")
            try:
                stored = read_parquet(existing)
            except DECODE_ERRORS:
                stored = None  # damaged: not the part it must be
            check_part(stored, table, where)
        return hashlib.sha256(existing).hexdigest(), len(existing)

    def publish(self, name: str) -> None:
        """Put a staged, recorded part under its name (create-only); drop the staged copy."""
        body = self._bodies.pop(name, None)
        if body is None:
            return  # published earlier
        if not self.objects.put_new(name, body) and self.objects.get(name) != body:
            raise IntegrityError(
                f"{self.objects.url(name)} appeared with other content "
                "while it was being published; the spool is kept"
            )
        self.objects.delete_under([f"{STAGING}/{name}"])

    def recorded(self) -> set[str]:
        """Return the segments the S3 manifest trail records."""
        if self._recorded is None:
            data = self.store.read_metadata(MANIFEST)
            self._recorded = {str(r.get("segment")) for _, r in parse_records(data) if r}
        return self._recorded

    def records(self, trail: str) -> list[dict[str, Any]]:
        """Return the readable records of one of the store's trails, read once per sink.

        A deletion recorded while a flush runs is left out by the next sealing or
        compaction instead (reads leave it out at once either way).
        """
        if trail not in self._trails:
            data = self.store.read_metadata(trail)
            readable = [r for _, r in parse_records(data) if r is not None]
            self._trails[trail] = counted(readable, self.store, store_root(self.store), trail)
        return self._trails[trail]

    def signs(self) -> bool:
        """Whether the records this sink appends are signed (by its key, or the store's)."""
        return (self.signing_key or self.store.signing_key) is not None

    def store_index(self, name: str, data: bytes) -> None:
        """Put an id index run object (an unrecorded earlier one is replaced)."""
        self.objects.put(name, data)

    def remove_index(self, names: list[str]) -> None:
        """Delete index run objects a merged run replaced (one batched request)."""
        self.objects.delete_under(names)

    def note(self, trail: str, record: dict[str, Any]) -> None:
        """Append to another trail of the store (signed with the sink's key or the store's)."""
        self.store.append_metadata(trail, record, signing_key=self.signing_key)
        self._trails.pop(trail, None)

    def record(self, record: dict[str, Any], leaves: Sequence[bytes] | None = None) -> None:
        """Append a manifest record (signed with the sink's key or the store's).

        The heartbeat cadence the store promises is recorded too, so the promise outlives
        its heartbeat trail; a new part is placed in the log-wide tree.
        """
        if self.store.heartbeat.promised:
            record = dict(record, heartbeat_s=self.store.heartbeat.promised)
        place = None if leaves is None else tree_place(record, leaves)
        self.store.append_metadata(MANIFEST, record, signing_key=self.signing_key, extend=place)
        self.recorded().add(str(record.get("segment")))

    def quarantine(self, source: str, data: bytes) -> None:
        """Keep the raw bytes of a segment that had damaged lines."""
        self.objects.put_new(f"{QUARANTINE}/{self.spool_id}-{source}", data)

    def stage(self, name: str, table: Any) -> tuple[str, int]:
        """Store ``_staging/<name>`` (replacing an unrecorded earlier attempt), in its format."""
        from comply_lab.storage.arrow import parquet_bytes, table_to_jsonl

        body = parquet_bytes(table) if name.endswith(".parquet") else table_to_jsonl(table)
        self.objects.put(f"{STAGING}/{name}", body)
        return hashlib.sha256(body).hexdigest(), len(body)

    def staged(self) -> dict[str, str]:
        """Return the ``_staging/`` objects and their digests."""
        return {
            name.removeprefix(f"{STAGING}/"): hashlib.sha256(self.objects.get(name)).hexdigest()
            for name, _ in self.objects.list_objects(f"{STAGING}/")
        }

    def commit(self, name: str) -> None:
        """Copy the staged object over the part (S3 replaces an object in one step)."""
        self.objects.copy(f"{STAGING}/{name}", name)
        self.discard(name)

    def discard(self, name: str) -> None:
        """Delete ``_staging/<name>``."""
        self.objects.delete_under([f"{STAGING}/{name}"])

    def digest(self, name: str) -> str | None:
        """Return the SHA-256 of the part's object."""
        try:
            return hashlib.sha256(self.objects.get(name)).hexdigest()
        except FileNotFoundError:
            return None
