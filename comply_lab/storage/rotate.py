"""Key rotation: re-encrypt sealed content under other content keys, locally or on S3.

Every sealed Parquet segment holding content that the new keys would encrypt differently
(another key id) is rewritten as its next generation (``part-...-r1.parquet``, ``-r2``,
...) with that content re-encrypted, then a manifest record for the new file — the same
entries, entry hashes, Merkle root and writer positions, plus ``replaces`` and
``rotated_to`` — is appended, and only then is the old file deleted. Entry hashes do not
cover stored content, so chains and verification are untouched.

Crash-safe and repeatable: readers ignore a generation the manifest does not record yet
and a file the manifest says was replaced; running rotation again removes such leftovers
and re-encrypts only what still needs it (a second run on a rotated log changes nothing).
Only sealed segments are rotated: seal (or, on S3, flush) first.

What "differently" means is the keys' business (:meth:`ContentKeys.current`): a
:class:`KeyRing` moves everything to its primary key, ``EnvelopeKeys`` to the data key of
each day under its KMS key, and ``SubjectKeys`` moves content of entries naming a subject
under that subject's key (so erasure can cover history written before subject keys were
used) and leaves content already under a subject key — shredded or not — as it is.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, cast

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from comply_lab.audit.encryption import EncryptionManager, decrypt_text
from comply_lab.audit.entry import CONTENT_FIELDS, format_timestamp
from comply_lab.audit.keyring import ContentKeys, key_id_of
from comply_lab.errors import InvalidQueryError, RetentionWarning
from comply_lab.integrity.signing import PrivateKeyLike, load_private_key
from comply_lab.storage.base import Storage
from comply_lab.storage.durability import sweep_temporaries
from comply_lab.storage.manifest import MANIFEST, parse_records
from comply_lab.storage.seal import Sink
from comply_lab.storage.segments import has_generation, rotated_name

_CHAIN_FIELDS = ("prev_record_hash", "record_hash", "signature", "key_id")


@dataclass
class RotationReport:
    """What a rotation did: segments rewritten, values re-encrypted, leftovers removed.

    Attributes:
        rotated: The new generations written.
        values: Content values re-encrypted.
        cleaned: Leftovers of an interrupted rotation that were removed.
        kept: Replaced files the store refused to delete (Object Lock); readers skip them.
    """

    rotated: list[str] = field(default_factory=list)
    values: int = 0
    cleaned: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def rotate_keys(
    target: object,
    keys: ContentKeys,
    *,
    legacy: EncryptionManager | None = None,
    signing_key: PrivateKeyLike | None = None,
) -> RotationReport:
    """Re-encrypt every sealed segment's content under ``keys``' write keys.

    Args:
        target: An opened log (``open_log(...)``), its ``FileStorage`` or ``S3Storage``.
        keys: The new keys; they must also hold every key the content is under now.
        legacy: The ``EncryptionManager`` of content written with Fernet, if any.
        signing_key: Signs the new manifest records, as the writer's key does (by default
            the store's own signing key, if it was opened with one).

    Raises:
        InvalidQueryError: the store is neither local nor S3, or content needs a key not given.
        DecryptionError: stored content does not decrypt (it is left as it was).
    """
    storage = cast(Storage, getattr(target, "storage", target))
    sink = _sink(storage, signing_key)
    local = getattr(storage, "path", None)
    if local is not None:
        sweep_temporaries(local)  # what a killed rotation left half-written
    keys = keys.bind(storage)
    report = RotationReport()
    _clean(storage, sink, report)
    records = {str(r.get("segment")): r for r in _manifest(storage)}
    for day in storage.days():
        for segment in storage.segments(day):
            if segment.format != "parquet" or not segment.sealed:
                continue
            table = pq.read_table(io.BytesIO(storage.read_segment(segment)))
            rotated, written = _reencrypt(table, keys, legacy, day)
            if not written:
                continue
            name = rotated_name(segment.name)
            sha256, size = sink.store_part(name, rotated)
            old = {k: v for k, v in records.get(segment.name, {}).items() if k not in _CHAIN_FIELDS}
            sink.record(
                dict(
                    old,
                    segment=name,
                    replaces=segment.name,
                    rotated_to=sorted(set(written)),
                    sha256=sha256,
                    bytes=size,
                    sealed_at=format_timestamp(datetime.now(UTC)),
                )
            )
            if not sink.remove(segment.name):
                report.kept.append(segment.name)
            report.rotated.append(name)
            report.values += len(written)
    if report.kept:
        warnings.warn(
            f"{len(report.kept)} replaced segment(s) could not be deleted (Object Lock or "
            "permissions) and still hold content under the old keys; readers skip them: "
            + ", ".join(report.kept[:5]),
            RetentionWarning,
            stacklevel=2,
        )
    return report


def _sink(storage: Storage, signing_key: PrivateKeyLike | None) -> Sink:
    key = None if signing_key is None else load_private_key(signing_key)
    make = getattr(storage, "sink", None)
    if make is None:
        raise InvalidQueryError(
            f"key rotation needs a FileStorage or S3Storage, not {type(storage).__name__}"
        )
    sink: Sink = make(key)
    return sink


def _manifest(storage: Storage) -> list[dict[str, Any]]:
    return [r for _, r in parse_records(storage.read_metadata(MANIFEST)) if r]


def _clean(storage: Storage, sink: Sink, report: RotationReport) -> None:
    """Finish what an interrupted rotation left: unrecorded new files, unremoved old ones."""
    records = _manifest(storage)
    recorded = {r.get("segment") for r in records}
    replaced = {r.get("replaces") for r in records}
    for day in storage.days():
        for name in sink.parts(day):
            stale = name in replaced or (has_generation(name) and name not in recorded)
            if stale and sink.remove(name):
                report.cleaned.append(name)


def _reencrypt(
    table: pa.Table, keys: ContentKeys, legacy: EncryptionManager | None, day: date
) -> tuple[pa.Table, list[str]]:
    """Return the table with content re-encrypted, and the key id of each new ciphertext."""
    ids = table.column("id").to_pylist()
    metadata = table.column("metadata").to_pylist() if keys.subject_field else None
    written: list[str] = []
    for name in CONTENT_FIELDS:
        values: list[Any] = table.column(name).to_pylist()
        for i, token in enumerate(values):
            if not isinstance(token, str):
                continue
            subject = _subject(keys, metadata[i]) if metadata else None
            key_id = key_id_of(token)
            if keys.current(key_id, day, subject):
                continue
            source: EncryptionManager | ContentKeys | None = keys if key_id else legacy
            if source is None:
                raise InvalidQueryError(
                    f"entry {ids[i]}: {name} was encrypted with Fernet; pass "
                    "legacy=EncryptionManager(key)"
                )
            plain = decrypt_text(source, token, ids[i], name)
            values[i] = keys.encrypt(plain, entry_id=ids[i], field=name, day=day, subject=subject)
            written.append(str(key_id_of(values[i])))
        table = table.set_column(
            table.schema.get_field_index(name),
            table.schema.field(name),
            pa.array(values, pa.string()),
        )
    return table, written


def _subject(keys: ContentKeys, metadata: object) -> str | None:
    from comply_lab.audit.validate import subject

    parsed = orjson.loads(metadata) if isinstance(metadata, str | bytes) else metadata
    return subject(keys.subject_field, parsed if isinstance(parsed, dict) else None)
