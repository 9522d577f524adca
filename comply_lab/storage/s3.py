"""S3 storage: a local spool for writes, batched create-only segment uploads, pruned reads.

Layout under ``s3://bucket/prefix``::

    date=2026-01-29/part-20260129-000-<spool>.parquet   sealed segments (or .jsonl)
    _manifest/000000000001.json                          one chained record per segment
    _retention/..., _access/...                          retention and access trails
    2026-01-29/<id>.json                                 the original tool's objects (read only)

Writes go to a local **spool**: JSONL day segments (a
[`FileStorage`][comply_lab.storage.file.FileStorage]), durable per the fsync policy as soon as
``log()`` returns. Closed spool segments are uploaded as whole objects — every
``flush_interval_s`` seconds, every ``flush_max_entries`` entries, on
[`S3Storage.flush`][comply_lab.storage.s3.S3Storage.flush] and on
[`S3Storage.close`][comply_lab.storage.s3.S3Storage.close] — with ``If-None-Match: *`` so an
object is never overwritten, then removed from the spool. A crash at any point leaves the spool
segment in place; the next start uploads it, and a create-only conflict with an identical
earlier upload counts as done: every acknowledged entry lands exactly once. Requests are retried
with backoff on throttling and 5xx by botocore's adaptive retry mode.

Metadata records are separate objects named by their position in the chain, written
create-only: two writers racing for the same position cannot both win, so each chain
stays linear without locks.
"""

from __future__ import annotations

import functools
import os
import re
import threading
import time
import uuid
import warnings
from collections.abc import Mapping
from concurrent.futures import Executor
from contextlib import AbstractContextManager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from comply_lab import _forksafe
from comply_lab.crypto.signing import PrivateKeyLike, load_private_key
from comply_lab.errors import (
    ComplyLabWarning,
    ConfigurationError,
    RetentionWarning,
    StorageError,
)
from comply_lab.storage.base import StorageBase
from comply_lab.storage.decode import count_segments
from comply_lab.storage.durability import FsyncPolicy
from comply_lab.storage.file import FileStorage
from comply_lab.storage.heartbeat import DEFAULT_HEARTBEAT_S, Heartbeat
from comply_lab.storage.listing import deletion_digests
from comply_lab.storage.lock import s3_lock
from comply_lab.storage.manifest import (
    RETENTION,
    Extend,
    retention_record,
)
from comply_lab.storage.memory import MemoryStorage
from comply_lab.storage.s3_client import (
    check_prefix,
    claim_spool,
    default_spool,
    destination,
    make_client,
    spool_owner,
)
from comply_lab.storage.s3_objects import S3Objects
from comply_lab.storage.s3_sink import S3Sink
from comply_lab.storage.s3_trails import TRAIL_FOLDERS, S3Trails
from comply_lab.storage.segments import (
    Segment,
    day_digits,
    is_sealed_object,
    parse_jsonl_name,
    reader_visible,
    source_key,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from comply_lab.storage.seal import SealReport

_SPOOL = "spool:"
_LEGACY = "legacy:"
_LEGACY_DAY = re.compile(r"^(\d{4}-\d{2}-\d{2})/$")
_PARTITION_DAY = re.compile(r"^date=(\d{4}-\d{2}-\d{2})/$")
_MAX_OBJECT_MB = 4096


class S3Storage(StorageBase):
    """Stores the log in S3, batching writes through a local spool.

    Args:
        bucket: The bucket.
        prefix: Key prefix of the log (``"prod/ai-audit/"``).
        region: AWS region; credentials and region otherwise come from boto3's chain.
        format: ``"parquet"`` (default) or ``"jsonl"`` objects.
        endpoint_url: An S3-compatible endpoint (MinIO, a local test server).
        client: A ready boto3 S3 client (then ``region``/``endpoint_url`` are ignored).
        spool_dir: Local spool directory; defaults to ``$COMPLY_LAB_SPOOL_DIR`` or
            ``~/.cache/comply-lab/spool``, per bucket and prefix. ``":memory:"`` keeps the spool
            in memory, for places without a writable disk: then entries logged since the last
            upload are lost if the process dies, so flush often (a small ``flush_interval_s``)
            or call [`flush`][comply_lab.storage.s3.S3Storage.flush] yourself.
        flush_interval_s: Upload at most this long after an entry was logged.
        flush_max_entries: Upload once this many entries are waiting.
        rotation_size_mb: Largest spool segment, so the largest object uploaded.
        fsync: fsync policy of the spool (see
            `comply_lab.storage.durability`).
        signing_key: Ed25519 key that signs every record this store appends.
        heartbeat_s: Seconds between heartbeat records while this store is writing (see
            `comply_lab.storage.heartbeat`); None beats only at
            close, 0 never.
        offline: Accept entries into the spool even when no AWS credentials are found
            (they upload once credentials are there). By default a store without
            credentials is refused at once, rather than at its first upload.
        origin: The log's name in its genesis record and checkpoints, for a new signed
            log (default ``comply-lab/<key fingerprint>``).

    The spool records where its entries go (``_destination.json``: the endpoint, bucket
    and prefix) and only a store for that destination uploads, reads or adds to them: a
    store opened on a spool folder that waits for another bucket leaves it untouched,
    with a warning, and refuses to log into it.

    Raises:
        ConfigurationError: no AWS credentials (unless ``offline``), or a bad option.
        StorageError: a bad ``rotation_size_mb``.

    Example:
        >>> storage = S3Storage("my-audit-bucket", "prod/ai-audit/", "us-west-2")  # doctest: +SKIP
        >>> logger = AuditLogger(storage)                                       # doctest: +SKIP
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "audit/",
        region: str | None = None,
        *,
        format: Literal["parquet", "jsonl"] = "parquet",
        endpoint_url: str | None = None,
        client: Any = None,
        spool_dir: str | os.PathLike[str] | None = None,
        flush_interval_s: float = 60.0,
        flush_max_entries: int = 10_000,
        rotation_size_mb: float = 64,
        fsync: FsyncPolicy = "interval",
        signing_key: PrivateKeyLike | None = None,
        heartbeat_s: float | None = DEFAULT_HEARTBEAT_S,
        offline: bool = False,
        origin: str | None = None,
    ) -> None:
        if format not in ("parquet", "jsonl"):
            raise ConfigurationError(f"format must be 'parquet' or 'jsonl', got {format!r}")
        if not 0 < rotation_size_mb <= _MAX_OBJECT_MB:
            raise StorageError(
                f"rotation_size_mb must be in (0, {_MAX_OBJECT_MB}]: each segment is uploaded "
                "in one PUT, and S3 takes at most 5 GB in one"
            )
        self.bucket = bucket
        self.prefix = check_prefix(prefix)
        self.format = format
        self.client = (
            client
            if client is not None
            else make_client(region, endpoint_url, credentials=not offline)
        )
        self.objects = S3Objects(self.client, bucket, self.prefix)
        self._place = (region, endpoint_url, client is None)
        self.destination = destination(self.client, bucket, self.prefix)
        self.in_memory = spool_dir == ":memory:"
        base = (
            Path(spool_dir)
            if spool_dir is not None and not self.in_memory
            else default_spool(self.destination)
        )
        self.spool_dir = base
        self._foreign = None if self.in_memory else spool_owner(base, self.destination)
        if self._foreign is not None:
            warnings.warn(
                f"the spool {base} holds entries waiting for {self._foreign}, not for {self}: "
                "they are kept there, not uploaded or read here; pass spool_dir= to log "
                "into this store",
                ComplyLabWarning,
                stacklevel=2,
            )
        self._memory = MemoryStorage() if self.in_memory else None
        self._memory_id = uuid.uuid4().hex[:12]
        self._memory_index = 0
        self.trails = S3Trails(self.objects, bucket)
        self.flush_interval_s = flush_interval_s
        self.flush_max_entries = flush_max_entries
        self._rotation_size_mb = rotation_size_mb
        self._fsync: FsyncPolicy = fsync
        self.signing_key = None if signing_key is None else load_private_key(signing_key)
        # The spool is local to this process: heartbeats vouch for what is in S3 only.
        self.heartbeat = Heartbeat(self, dict, heartbeat_s, self.chain_heads)
        self.origin = origin
        self._spool: FileStorage | None = None
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._pending = 0
        self._last_flush = time.monotonic()
        self._timer: threading.Timer | None = None
        if not self.in_memory and self._foreign is None and base.is_dir():
            self._upload_closed()  # what an earlier process left behind
        _forksafe.register(self)

    @classmethod
    def from_url(cls, url: str, *, signing_key: PrivateKeyLike | None = None) -> S3Storage:
        """Open ``s3://bucket/prefix`` (credentials and region from boto3's chain)."""
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        return cls(bucket, prefix, signing_key=signing_key)

    def _after_fork(self) -> None:
        self.heartbeat.reset_after_fork()

    def __repr__(self) -> str:
        return f"S3Storage('s3://{self.bucket}/{self.prefix}', format={self.format!r})"

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as a description: the copy makes its own client and spools in memory."""
        region, endpoint_url, own_client = self._place
        if not own_client:
            raise StorageError(
                "an S3Storage built around a client= object cannot be sent to another "
                "process (boto3 clients do not pickle); build it with region= and "
                "endpoint_url= so each process makes its own client"
            )
        opener = functools.partial(
            S3Storage, format=self.format, endpoint_url=endpoint_url, spool_dir=":memory:"
        )
        return (opener, (self.bucket, self.prefix, region))

    # -- writing ---------------------------------------------------------------------

    @property
    def spool(self) -> FileStorage:
        """The local spool (created on first use)."""
        with self._lock:
            if self._spool is None:
                if self._foreign is not None:
                    raise ConfigurationError(
                        f"the spool {self.spool_dir} waits for {self._foreign}; pass "
                        f"spool_dir= to log into {self}"
                    )
                claim_spool(self.spool_dir, self.destination)
                self._spool = FileStorage(
                    self.spool_dir, self._rotation_size_mb, fsync=self._fsync, heartbeat_s=0
                )
            return self._spool

    @property
    def spool_id(self) -> str:
        """The spool's id, part of every object name it uploads (unique per spool)."""
        if self.in_memory:
            return self._memory_id
        path = self.spool_dir / "_spool_id"
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            claim_spool(self.spool_dir, self.destination)
            candidate = uuid.uuid4().hex[:12]
            try:
                with path.open("x") as f:
                    f.write(candidate)
            except FileExistsError:
                return path.read_text().strip()
            return candidate

    def append(self, day: date, line: bytes) -> int | None:
        """Spool one entry; schedule an upload when enough entries or time accumulated."""
        ticket = (self._memory or self.spool).append(day, line)
        with self._lock:
            self._pending += 1
            due = self._pending >= self.flush_max_entries
            if self._timer is None and not due:
                self._timer = threading.Timer(self.flush_interval_s, self._background_flush)
                self._timer.daemon = True
                self._timer.start()
        if due:
            threading.Thread(target=self._background_flush, daemon=True).start()
        self.heartbeat.start()
        return ticket

    def wait_durable(self, ticket: int) -> None:
        """Block until the spooled entry is durable locally, per the fsync policy."""
        (self._memory or self.spool).wait_durable(ticket)

    def _background_flush(self) -> None:
        try:
            self.flush()
        except Exception as err:
            warnings.warn(
                f"upload to {self} failed ({err}); entries stay in the spool "
                f"{self.spool_dir} and are uploaded at the next flush",
                ComplyLabWarning,
                stacklevel=1,
            )

    def flush(self) -> int:
        """Upload every spooled entry now; return how many segments were uploaded."""
        with self._flushing:
            with self._lock:
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                self._pending = 0
            if self._memory is not None:
                return self._upload_memory()
            if self._spool is not None:
                self._spool.rotate()
            return self._upload_closed()

    def _upload_closed(self) -> int:
        from comply_lab.storage.seal import seal_segment

        if self._foreign is not None:
            return 0  # another destination's entries: kept (warned at opening)
        sink = self.sink()
        uploaded = 0
        for name in sorted(os.listdir(self.spool_dir)) if self.spool_dir.is_dir() else []:
            found = parse_jsonl_name(name)
            if found is not None:
                uploaded += len(seal_segment(self.spool_dir, *found, sink).sealed)
        return uploaded

    def _upload_memory(self) -> int:
        from comply_lab.storage.seal import SealReport, write_parts

        assert self._memory is not None
        sink = self.sink()
        report = SealReport()
        for day, data in sorted(self._memory.drain().items()):
            self._memory_index += 1
            name = f"memory-{self._memory_index:03d}"
            if write_parts(sink, day, self._memory_index, name, data, report):
                sink.quarantine(name, data)
        return len(report.parts)

    def compact(self, executor: Executor | None = None) -> SealReport:
        """Move the original tool's per-entry objects into the Parquet layout.

        Each day's objects become one part, stored and recorded like any sealed segment; the
        per-entry objects are deleted only after that (in batches). Records are signed with the
        store's key. Run it through
        [`comply_lab.storage.compaction.compact`][comply_lab.storage.compaction.compact], which
        takes the maintenance lock.

        Raises:
            ConfigurationError: ``executor`` was given: an S3 log is compacted where it is
                opened, not in parallel.
        """
        from comply_lab.storage.seal import SealReport, write_parts

        if executor is not None:
            raise ConfigurationError(
                "parallel compaction works on local directories; compact an S3 log without "
                "an executor"
            )
        sink = self.sink()
        report = SealReport()
        for day in self.days():
            for segment in self.segments(day):
                if segment.origin != "legacy":
                    continue
                data = self.read_segment(segment)
                if write_parts(sink, day, 0, segment.name, data, report):
                    sink.quarantine(segment.name, data)
                self.objects.delete_under([f"{day.isoformat()}/"])
                report.sealed.append(segment.name)
        return report

    def location(self) -> str:
        """Return ``s3://bucket/prefix``, the log's root as SQL engines read it."""
        return f"s3://{self.bucket}/{self.prefix}"

    def locked_until(self, day: date) -> datetime | None:
        """Return until when S3 Object Lock keeps an object of ``day``; None if none is locked.

        See `locked_until`.
        """
        return self.objects.locked_until([f"date={day.isoformat()}/", f"{day.isoformat()}/"])

    def heartbeat_cadence(self) -> float | None:
        """Return the seconds between this store's heartbeats (None: none periodic)."""
        return self.heartbeat.every or None

    def sink(self, signing_key: Ed25519PrivateKey | None = None) -> S3Sink:
        """Return the sink that writes sealed objects and manifest records of this store.

        Records are signed with ``signing_key``, or else the store's own key.
        """
        return S3Sink(self, signing_key)

    def close(self) -> None:
        """Make spooled entries durable, upload them all, stop the timer, beat a last time."""
        if self._spool is not None:
            self._spool.close()
        self.flush()
        self.heartbeat.stop()

    # -- reading -----------------------------------------------------------------------

    def _spool_store(self) -> FileStorage | MemoryStorage | None:
        if self._memory is not None:
            return self._memory
        if self._spool is not None:
            return self._spool
        if self._foreign is not None or not self.spool_dir.is_dir():
            return None
        return FileStorage(self.spool_dir)

    def days(self) -> list[date]:
        """Return the days with objects (sealed, or the original tool's) or spooled entries."""
        found: set[date] = set()
        for name, _ in self.objects.list_objects("", delimiter="/"):
            match = _PARTITION_DAY.match(name) or _LEGACY_DAY.match(name)
            if match:
                found.add(date.fromisoformat(match.group(1)))
        spool = self._spool_store()
        if spool is not None:
            found.update(spool.days())
        return sorted(found)

    def segments(self, day: date) -> list[Segment]:
        """Return the day's objects, the original tool's objects, and its spooled segments."""
        result = []
        uploaded = set()
        for name, size in self.objects.list_objects(f"date={day.isoformat()}/"):
            if not is_sealed_object(name):
                continue
            fmt: Literal["jsonl", "parquet"] = "parquet" if name.endswith(".parquet") else "jsonl"
            result.append(Segment(day, name, fmt, size, True))
            uploaded.add(name.rsplit("/", 1)[-1].split(".")[0])
        legacy = list(self.objects.list_objects(f"{day.isoformat()}/"))
        if legacy:
            # The original tool's objects: immutable, but no manifest vouches for them.
            size = sum(s for _, s in legacy)
            result.append(
                Segment(day, f"{_LEGACY}{day.isoformat()}", "jsonl", size, False, origin="legacy")
            )
        spool = self._spool_store()
        if spool is not None:
            spool_id = self.spool_id
            for segment in spool.segments(day):
                found = parse_jsonl_name(segment.name)
                if found and f"part-{day_digits(found[0])}-{found[1]:03d}-{spool_id}" in uploaded:
                    continue  # uploaded; the local copy is about to go
                result.append(
                    Segment(
                        day, _SPOOL + segment.name, "jsonl", segment.size, False, origin="spool"
                    )
                )
        return result

    def maintenance(self, operation: str) -> AbstractContextManager[None]:
        """Hold the log's maintenance lock object while the block runs.

        Raises:
            ConcurrentOperationError: another process holds it and it has not expired.
        """
        return s3_lock(self.objects, operation)

    def data_files(self) -> list[str]:
        """Return every object under the prefix that a dataset reader would read.

        The original tool's per-entry objects (``YYYY-MM-DD/<id>.json``) are left out:
        they are read, and reported as unsealed, as their day's segment.
        """
        found = []
        for name, _ in self.objects.list_objects("", delimiter="/"):
            if not name.endswith("/"):
                found.append(name)
            elif not _LEGACY_DAY.match(name) and (
                not name.startswith(("_", ".")) or name.startswith("date=")
            ):
                found += [n for n, _ in self.objects.list_objects(name)]
        return sorted(name for name in found if reader_visible(name))

    def links(self) -> list[str]:
        """Return the symbolic links in the bucket: an object store has none."""
        return []

    def source_of(self, segment: Segment) -> str:
        """Return what a segment was made from; a spooled one and its upload share it."""
        if segment.origin == "spool":
            return source_key(segment.name.removeprefix(_SPOOL), self.spool_id)
        return source_key(segment.name)

    def read_segment(self, segment: Segment) -> bytes:
        """Return a segment's bytes (an object, the original tool's objects as lines, or spool)."""
        if segment.origin == "spool":
            name = segment.name.removeprefix(_SPOOL)
            local = Segment(segment.day, name, "jsonl", segment.size, False)
            spool = self._spool_store()
            if spool is None:
                raise FileNotFoundError(segment.name)
            return spool.read_segment(local)
        if segment.origin == "legacy":
            folder = f"{segment.day.isoformat()}/"
            bodies = [
                self.objects.get(name).strip() for name, _ in self.objects.list_objects(folder)
            ]
            return b"".join(body + b"\n" for body in bodies if body)
        return self.objects.get(segment.name)

    def read_metadata(self, name: str) -> bytes:
        """Return a metadata trail as JSON lines, in chain order."""
        return self.trails.read(name)

    def append_metadata(
        self,
        name: str,
        record: dict[str, Any],
        *,
        signing_key: Ed25519PrivateKey | None = None,
        extend: Extend | None = None,
    ) -> None:
        """Append a chained record as the next object of the trail, create-only.

        It is signed with ``signing_key``, or else the store's signing key if it has one.
        ``extend`` adds fields that depend on the records before it (see
        [`append_record`][comply_lab.storage.manifest.append_record]), computed again when
        another writer took the position first.
        """
        if name not in TRAIL_FOLDERS:
            raise StorageError(f"{name} is not a metadata trail of {self}")
        self.trails.append(name, record, signing_key or self.signing_key, extend)

    def drop_day(self, day: date, details: Mapping[str, Any] | None = None) -> int:
        """Delete a day's objects in batches (and its spool); return the entries deleted.

        Objects that cannot be deleted (Object Lock, permissions) are kept, reported with a
        [`RetentionWarning`][comply_lab.errors.RetentionWarning], and their entries are not
        counted as deleted.
        """
        segments = [s for s in self.segments(day) if s.origin != "spool"]
        if not segments:
            return self.spool.drop_day(day) if self._spool_store() else 0
        counts = {s.name: count_segments(self, [s]) for s in segments}
        legacy = {s.name for s in segments if s.origin == "legacy"}
        folders = [f"date={day.isoformat()}/", f"{day.isoformat()}/"]
        # Every listed object is sealed: its manifest record holds the writers' ranges.
        from comply_lab.storage.leaves import kept_subtrees  # not on the logging path

        tree = kept_subtrees(self, segments)
        self.append_metadata(
            RETENTION,
            retention_record(
                day,
                sorted(counts),
                sum(counts.values()),
                details,
                tree=tree,
                digests=deletion_digests(self, segments),
            ),
        )
        kept = self.objects.delete_under(folders)
        if kept:
            warnings.warn(
                f"{len(kept)} object(s) of {day} in s3://{self.bucket} could not be "
                "deleted (Object Lock or permissions) and are retained: "
                + ", ".join(sorted(kept)[:5]),
                RetentionWarning,
                stacklevel=2,
            )
        legacy_kept = any(k.startswith(self.objects.key(f"{day.isoformat()}/")) for k in kept)
        deleted = sum(
            n
            for name, n in counts.items()
            if (legacy_kept is False if name in legacy else self.objects.key(name) not in kept)
        )
        spool = self._spool_store()
        return deleted + (spool.drop_day(day) if spool is not None else 0)

    def lifecycle_rule(self, retention_days: int) -> dict[str, Any]:
        """Return the S3 lifecycle configuration that expires this prefix's objects.

        Use it instead of ``cleanup_expired`` when no retention record or legal hold is
        needed: S3 then deletes objects itself, leaving no trail for verification.
        """
        rule: dict[str, Any] = {"ID": "comply-lab-audit-retention", "Status": "Enabled"}
        rule |= {"Filter": {"Prefix": self.prefix}, "Expiration": {"Days": retention_days}}
        return {"Rules": [rule]}
