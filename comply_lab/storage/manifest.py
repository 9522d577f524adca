"""Chained metadata records: the manifest of sealed segments, and the other trails.

Each record of ``_manifest.jsonl`` names a sealed segment and what it must contain: entry count,
time range, SHA-256 and size of its bytes, the Merkle root (RFC 6962) over its entry hashes,
per-writer chain positions, and ``prev_record_hash``, the hash of the record before it — so the
file is itself a hash chain, like CloudTrail digest files. With a signing key each record also
carries an Ed25519 ``signature`` (over the record without ``record_hash``) and ``signer``, the
fingerprint of the key that made it; ``record_hash`` covers the signature, so stripping it
breaks the chain. The other trails (retention, holds, access, keys, shredded, heartbeats,
deletions, id index) are chained and signed the same way. Every record is stored in one
canonical form ([`record_line`][comply_lab.storage.manifest.record_line]).

The files start with ``_`` so dataset readers (pyarrow, DuckDB, Spark) ignore them.
Several processes may append; an exclusive ``flock`` keeps each chain linear.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
from collections.abc import Callable, Iterator, Mapping
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from comply_lab._time import utc_now
from comply_lab.crypto.signing import key_id, sign
from comply_lab.errors import ForeignFileError, SigningKeyRequiredError
from comply_lab.model.entry import GENESIS_HASH, format_timestamp
from comply_lab.storage.folder import Folder, read_file

MANIFEST = "_manifest.jsonl"
RETENTION = "_retention.jsonl"
ACCESS = "_access.jsonl"
KEYS = "_keys.jsonl"
SHREDDED = "_shredded.jsonl"
HOLDS = "_holds.jsonl"
HEARTBEAT = "_heartbeat.jsonl"
SIGNERS = "_signers.jsonl"
DELETIONS = "_deletions.jsonl"
IDS = "_ids.jsonl"
WRITERS = "_writers.jsonl"
TRAILS = (
    SIGNERS,
    WRITERS,
    MANIFEST,
    RETENTION,
    HOLDS,
    ACCESS,
    KEYS,
    SHREDDED,
    HEARTBEAT,
    DELETIONS,
    IDS,
)
"""Every chained metadata trail of a log."""
SIGNED_LOG = (SIGNERS, WRITERS, MANIFEST, HEARTBEAT)
"""The trails only a writer with a key signs (genesis and operator declarations, writer
registrations, sealing, heartbeats). A process without a key refuses to append to a log
whose newest records there are signed: a guard against an honest mistake (what it wrote
would fail verification), never a source of trust — verification pins its key."""


def signed_bytes(record: dict[str, Any]) -> bytes:
    """Return the bytes a record's signature covers: canonical JSON without hash or signature."""
    body = {k: v for k, v in record.items() if k not in ("record_hash", "signature")}
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def record_hash(record: dict[str, Any]) -> str:
    """Return the hash of a record: SHA-256 of its canonical form without ``record_hash``."""
    body = {k: v for k, v in record.items() if k != "record_hash"}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def record_line(record: dict[str, Any]) -> bytes:
    """Return a record's one stored form: compact JSON with keys sorted, without a newline.

    Verification accepts a stored record only in exactly this form, so no two stored
    byte strings mean the same record (no repeated keys, spacing or escaping variants).
    """
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


def parse_lines(data: bytes) -> Iterator[tuple[int, bytes, dict[str, Any] | None]]:
    """Yield (line number, line, record) for each non-blank line; record None if it is not one.

    A JSON object whose known fields have the wrong types (a string where a count
    belongs, ...) is not a record either: readers skip it and verification reports it.
    """
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            record = None
        yield number, line, record if isinstance(record, dict) and _well_formed(record) else None


def parse_records(data: bytes) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """Yield (line number, record) for each non-blank line; None where no record counts.

    What every reader and every maintenance step acts on: a record counts only as a link
    of the trail's chain, its ``record_hash`` its own, stored in its one canonical form,
    and following (``prev_record_hash``) the last record that counted. A line written by
    hand without or with a wrong hash, edited, or spliced in out of order is None here
    (verification reports it), so it can hide, release, count or retire nothing. Whether a
    record is signed by a key the reader trusts is the next question (see
    `comply_lab.storage.signers.trail_records`).
    """
    previous = GENESIS_HASH
    for number, line, record in parse_lines(data):
        if (
            record is not None
            and record.get("prev_record_hash") == previous
            and record.get("record_hash") == record_hash(record)
            and line == record_line(record)
        ):
            previous = record["record_hash"]
            yield number, record
        else:
            yield number, None


_TEXT_FIELDS = (
    "segment",
    "source",
    "replaces",
    "date",
    "key_id",
    "signer",
    "name",
    "kind",
    "record_hash",
    "prev_record_hash",
    "signature",
    "sha256",
    "merkle_root",
    "day",
    "wrapped",
    "entry_id",
    "entry_hash",
    "prev_hash",
    "writer_id",
    "pruned_from",
)
_COUNT_FIELDS = ("bytes", "days", "damaged_lines", "seq", "tree_start")


def _well_formed(record: dict[str, Any]) -> bool:
    """Whether the fields readers rely on have the types the writers give them."""
    for name in _TEXT_FIELDS:
        if not isinstance(record.get(name, ""), str | None):
            return False
    for name in _COUNT_FIELDS:
        value = record.get(name, 0)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            return False
    entries = record.get("entries", 0)  # a count, or (access records) a list of ids
    if not isinstance(entries, int | list | None) or isinstance(entries, bool):
        return False
    for name in (
        "segments",
        "invalid_entries",
        "removed_on_request",
        *(["entries"] if isinstance(entries, list) else []),
    ):
        items = record.get(name, [])
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            return False
    writers = record.get("writers", {})
    if not isinstance(writers, dict):
        return False
    for span in writers.values():
        bounds = [span.get("first_seq"), span.get("last_seq")] if isinstance(span, dict) else span
        if not (
            isinstance(bounds, list)
            and len(bounds) == 2
            and all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)
        ):
            return False
    unsealed = record.get("unsealed", {})
    if not isinstance(unsealed, dict) or not all(
        isinstance(v, list)
        and len(v) == 2
        and isinstance(v[0], int)
        and not isinstance(v[0], bool)
        and isinstance(v[1], str)
        for v in unsealed.values()
    ):
        return False
    heads = record.get("trails", {})
    if not isinstance(heads, dict) or not all(
        isinstance(v, list)
        and len(v) == 2
        and isinstance(v[0], int)
        and not isinstance(v[0], bool)
        and isinstance(v[1], str | None)
        for v in heads.values()
    ):
        return False
    every = record.get("every")
    if isinstance(every, bool) or not isinstance(every, int | float | None):
        return False
    return isinstance(record.get("policy", {}), dict | None) and isinstance(
        record.get("metadata", {}), dict | None
    )


def trail_head(data: bytes) -> tuple[int, str | None]:
    """Return how many records a trail holds and the ``record_hash`` of its last one."""
    lines = [record for _, record in parse_records(data)]
    last = lines[-1] if lines else None
    head = last.get("record_hash") if last is not None else None
    return len(lines), head if isinstance(head, str) else None


def read_records(root: Path, name: str = MANIFEST) -> list[dict[str, Any]]:
    """Return the readable records of a metadata file of the store at ``root``."""
    try:
        data = read_file(root, name)
    except (FileNotFoundError, ForeignFileError):
        return []  # a link is never followed: verification reports it as foreign
    return [record for _, record in parse_records(data) if record is not None]


def manifest_index(root: Path) -> tuple[Mapping[Any, Any], frozenset[Any], Mapping[Any, Any]]:
    """Return each recorded segment's entry count, the recorded sources, and row limits.

    The count is None for a part compaction rewrote (read its footer); the limit is the
    most rows any generation of the part held.

    What every listing of a day needs: parsed once per distinct manifest content (the
    bytes are read each time, so a changed manifest is never answered from memory).
    """
    try:
        data = read_file(root, MANIFEST)
    except (FileNotFoundError, ForeignFileError):
        data = b""
    return _index(data)


@functools.lru_cache(maxsize=8)
def _index(data: bytes) -> tuple[Mapping[Any, Any], frozenset[Any], Mapping[Any, Any]]:
    records = [record for _, record in parse_records(data) if record is not None]
    # A part compaction rewrote without deleted entries may still be its earlier, larger
    # generation after a crash: its rows are counted from the file itself, and no more
    # than its first generation held are accepted.
    counts = MappingProxyType(
        {r.get("segment"): None if "removed" in r else r.get("entries") for r in records}
    )
    ceilings: dict[Any, Any] = {}
    for r in records:
        if isinstance(r.get("entries"), int):
            ceilings[r.get("segment")] = max(r["entries"], ceilings.get(r.get("segment"), 0))
    return counts, frozenset(r.get("source") for r in records), MappingProxyType(ceilings)


def chain_record(
    record: dict[str, Any],
    previous: dict[str, Any] | None,
    signing_key: Ed25519PrivateKey | None = None,
) -> dict[str, Any]:
    """Return ``record`` chained after ``previous`` (None: first), signed, with its hash."""
    chained = dict(record, prev_record_hash=previous["record_hash"] if previous else GENESIS_HASH)
    if signing_key is not None:
        chained["signer"] = key_id(signing_key)
        chained["signature"] = sign(signing_key, signed_bytes(chained))
    chained["record_hash"] = record_hash(chained)
    return chained


def refuse_unsigned(
    previous: dict[str, Any] | None, signing_key: Ed25519PrivateKey | None, where: str
) -> None:
    """Refuse to chain an unsigned record after a signed one (see `append_record`).

    Raises:
        SigningKeyRequiredError: ``previous`` is signed and there is no ``signing_key``.
    """
    if signing_key is None and previous is not None and "signature" in previous:
        raise SigningKeyRequiredError(
            f"{where} is signed (key {previous.get('signer')}), and an unsigned record "
            "after it would fail verification as bad_signature: nothing was recorded, and "
            "what it records did not happen (a sealing keeps its JSONL source). Give the "
            "writer's signing key or an operator key the log declares (signing_key=..., "
            "--signing-key)"
        )


Extend = Callable[[list[dict[str, Any]]], dict[str, Any]]
"""Fields a record gets from the records before it in its trail (see `append_record`)."""


def append_record(
    root: Path,
    record: dict[str, Any],
    name: str = MANIFEST,
    signing_key: Ed25519PrivateKey | None = None,
    *,
    extend: Extend | None = None,
) -> dict[str, Any]:
    """Chain ``record`` to the file's last record, sign it if a key is given, append it.

    ``extend``, given the readable records already in the file, returns fields to add to
    the record: what depends on its place in the trail, known only under the lock.

    Returns:
        The record as written, with ``prev_record_hash``, signature and ``record_hash``.

    A trail whose records are signed, or a new trail of a log whose manifest, heartbeat or
    signers trail is ([`SIGNED_LOG`][comply_lab.storage.manifest.SIGNED_LOG]), takes only signed
    records: an unsigned one (a
    process opened without the key) would make verification fail, so it is refused.

    Raises:
        ForeignFileError: the file is a symbolic link: nothing is written through it.
        SigningKeyRequiredError: the trail is signed and no key is given.
    """
    with Folder(root) as folder:
        fd = folder.open(name, os.O_RDWR | os.O_APPEND | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        data = os.pread(fd, size, 0) if size else b""
        readable = [r for _, r in parse_records(data) if r is not None]
        if extend is not None:
            record = {**record, **extend(readable)}
        previous = [r for r in readable if "record_hash" in r]
        last = previous[-1] if previous else None
        for trail in SIGNED_LOG if last is None and signing_key is None else ():
            heads = read_records(root, trail)  # a new trail of a signed log is signed too
            refuse_unsigned(heads[-1] if heads else None, None, str(root / trail))
        refuse_unsigned(last, signing_key, str(root / name))
        chained = chain_record(record, last, signing_key)
        prefix = b"\n" if data and not data.endswith(b"\n") else b""
        os.write(fd, prefix + record_line(chained) + b"\n")
        os.fsync(fd)
        return chained
    finally:
        os.close(fd)


def retention_record(
    day: date,
    segments: list[str],
    entries: int,
    details: Mapping[str, Any] | None,
    writers: Mapping[str, Mapping[str, Any]] | None = None,
    tree: Mapping[str, Any] | None = None,
    digests: Mapping[str, list[Any]] | None = None,
) -> dict[str, Any]:
    """Return the ``_retention`` record of deleting a day partition (before it is deleted).

    ``writers`` holds each writer's ``first_seq``, ``last_seq`` and ``last_hash`` in the deleted
    segments that no manifest record describes (unsealed JSONL), so verification can tell the
    gap they leave in a chain from entries gone missing, and check that the chain resumes right
    after them. ``tree`` holds, per deleted sealed part, the Merkle subtrees covering its
    entries (see [`comply_lab.storage.leaves`][comply_lab.storage.leaves]). ``digests`` holds
    each deleted segment's ``[sha256, size]``, so bytes restored later are recognised (see
    [`comply_lab.storage.listing`][comply_lab.storage.listing]).
    """
    record = {
        "date": day.isoformat(),
        "segments": segments,
        "entries": entries,
        "deleted_at": format_timestamp(utc_now()),
        **(details or {}),
    }
    if writers:
        record["writers"] = dict(writers)
    if tree:
        record["tree"] = dict(tree)
    if digests:
        record["digests"] = dict(digests)
    return record
