"""Local storage: JSONL day segments, optionally sealed into a Parquet dataset.

Layout::

    path/audit_20260128.jsonl                       JSONL segment 0 of 28 January 2026
    path/audit_20260128_001.jsonl                   segment 1, started when 0 was full
    path/date=2026-01-27/part-20260127-000.parquet  a sealed segment (format="parquet")
    path/_manifest.jsonl                            one chained record per sealed segment
    path/_sealed/audit_20260127.jsonl               empty marker: that segment is sealed

The JSONL names are the original tool's. Rotation never renames a file (the original
does): the next segment gets the next number, so several processes append to one
directory (one ``O_APPEND`` write per line) and readers never see a file move.

With ``format="parquet"`` the JSONL segments are a write-ahead log, sealed into Parquet (see
[`comply_lab.storage.seal`][comply_lab.storage.seal]) when its writer leaves a segment (rotation,
day change, ``close()``) or on ``seal()``. A writer holds a shared ``flock`` on the segment
it appends to, so no segment in use is sealed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import os
import threading
from collections.abc import Mapping
from concurrent.futures import Executor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, Any, Literal

from comply_lab import _forksafe
from comply_lab._tasks import run_tasks
from comply_lab.crypto.signing import PrivateKeyLike, load_private_key
from comply_lab.errors import ConfigurationError, ForeignFileError, StorageError
from comply_lab.storage.base import StorageBase
from comply_lab.storage.decode import summarize_segments
from comply_lab.storage.digest import prefix_sha256
from comply_lab.storage.durability import FsyncPolicy, GroupCommit
from comply_lab.storage.folder import (
    dataset_files,
    file_size,
    links,
    read_file,
    remove_file,
    scan,
    sweep_temporaries,
)
from comply_lab.storage.heartbeat import DEFAULT_HEARTBEAT_S, Heartbeat, Snapshots
from comply_lab.storage.listing import deletion_digests
from comply_lab.storage.location import local_path, url_scheme
from comply_lab.storage.lock import local_lock
from comply_lab.storage.manifest import (
    RETENTION,
    append_record,
    manifest_index,
    retention_record,
)
from comply_lab.storage.segments import (
    SEALED,
    Segment,
    jsonl_name,
    parquet_name,
    parse_jsonl_name,
    parse_parquet_name,
    parse_partition,
    partition_dir,
    reader_visible,
)
from comply_lab.storage.signers import store_root

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from comply_lab.storage.seal import LocalSink, Sealer, SealReport

StoreFormat = Literal["jsonl", "parquet"]
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


class FileStorage(StorageBase):
    """Stores entries in a directory: JSONL day segments, optionally sealed into Parquet.

    Args:
        path: Directory of the log; created if missing.
        rotation_size_mb: A segment that reaches this size is closed and the next write
            goes to the day's next segment.
        format: ``"jsonl"`` (default; files stay JSONL, as the original tool wrote them) or
            ``"parquet"`` (closed segments are sealed into ``date=YYYY-MM-DD/`` Parquet).
        fsync: Durability against machine crashes: ``"never"``, ``"interval"`` (default)
            or ``"always"``; see `comply_lab.storage.durability`.
        fsync_interval_s: Longest delay before written data is fsynced under ``"interval"``.
        signing_key: Ed25519 private key (object, raw bytes, PEM or a file) that signs
            every record this store appends (manifest, retention, holds, access,
            heartbeats); verifiers need only the public key.
        heartbeat_s: Seconds between heartbeat records while this store is writing (see
            `comply_lab.storage.heartbeat`): the log then promises a signed record at
            least that often, and each beat vouches for the unsealed bytes written so far,
            so cutting the newest entries is found within one period. None beats only when
            the store is closed; 0 never beats. ``"auto"`` (default) beats hourly for a
            signed store or ``format="parquet"``, and never for an unsigned ``"jsonl"``
            one, whose directory then holds exactly the original tool's files.
        origin: A new signed log's name in its genesis and checkpoints (default
            ``comply-lab/<key fingerprint>``).

    Raises:
        StorageError: the directory cannot be created.
        InvalidQueryError: an option is out of range.

    Example:
        >>> import tempfile
        >>> storage = FileStorage(tempfile.mkdtemp(), rotation_size_mb=50, format="parquet")
        >>> storage.days()
        []
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        rotation_size_mb: float = 100,
        *,
        format: StoreFormat = "jsonl",
        fsync: FsyncPolicy = "interval",
        fsync_interval_s: float = 1.0,
        signing_key: PrivateKeyLike | None = None,
        heartbeat_s: float | Literal["auto"] | None = "auto",
        origin: str | None = None,
    ) -> None:
        if isinstance(rotation_size_mb, bool) or not rotation_size_mb > 0:
            raise ConfigurationError(f"rotation_size_mb must be > 0, got {rotation_size_mb!r}")
        if format not in ("jsonl", "parquet"):
            raise ConfigurationError(f"format must be 'jsonl' or 'parquet', got {format!r}")
        scheme = url_scheme(path)
        if scheme is not None:
            raise ConfigurationError(
                f"FileStorage takes a local directory, and {os.fspath(path)!r} is a "
                f"{scheme}:// URL: use open_log() or AuditLogger() with the URL, or the "
                f"backend's own class (S3Storage(bucket, prefix) for s3://)"
            )
        self.path = Path(local_path(path))
        self.rotation_size_mb = rotation_size_mb
        self.format: StoreFormat = format
        self._limit = int(rotation_size_mb * 1024 * 1024)
        self._commit = GroupCommit(fsync, self._fsync, fsync_interval_s)
        self._lock = threading.Lock()
        self._open: _Open | None = None
        self._sealer: Sealer | None = None
        self.signing_key = None if signing_key is None else load_private_key(signing_key)
        if heartbeat_s == "auto":
            signed_or_sealed = format == "parquet" or self.signing_key is not None
            heartbeat_s = DEFAULT_HEARTBEAT_S if signed_or_sealed else 0
        self._heartbeat = Heartbeat(self, self._snapshots, heartbeat_s, self.chain_heads)
        self.origin = origin
        self._touched: set[tuple[date, int]] = set()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StorageError(
                f"cannot create log directory {self.path}: {err.strerror}; check the path and "
                "its permissions"
            ) from err
        _forksafe.register(self)

    def __repr__(self) -> str:
        return (
            f"FileStorage({str(self.path)!r}, rotation_size_mb={self.rotation_size_mb!r}, "
            f"format={self.format!r})"
        )

    def __str__(self) -> str:
        return str(self.path)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as a description: another process opens the same directory afresh.

        What is sent is the path, rotation size and format — never the signing key (pass
        it explicitly where sealing must sign) — so Dask workers can read the log.
        """
        opener = functools.partial(FileStorage, format=self.format)
        return (opener, (str(self.path), self.rotation_size_mb))

    # -- writing ---------------------------------------------------------------------

    def append(self, day: date, line: bytes) -> int | None:
        """Append ``line`` to the segment of ``day`` in a single write.

        Raises:
            StorageError: the write failed (disk full, read-only, ...); the entry is not
                stored, and the next append reopens the segment on a fresh line.
        """
        with self._lock:
            seg = self._open
            if (
                seg is None
                or seg.day != day
                or seg.size >= self._limit
                or seg.since_stat >= _RESTAT_EVERY
            ):
                seg = self._segment_for(day)
            data = b"\n" + line if seg.needs_newline else line
            try:
                written = os.write(seg.fd, data)
            except OSError as err:
                # Reopen on the next append: the fault may be gone by then (space freed).
                self._open = None
                with contextlib.suppress(OSError):
                    os.close(seg.fd)
                raise StorageError(
                    f"could not append an entry to {seg.path}: {err.strerror}; the entry was "
                    "not stored (free space or fix permissions, then log again)"
                ) from err
            seg.size += written
            seg.since_stat += 1
            if written != len(data):
                seg.needs_newline = True
                raise StorageError(
                    f"short write of an entry to {seg.path} ({written} of {len(data)} bytes, "
                    "disk full?); the entry was not stored, its fragment will be reported and "
                    "skipped by readers"
                )
            seg.needs_newline = False
            ticket = self._commit.written()
        self._heartbeat.start()
        return ticket

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
            index = self._current_index(day)
        self._close_open()
        self._open = self._open_segment(day, index)
        return self._open

    def _current_index(self, day: date) -> int:
        """Return the day's newest JSONL segment, or the one after its newest sealed one."""
        jsonl = [i for d, i in self._jsonl_segments() if d == day]
        sealed = [i + 1 for i in self._sealed_indices(day)]
        return max(jsonl + sealed, default=0)

    def _open_segment(self, day: date, index: int) -> _Open:
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        while True:
            path = self.path / jsonl_name(day, index)
            try:
                fd = os.open(path, flags, 0o644)
            except OSError as err:
                if err.errno == errno.ELOOP:
                    index += 1  # a link in the log is never appended to (verify: foreign)
                    continue
                raise StorageError(
                    f"cannot open log segment {path}: {err.strerror}; check that the directory "
                    "exists and is writable"
                ) from err
            if self._claim(fd, day, index):
                self._touched.add((day, index))
                size = os.fstat(fd).st_size
                # A file that does not end in a newline was torn by a crash: start afresh.
                torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
                return _Open(day, index, path, fd, size, needs_newline=torn)
            os.close(fd)
            index += 1

    def _claim(self, fd: int, day: date, index: int) -> bool:
        """Take a shared lock on a segment if it is still open to appends."""
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # being sealed right now
        stat = os.fstat(fd)
        if stat.st_nlink == 0 or stat.st_size >= self._limit or not S_ISREG(stat.st_mode):
            return False
        if self._is_sealed(day, index) or (self.path / parquet_name(day, day, index)).exists():
            # Sealed (or being sealed): this name was recreated by our open; no writer
            # ever appends to it again.
            if stat.st_size == 0:
                with contextlib.suppress(OSError):
                    remove_file(self.path, jsonl_name(day, index))
            return False
        return True

    def _close_open(self) -> None:
        seg, self._open = self._open, None
        if seg is None:
            return
        if self._commit.policy != "never":
            os.fsync(seg.fd)
        os.close(seg.fd)  # releases the shared lock: the segment may now be sealed
        if self.format == "parquet":
            self._sealer_thread().submit(seg.day, seg.index)

    def _fsync(self) -> None:
        with self._lock:
            fd = os.dup(self._open.fd) if self._open is not None else None
        if fd is not None:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _sealer_thread(self) -> Sealer:
        from comply_lab.storage.seal import Sealer

        if self._sealer is None:
            self._sealer = Sealer(self.sink())
        return self._sealer

    def heartbeat_cadence(self) -> float | None:
        """Return the seconds between this store's heartbeats (None: none periodic)."""
        return self._heartbeat.every or None

    def _snapshots(self) -> Snapshots:
        """Size and SHA-256 of each unsealed segment written since the last heartbeat."""
        with self._lock:
            touched, self._touched = self._touched, set()
            if self._open is not None:
                self._touched.add((self._open.day, self._open.index))
        found: Snapshots = {}
        for day, index in sorted(touched | self._touched):
            name = jsonl_name(day, index)
            snapshot = prefix_sha256(self.path / name)
            if snapshot is not None:
                found[name] = list(snapshot)
        return found

    def location(self) -> str:
        """Return the log's root as a ``file://`` URL, as SQL engines read it (not quoted)."""
        return f"file://{self.path.resolve().as_posix()}/"

    def compact(self, executor: Executor | None = None) -> SealReport:
        """Seal every JSONL segment no writer holds (see `seal`).

        The `Compactable` capability, run through
        [`comply_lab.storage.compaction.compact`][comply_lab.storage.compaction.compact], which
        takes the maintenance lock.
        """
        return self.seal(executor)

    def seal(self, executor: Executor | None = None) -> SealReport:
        """Close the current segment and seal every JSONL segment no writer holds.

        Works on any store directory, including logs written in JSONL format or by the
        original tool; segments in use by other writers are left for later.

        Args:
            executor: Seal day partitions in parallel, one task per day, on this
                ``concurrent.futures.Executor`` (a ``ProcessPoolExecutor``, or Dask's
                ``client.get_executor()``; workers must see this directory), with the result
                of sealing serially. The signing key travels to them as raw bytes.

        Returns:
            What was sealed.
        """
        from comply_lab.storage.seal import SealReport, seal_day

        self.rotate()
        if self._sealer is not None:
            self._sealer.drain()
        sweep_temporaries(self.path)  # what killed sealers left half-written
        by_day: dict[date, list[int]] = {}
        for day, index in self._jsonl_segments():
            by_day.setdefault(day, []).append(index)
        key = None if self.signing_key is None else self.signing_key.private_bytes_raw()
        cadence = self._heartbeat.promised
        root = None if self.root_key is None else self.root_key.public_bytes_raw()
        tasks = [(str(self.path), d, found, key, cadence, root) for d, found in by_day.items()]
        report = SealReport()
        for result in run_tasks(seal_day, tasks, executor):
            report.merge(result)
        return report

    def rotate(self) -> None:
        """Close the current segment without sealing it; the next append starts a new one."""
        with self._lock:
            self._close_open_without_sealing()

    def _close_open_without_sealing(self) -> None:
        fmt, self.format = self.format, "jsonl"
        try:
            self._close_open()
        finally:
            self.format = fmt

    def close(self) -> None:
        """Fsync and close the open segment; with ``format="parquet"``, seal what is closed.

        A store that wrote anything then appends its final heartbeat.
        """
        self._commit.stop()
        if self.format == "parquet":
            self.seal()
            if self._sealer is not None:
                self._sealer.stop()
                self._sealer = None
        else:
            with self._lock:
                self._close_open()
        self._heartbeat.stop()

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._commit.reset_after_fork()
        self._sealer = None
        self._heartbeat.reset_after_fork()
        self._touched = set()

    # -- reading ---------------------------------------------------------------------

    # Listings leave symbolic links out: nothing is read, written or deleted through one.

    def _jsonl_segments(self) -> list[tuple[date, int]]:
        found = [parse_jsonl_name(name) for name in scan(self.path)[0]]
        return sorted(item for item in found if item is not None)

    def _parts(self, day: date) -> list[str]:
        names = scan(self.path, partition_dir(day))[0]
        return [n for n in names if parse_parquet_name(n) is not None]

    def _sealed_indices(self, day: date) -> list[int]:
        found = [parse_parquet_name(n) for n in self._parts(day)]
        found += [parse_jsonl_name(n) for n in scan(self.path, SEALED)[0]]
        return [item[1] for item in found if item is not None and item[0] == day]

    def _is_sealed(self, day: date, index: int) -> bool:
        """Return True once the segment has its sealed marker: its name is never reused."""
        return (self.path / SEALED / jsonl_name(day, index)).exists()

    def days(self) -> list[date]:
        """Return the days that hold JSONL or Parquet segments, oldest first."""
        found = {day for day, _ in self._jsonl_segments()}
        for name in scan(self.path)[1]:
            day = parse_partition(name)
            if day is not None and self._parts(day):
                found.add(day)
        return sorted(found)

    def segments(self, day: date) -> list[Segment]:
        """Return the readable segments of ``day``: sealed Parquet first, then JSONL.

        The manifest decides: a JSONL segment it records as sealed is left out (its
        Parquet parts are read instead), and a Parquet part it does not record yet is
        left out while its JSONL source is still here (sealing was interrupted between
        the two), so no entry is read twice and nothing unvouched shadows its source.
        """
        counts, sealed_sources, ceilings = manifest_index(self.path)

        def live(day: date, index: int) -> bool:
            name = jsonl_name(day, index)
            return name not in sealed_sources and not self._is_sealed(day, index)

        hot = []
        for seg_day, index in self._jsonl_segments():
            name = jsonl_name(seg_day, index)
            size = file_size(self.path, name) if seg_day == day and live(seg_day, index) else None
            if size is not None:
                hot.append(Segment(day, name, "jsonl", size, False))
        result = []
        for name in self._parts(day):
            rel = f"{partition_dir(day)}/{name}"
            source = parse_parquet_name(name)
            if (
                rel not in counts
                and source is not None
                and live(*source)
                and (self.path / jsonl_name(*source)).exists()
            ):
                continue  # sealing was cut short: the source is what was written
            size = file_size(self.path, rel)
            if size is not None:
                count = counts.get(rel)
                known = count if isinstance(count, int) else None
                limit = ceilings.get(rel)
                result.append(Segment(day, rel, "parquet", size, True, known, ceiling=limit))
        return result + hot

    def maintenance(self, operation: str) -> AbstractContextManager[None]:
        """Hold the directory's maintenance lock (an ``flock``) while the block runs.

        Raises:
            ConcurrentOperationError: another process or thread holds it.
        """
        return local_lock(self.path, operation)

    def data_files(self) -> list[str]:
        """Return every regular file below the root that a dataset reader would read.

        See [`dataset_files`][comply_lab.storage.folder.dataset_files]; symbolic links are
        [`links`][comply_lab.storage.file.FileStorage.links].
        """
        return dataset_files(self.path, reader_visible)

    def links(self) -> list[str]:
        """Return every symbolic link below the root: never followed, reported ``foreign``."""
        return links(self.path)

    def read_segment(self, segment: Segment) -> bytes:
        """Return a segment's bytes.

        Raises:
            FileNotFoundError: the segment was sealed or deleted since it was listed.
            ForeignFileError: it became a symbolic link: never followed.
        """
        try:
            return read_file(self.path, segment.name)
        except (FileNotFoundError, ForeignFileError):
            raise
        except OSError as err:
            raise StorageError(f"cannot read {self.path / segment.name}: {err.strerror}") from err

    def read_metadata(self, name: str) -> bytes:
        """Return a metadata file of the store; b"" if it does not exist or is a link."""
        try:
            return read_file(self.path, name)
        except (FileNotFoundError, ForeignFileError):
            return b""

    def append_metadata(self, name: str, record: dict[str, Any]) -> None:
        """Append a chained (and, with a signing key, signed) record to a metadata file."""
        append_record(self.path, record, name, self.signing_key)

    def sink(self, signing_key: Ed25519PrivateKey | None = None) -> LocalSink:
        """Return the sink that writes sealed parts and manifest records of this store.

        Records are signed with ``signing_key``, or else the store's own key.
        """
        from comply_lab.storage.seal import LocalSink

        heartbeat = self._heartbeat
        return LocalSink(
            self.path,
            signing_key or self.signing_key,
            lambda: heartbeat.promised,
            store_root(self),
        )

    def local_path(self, segment: Segment) -> Path:
        """Return the file of a segment, for readers that open files themselves."""
        return self.path / segment.name

    def drop_day(self, day: date, details: Mapping[str, Any] | None = None) -> int:
        """Delete every segment of ``day``, recorded first; return how many entries they held."""
        segments = self.segments(day)
        count, writers = summarize_segments(self, segments)
        if segments:
            from comply_lab.storage.leaves import kept_subtrees  # not on the logging path

            tree = kept_subtrees(self, segments)
            names = [s.name for s in segments]
            digests = deletion_digests(self, segments)
            record = retention_record(day, names, count, details, writers, tree, digests)
            append_record(self.path, record, RETENTION, self.signing_key)
        for seg in segments:
            try:
                remove_file(self.path, seg.name)
            except ForeignFileError:
                raise
            except OSError as err:
                raise StorageError(
                    f"cannot delete {self.path / seg.name}: {err.strerror}; fix permissions and "
                    "run retention again"
                ) from err
        with contextlib.suppress(OSError):
            (self.path / partition_dir(day)).rmdir()
        return count
