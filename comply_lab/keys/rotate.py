"""Key rotation: re-encrypt sealed content under other content keys, locally or on S3.

Every sealed Parquet segment holding content that the new keys would encrypt differently
(another key id) gets a new *generation* under the same name, in four steps:

1. the new generation is written to ``_staging/<name>`` (where no dataset reader looks)
   and read back;
2. a manifest record for it is appended: the same entries, entry hashes, Merkle root and
   writer positions, with the new SHA-256 and size, ``rotated_from`` (the SHA-256 of the
   generation it replaces) and ``rotated_to`` (the new key ids);
3. the staged file replaces the segment in one step (a rename; on S3, a server-side
   copy over the object), so every reader — ours, pandas, DuckDB, SQL engines — sees
   exactly one generation at any moment, never both and never none;
4. the staging copy is gone (the rename moved it; on S3 it is deleted).

Entry hashes do not cover stored content, so chains are untouched. Crash-safe and
repeatable: after a crash between 2 and 3 the segment still holds the generation its
previous record vouches for (verification reports the rotation ``incomplete``), and the
next run finishes it from the staged copy; a staged copy no record names is discarded.
A second run on a rotated log changes nothing. Only sealed segments are rotated: seal
(or, on S3, flush) first. In an S3 bucket with versioning (Object Lock), replaced
generations stay as non-current versions until their lock allows deleting them.

What "differently" means is the keys' business
([`ContentKeys.current`][comply_lab.keys.keyring.ContentKeys.current]): a
[`KeyRing`][comply_lab.keys.keyring.KeyRing] moves everything to its primary key,
``EnvelopeKeys`` to the data key of each day under its KMS key, and ``SubjectKeys`` moves
content of entries naming a subject under that subject's key (so erasure can cover history
written before subject keys were used) and leaves content already under a subject key — shredded
or not — as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, cast

import orjson
import pyarrow as pa

from comply_lab._time import utc_now
from comply_lab.crypto.signing import PrivateKeyLike, load_private_key
from comply_lab.errors import ConfigurationError, InvalidQueryError
from comply_lab.keys.encryption import EncryptionManager, decrypt_text
from comply_lab.keys.keyring import ContentKeys, key_id_of
from comply_lab.model.entry import CONTENT_FIELDS, format_timestamp
from comply_lab.storage.base import Storage
from comply_lab.storage.capabilities import Sealing, maintenance
from comply_lab.storage.generations import finish_staged, latest_records
from comply_lab.storage.manifest import MANIFEST
from comply_lab.storage.parts import read_part
from comply_lab.storage.signers import check_may_sign
from comply_lab.storage.sink import Sink

_CHAIN_FIELDS = ("prev_record_hash", "record_hash", "signature", "signer")


@dataclass
class RotationReport:
    """What a rotation did.

    Attributes:
        rotated: The segments that got a new generation.
        values: Content values re-encrypted.
        finished: Segments whose interrupted rotation this run completed.
        cleaned: Staged generations no record names (an attempt cut short), discarded.
    """

    rotated: list[str] = field(default_factory=list)
    values: int = 0
    finished: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)


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
            the store's own signing key, if it was opened with one). An operator key needs
            the ``seal`` scope, checked under the root key the log was opened with
            (``open_log(..., public_key=...)``) before anything is done.

    Raises:
        InvalidQueryError: the store is neither local nor S3, or content needs a key not given.
        DecryptionError: stored content does not decrypt (it is left as it was).
        ConcurrentOperationError: another key rotation, compaction or retention is running.
        SigningKeyRequiredError: the signing key may not sign manifest records.
    """
    storage = cast(Storage, getattr(target, "storage", target))
    check_may_sign(
        storage, MANIFEST, None if signing_key is None else load_private_key(signing_key)
    )
    sink = _sink(storage, signing_key)
    keys = keys.bind(storage)
    with maintenance(storage, "key rotation"):
        return _rotate(storage, sink, keys, legacy)


def _rotate(
    storage: Storage, sink: Sink, keys: ContentKeys, legacy: EncryptionManager | None
) -> RotationReport:
    report = RotationReport()
    report.finished, report.cleaned = finish_staged(storage, sink)
    records = latest_records(storage)
    for day in storage.days():
        for segment in storage.segments(day):
            record = records.get(segment.name)
            if segment.format != "parquet" or not segment.sealed or record is None:
                continue
            table = read_part(storage, segment)
            rotated, written = _reencrypt(table, keys, legacy, day)
            if not written:
                continue
            sha256, size = sink.stage(segment.name, rotated)
            kept = {k: v for k, v in record.items() if k not in _CHAIN_FIELDS}
            sink.record(
                dict(
                    kept,
                    rotated_from=record.get("sha256"),
                    rotated_to=sorted(set(written)),
                    rotated_at=format_timestamp(utc_now()),
                    sha256=sha256,
                    bytes=size,
                )
            )
            sink.commit(segment.name)
            report.rotated.append(segment.name)
            report.values += len(written)
    return report


def _sink(storage: Storage, signing_key: PrivateKeyLike | None) -> Sink:
    key = None if signing_key is None else load_private_key(signing_key)
    if not isinstance(storage, Sealing):
        raise ConfigurationError(
            f"key rotation needs a store that seals parts (FileStorage, S3Storage), not "
            f"{type(storage).__name__}"
        )
    return storage.sink(key)


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
    from comply_lab.model.validate import subject

    parsed = orjson.loads(metadata) if isinstance(metadata, str | bytes) else metadata
    return subject(keys.subject_field, parsed if isinstance(parsed, dict) else None)
