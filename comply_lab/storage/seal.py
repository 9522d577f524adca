"""Sealing: turning a closed JSONL segment into an immutable Parquet segment, crash-safely.

The steps, each durable before the next, and what a crash after each leaves:

1. take an exclusive ``flock`` on the JSONL segment (writers hold a shared one while they
   may append, so a segment in use is never sealed) and read it;
2. write each day's rows to ``date=YYYY-MM-DD/part-...parquet`` under a temporary name,
   fsync, link into place (never overwriting), fsync the directory — a crash here leaves
   the JSONL source authoritative, and readers ignore temporary files;
3. read every written part back and compare counts and entry hashes with the source;
4. append the manifest record — before it, readers already prefer the Parquet part (it is
   named after its source), and the next seal finds the part, checks it and records it;
5. keep the bytes of any damaged lines in ``_quarantine/`` (nothing stored is dropped);
6. leave a marker in ``_sealed/`` so the segment's name is never used again (a remote
   sink, such as S3, leaves no local twin to tell);
7. delete the JSONL source.

Running it again after a crash at any point finishes the job without duplicating or losing
an entry.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import queue
import stat
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from comply_lab._time import utc_now
from comply_lab.crypto.fingerprint import content_problem
from comply_lab.crypto.merkle import MerkleBuilder, digest_bytes, leaf_hash
from comply_lab.errors import (
    CorruptLineWarning,
    ForeignFileError,
    IntegrityError,
    SealWarning,
)
from comply_lab.model.entry import AuditEntry, entry_hash, format_timestamp, tampered_ids
from comply_lab.storage.admission import quarantined_counts, strangers
from comply_lab.storage.arrow import entries_to_table, read_parquet, write_parquet
from comply_lab.storage.deletions import deletion_records_in
from comply_lab.storage.folder import Folder, read_file, refused, sweep_temporaries
from comply_lab.storage.idindex import FOLDER, foreign_rows, run_bytes, run_record, run_table
from comply_lab.storage.jsonl import parse_segment
from comply_lab.storage.leaves import tree_place
from comply_lab.storage.manifest import DELETIONS, IDS, append_record, read_records
from comply_lab.storage.segments import (
    QUARANTINE,
    SEALED,
    STAGING,
    jsonl_name,
    parquet_name,
    parse_partition,
)
from comply_lab.storage.signers import counted
from comply_lab.storage.sink import Sink


@dataclass
class SealReport:
    """What a sealing pass did.

    Attributes:
        sealed: JSONL segments turned into Parquet (and removed).
        parts: Parquet segments written or confirmed.
        entries: Entries moved into Parquet.
        in_use: JSONL segments skipped because a writer holds them open.
        damaged_lines: Lines that were not valid entries; their bytes are in ``_quarantine/``.
        pruned: Sealed parts rewritten without entries deleted on request (compaction).
    """

    sealed: list[str] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)
    entries: int = 0
    in_use: list[str] = field(default_factory=list)
    damaged_lines: int = 0
    pruned: list[str] = field(default_factory=list)

    def merge(self, other: SealReport) -> None:
        """Add another report's figures to this one."""
        self.sealed += other.sealed
        self.parts += other.parts
        self.entries += other.entries
        self.in_use += other.in_use
        self.damaged_lines += other.damaged_lines


class LocalSink:
    """Seals into the Parquet dataset and ``_manifest.jsonl`` of a local store.

    Args:
        root: The store's directory.
        signing_key: Signs the manifest records.
        promise: Returns the heartbeat cadence the writing store promises, if any; it is
            recorded in each manifest record, so the promise outlives the heartbeat trail.
        trusted: The store's root key: trail records read while sealing (deletions on
            request) count only if it, or a key it certified, signed them.
    """

    def __init__(
        self,
        root: Path,
        signing_key: Ed25519PrivateKey | None = None,
        promise: Callable[[], float | None] | None = None,
        trusted: Ed25519PublicKey | None = None,
    ) -> None:
        self.root = root
        self.signing_key = signing_key
        self.promise = promise
        self.trusted = trusted

    def part_name(self, part_day: date, source_day: date, index: int) -> str:
        """Return ``date=.../part-YYYYMMDD-NNN.parquet``."""
        return parquet_name(part_day, source_day, index)

    def store_part(self, name: str, table: pa.Table) -> tuple[str, int]:
        """Write the part atomically unless present, then read it back and compare."""
        return _write_part(self.root, name, table, replace=False)

    def recorded(self) -> set[str]:
        """Return the segments in ``_manifest.jsonl``."""
        return {str(r.get("segment")) for r in read_records(self.root)}

    def records(self, trail: str) -> list[dict[str, Any]]:
        """Return the records of a trail of the store that count (see `counted`).

        They are checked under the root the sink was given, else its own signing key's.
        """
        own = None if self.signing_key is None else self.signing_key.public_key()
        return counted(read_records(self.root, trail), self, self.trusted or own, trail)

    def signs(self) -> bool:
        """Whether the records this sink appends are signed."""
        return self.signing_key is not None

    def read_metadata(self, name: str) -> bytes:
        """Return a trail's bytes (empty if there is none)."""
        try:
            return read_file(self.root, name)
        except (FileNotFoundError, ForeignFileError):
            return b""

    def store_index(self, name: str, data: bytes) -> None:
        """Write an index run atomically under ``_idindex/`` (replacing an unrecorded one)."""
        folder_name, base = name.rsplit("/", 1)
        with Folder(self.root, folder_name, create=True) as folder:
            folder.unlink(base, missing_ok=True)
            folder.create(base, data)

    def remove_index(self, names: list[str]) -> None:
        """Delete index runs (a link in their place is never followed nor removed)."""
        for name in names:
            folder_name, base = name.rsplit("/", 1)
            with Folder(self.root, folder_name, create=True) as folder:
                if folder.is_file(base):
                    folder.unlink(base)

    def note(self, trail: str, record: dict[str, Any]) -> None:
        """Append to another trail of the store, under its lock."""
        append_record(self.root, record, trail, self.signing_key)

    def record(self, record: dict[str, Any], leaves: Sequence[bytes] | None = None) -> None:
        """Append to ``_manifest.jsonl`` under its lock (placing a new part in the tree)."""
        promised = self.promise() if self.promise is not None else None
        if promised:
            record = dict(record, heartbeat_s=promised)
        place = None if leaves is None else tree_place(record, leaves)
        append_record(self.root, record, signing_key=self.signing_key, extend=place)

    def publish(self, name: str) -> None:
        """Do nothing: a local part is in place once stored.

        Readers leave an unrecorded part aside while its JSONL source is there, so the record
        alone decides what they read (see
        [`FileStorage.segments`][comply_lab.storage.file.FileStorage.segments]).
        """

    def quarantine(self, source: str, data: bytes) -> None:
        """Keep the bytes in ``_quarantine/``."""
        _quarantine(self.root, source, data)

    def stage(self, name: str, table: pa.Table) -> tuple[str, int]:
        """Write ``_staging/<name>`` atomically and read it back."""
        return _write_part(self.root, f"{STAGING}/{name}", table, replace=True)

    def staged(self) -> dict[str, str]:
        """Return ``_staging/`` parts and their digests."""
        found = {}
        sweep_temporaries(self.root, STAGING)  # what a killed rotation left half-written
        try:
            staging = Folder(self.root, STAGING)
        except FileNotFoundError:
            return {}
        with staging:
            partitions = [n for n in staging.names() if parse_partition(n) is not None]
        for partition in sorted(partitions):
            with Folder(self.root, f"{STAGING}/{partition}") as folder:
                for base in sorted(folder.names()):
                    if base.endswith(".parquet") and folder.is_file(base):
                        digest = hashlib.sha256(folder.read(base)).hexdigest()
                        found[f"{partition}/{base}"] = digest
        return found

    def commit(self, name: str) -> None:
        """Rename the staged generation over the part (atomic), fsync both folders."""
        partition, base = name.rsplit("/", 1)
        with (
            Folder(self.root, f"{STAGING}/{partition}") as staged,
            Folder(self.root, partition) as target,
        ):
            target.replace(staged, base)

    def discard(self, name: str) -> None:
        """Delete ``_staging/<name>``."""
        partition, base = name.rsplit("/", 1)
        with Folder(self.root, f"{STAGING}/{partition}") as folder:
            folder.unlink(base, missing_ok=True)

    def digest(self, name: str) -> str | None:
        """Return the SHA-256 of the part's file."""
        partition, base = name.rsplit("/", 1)
        try:
            with Folder(self.root, partition) as folder:
                return hashlib.sha256(folder.read(base)).hexdigest()
        except FileNotFoundError:
            return None


def _write_part(root: Path, name: str, table: pa.Table, *, replace: bool) -> tuple[str, int]:
    """Write a Parquet part ``name`` below ``root`` atomically, read it back and compare.

    An existing part is kept (and compared) unless ``replace``: a staged generation left by
    an attempt that was never recorded is written afresh.

    Returns:
        The SHA-256 and size of the stored bytes.
    """
    folder_name, base = name.rsplit("/", 1)
    with Folder(root, folder_name, create=True) as folder:
        if replace:
            folder.unlink(base, missing_ok=True)
        if not folder.is_file(base):
            folder.write_with(base, lambda file: write_parquet(table, file))
        stored = folder.read(base)
    check_part(read_parquet(stored), table, str(root / name))
    return hashlib.sha256(stored).hexdigest(), len(stored)


def seal_segment(root: Path, day: date, index: int, sink: Sink | None = None) -> SealReport:
    """Seal JSONL segment ``index`` of ``day`` of the store (or spool) at ``root``.

    The parts go to ``sink``: by default the local Parquet dataset of ``root``.

    Returns:
        What was done; ``in_use`` names the segment if a writer still holds it.

    Raises:
        IntegrityError: a Parquet part that already exists, or one just written, does not
            hold exactly the source's entries; the source is kept.
    """
    name = jsonl_name(day, index)
    report = SealReport()
    with Folder(root) as folder:
        try:
            fd = folder.open(name, os.O_RDONLY)
        except FileNotFoundError:
            return report  # sealed meanwhile by another process
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                report.in_use.append(name)
                return report
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise refused(root / name)
            if info.st_nlink == 0:
                return report  # sealed and deleted while we waited
            data = _read_all(fd)
            target = sink or LocalSink(root)
            if write_parts(target, day, index, name, data, report):
                target.quarantine(name, data)
            _mark_sealed(root, name)
            # A writer that found the name sealed may have removed an empty file it recreated.
            folder.unlink(name, missing_ok=True)
            folder.fsync()
            report.sealed.append(name)
            return report
        finally:
            os.close(fd)


def seal_day(
    root: str,
    day: date,
    indexes: list[int],
    signing_key: bytes | None,
    heartbeat_s: float | None = None,
    root_key: bytes | None = None,
) -> SealReport:
    """Seal JSONL segments ``indexes`` of ``day`` in the store at ``root``: one task.

    Takes only plain values (raw Ed25519 keys: the signing key, and the root the store
    pinned), so it can run in another process.
    """
    key = None if signing_key is None else Ed25519PrivateKey.from_private_bytes(signing_key)
    pinned = None if root_key is None else Ed25519PublicKey.from_public_bytes(root_key)
    sink = LocalSink(Path(root), key, lambda: heartbeat_s, pinned)
    report = SealReport()
    for index in indexes:
        report.merge(seal_segment(Path(root), day, index, sink))
    return report


def _mark_sealed(root: Path, name: str) -> None:
    """Leave a marker so the segment's name (and index) is never used again."""
    with Folder(root, SEALED, create=True) as folder:
        folder.create(name, b"")


def _read_all(fd: int) -> bytes:
    chunks = []
    offset = 0
    while chunk := os.pread(fd, 1 << 24, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def invalid_ids(data: bytes, entries: list[AuditEntry]) -> set[str]:
    """Return the ids of a source's entries that verification would not accept.

    Their lines are not their canonical form or do not match their hash
    ([`tampered_ids`][comply_lab.model.entry.tampered_ids]), or their stored plain text does not
    match its fingerprint: sealing stores them as they are but lists them in the manifest
    record, so it never vouches for an entry verification of the source would reject.
    """
    return tampered_ids(data) | {e.id for e in entries if content_problem(e) is not None}


def parse_source(data: bytes, name: str) -> tuple[list[AuditEntry], int]:
    """Parse a JSONL source; damaged lines are warned about and counted."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        entries = list(parse_segment(data, name))
    damaged = [w for w in caught if issubclass(w.category, CorruptLineWarning)]
    for w in damaged:
        warnings.warn(
            f"{w.message} (sealing keeps the raw bytes in {QUARANTINE}/{name})",
            CorruptLineWarning,
            stacklevel=3,
        )
    return entries, len(damaged)


def write_parts(
    sink: Sink, source_day: date, index: int, source: str, data: bytes, report: SealReport
) -> bool:
    """Store the entries of a source's bytes as one part per day; record each in the manifest.

    Entries verification would not accept (see
    [`invalid_ids`][comply_lab.storage.seal.invalid_ids]) are stored, but the manifest
    lists them, so sealing never vouches for them. Entries sealing may not vouch for at all
    (a writer nobody registered, see [`comply_lab.storage.admission`][comply_lab.storage.admission])
    are left out and counted in a ``_quarantine/`` record; entries a retention record
    deleted (what an interrupted retention leaves) are left out for good.

    Returns:
        Whether the source's bytes must be kept in ``_quarantine/`` (damaged lines, or
        entries left out).

    Raises:
        UnadoptedLogError: a signing sink, and a log without a genesis record.

    Entries deleted on request are left out; each record names those of its day
    (``removed_on_request``), and a source whose every entry was deleted gets a record
    of its own saying so.

    The part of the source's own day is stored last, so once it exists all others do;
    every step is idempotent, so a repeated call after a crash completes the job.
    """
    entries, damaged = parse_source(data, source)
    tampered = invalid_ids(data, entries)
    held, retired = strangers(sink, source, data, entries)
    report.damaged_lines += damaged
    gone = {r["entry_id"] for r in deletion_records_in(sink.records(DELETIONS))}
    removed: dict[date, list[str]] = {}
    by_day: dict[date, list[AuditEntry]] = {}
    for position, entry in enumerate(entries):
        if position in held or position in retired:
            continue
        if entry.id in gone:
            removed.setdefault(entry.timestamp.date(), []).append(entry.id)
        else:
            by_day.setdefault(entry.timestamp.date(), []).append(entry)
    # The part of the source's own day goes last: once it exists, every other part does.
    order = sorted(by_day, key=lambda d: (d == source_day, d))
    recorded = sink.recorded()
    indexed: list[tuple[str, str, int]] = []
    for part_day in order:
        rows = by_day[part_day]
        name = sink.part_name(part_day, source_day, index)
        foreign = foreign_rows(rows)
        indexed += [(entry_id, name, group) for entry_id, group in foreign]
        digest, size = sink.store_part(name, entries_to_table(rows))
        if name not in recorded:
            record, leaves = manifest_record(name, source, part_day, rows, digest, size, damaged)
            record["foreign_ids"] = len(foreign)
            record["invalid_entries"] = [e.id for e in rows if e.id in tampered]
            if removed.get(part_day):
                record["removed_on_request"] = removed[part_day]
            sink.record(record, leaves)
        sink.publish(name)
        report.parts.append(name)
        report.entries += len(rows)
    if indexed:
        _index_run(sink, sink.part_name(source_day, source_day, index), indexed)
    if removed and not by_day:
        sink.record(
            {
                "source": source,
                "date": source_day.isoformat(),
                "entries": 0,
                "removed_on_request": [i for ids in removed.values() for i in ids],
                "sealed_at": _now(),
            }
        )
    if ((not entries and damaged) or held) and f"{QUARANTINE}/{source}" not in recorded:
        record = {
            "segment": f"{QUARANTINE}/{source}",
            "source": source,
            "entries": 0,
            "damaged_lines": damaged,
            "sealed_at": _now(),
        }
        if held:
            record["quarantined"] = quarantined_counts(entries, held)
        sink.record(record)
    return bool(damaged or held)


def _index_run(sink: Sink, part: str, items: list[tuple[str, str, int]]) -> None:
    """Store and record the id index run of what one source's sealing wrote (once)."""
    name = f"{FOLDER}/{part.replace('/', '-').rsplit('.', 1)[0]}.parquet"
    if any(r.get("file") == name for r in sink.records(IDS)):
        return
    table = run_table(items)
    data = run_bytes(table)
    sink.store_index(name, data)
    sink.note(IDS, run_record(name, table, data))


def check_part(stored: pa.Table | None, expected: pa.Table, where: str) -> None:
    """Require a stored part to hold every value of ``expected``, entry hashes included.

    Raises:
        IntegrityError: it does not (or could not be read); the source is kept.
    """
    same = stored is not None and stored.num_rows == expected.num_rows and stored.equals(expected)
    if not same:
        raise IntegrityError(
            f"{where} does not hold exactly the {expected.num_rows} entries of its JSONL "
            "source; the source is kept. Move the stored part aside and seal again, or "
            "verify the log"
        )


def manifest_record(
    name: str,
    source: str,
    day: date,
    rows: list[AuditEntry],
    digest: str,
    size: int,
    damaged: int,
) -> tuple[dict[str, Any], list[bytes]]:
    """Return the manifest record of part ``name`` holding ``rows``, and the rows' leaf hashes.

    The leaf hashes (see [`comply_lab.storage.leaves`][comply_lab.storage.leaves]) give the
    record its place in the log-wide tree when it is appended (``tree_start``, ``subtrees``).
    """
    leaves = [leaf_hash(digest_bytes(e.entry_hash or entry_hash(e.record()))) for e in rows]
    root = MerkleBuilder()
    writers: dict[str, dict[str, Any]] = {}
    for entry, leaf in zip(rows, leaves, strict=True):
        root.add_leaf_hash(leaf)
        if entry.writer_id is not None and entry.seq is not None:
            chain = writers.setdefault(entry.writer_id, {"first_seq": entry.seq, "entries": 0})
            chain["entries"] += 1
            chain["last_seq"] = entry.seq
            chain["last_hash"] = entry.entry_hash
    return {
        "segment": name,
        "source": source,
        "date": day.isoformat(),
        "entries": len(rows),
        "first_timestamp": format_timestamp(min(e.timestamp for e in rows)) if rows else None,
        "last_timestamp": format_timestamp(max(e.timestamp for e in rows)) if rows else None,
        "first_entry_hash": rows[0].entry_hash if rows else None,
        "last_entry_hash": rows[-1].entry_hash if rows else None,
        "merkle_root": root.root().hex(),
        "writers": writers,
        "sha256": digest,
        "bytes": size,
        "damaged_lines": damaged,
        "sealed_at": _now(),
    }, leaves


def _quarantine(root: Path, name: str, data: bytes) -> None:
    """Keep a segment's bytes, readable by the owner only (damaged lines may hold content)."""
    with Folder(root, QUARANTINE, create=True) as folder:
        if not folder.create(name, data, mode=0o600) and not folder.is_file(name):
            raise refused(folder.path / name)  # a link in the way: the source is kept


def _now() -> str:
    return format_timestamp(utc_now())


class Sealer:
    """Seals closed segments in a background thread, so ``log()`` never waits for it."""

    def __init__(self, sink: LocalSink) -> None:
        self._sink = sink
        self._root = sink.root
        self._queue: queue.Queue[tuple[date, int] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="comply-lab-sealer", daemon=True)
        self._thread.start()

    def submit(self, day: date, index: int) -> None:
        """Queue a closed segment for sealing."""
        self._queue.put((day, index))

    def drain(self) -> None:
        """Wait until everything queued so far is sealed (or warned about)."""
        self._queue.join()

    def stop(self) -> None:
        """Seal what is queued, then end the thread."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                seal_segment(self._root, *item, self._sink)
            except Exception as err:
                warnings.warn(
                    f"could not seal {jsonl_name(*item)} in {self._root}: {err}; it stays "
                    "readable as JSONL and is sealed again at close() or seal()",
                    SealWarning,
                    stacklevel=1,
                )
            finally:
                self._queue.task_done()
        self._queue.task_done()
