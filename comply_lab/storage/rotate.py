"""Key rotation: re-encrypt sealed content under a key ring's primary key.

Every sealed Parquet segment holding content under another key is rewritten as its next
generation (``part-...-r1.parquet``, ``-r2``, ...) with the content re-encrypted, then a
manifest record for the new file — the same entries, entry hashes, Merkle root and writer
positions, plus ``replaces`` and ``rotated_to`` — is appended, and only then is the old
file deleted. Entry hashes do not cover stored content, so chains and verification are
untouched.

Crash-safe and repeatable: readers ignore a generation the manifest does not record yet
and a file the manifest says was replaced; running rotation again removes such leftovers
and re-encrypts only what still needs it (a second run on a rotated log changes nothing).
Only sealed segments are rotated: seal first (``storage.seal()``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from comply_lab.audit.encryption import EncryptionManager, decrypt_text
from comply_lab.audit.entry import CONTENT_FIELDS, format_timestamp
from comply_lab.audit.keyring import KeyRing, key_id_of
from comply_lab.errors import InvalidQueryError
from comply_lab.integrity.signing import PrivateKeyLike, load_private_key
from comply_lab.storage.arrow import write_parquet
from comply_lab.storage.digest import file_sha256
from comply_lab.storage.file import FileStorage
from comply_lab.storage.manifest import append_record, read_records
from comply_lab.storage.seal import check_part
from comply_lab.storage.segments import rotated_name

_CHAIN_FIELDS = ("prev_record_hash", "record_hash", "signature", "key_id")


@dataclass
class RotationReport:
    """What a rotation did: segments rewritten, entries re-encrypted, leftovers removed."""

    rotated: list[str] = field(default_factory=list)
    values: int = 0
    cleaned: list[str] = field(default_factory=list)


def rotate_keys(
    target: object,
    ring: KeyRing,
    *,
    legacy: EncryptionManager | None = None,
    signing_key: PrivateKeyLike | None = None,
) -> RotationReport:
    """Re-encrypt every sealed segment's content under ``ring.primary``.

    Args:
        target: An opened log (``open_log(path)``) or its local ``FileStorage``.
        ring: Holds the new primary key and every key the content is under now.
        legacy: The ``EncryptionManager`` of content written with Fernet, if any.
        signing_key: Signs the new manifest records, as the writer's key does.

    Raises:
        InvalidQueryError: the store is not local, or content needs a key not given.
        DecryptionError: stored content does not decrypt (it is left as it was).
    """
    storage = getattr(target, "storage", target)
    if not isinstance(storage, FileStorage):
        raise InvalidQueryError("key rotation works on local stores (FileStorage) for now")
    key = None if signing_key is None else load_private_key(signing_key)
    report = RotationReport()
    _clean(storage, report)
    records = {str(r.get("segment")): r for r in read_records(storage.path)}
    for day in storage.days():
        for segment in storage.segments(day):
            if segment.format != "parquet":
                continue
            path = storage.local_path(segment)
            table = pq.read_table(path)
            rotated, count = _reencrypt(table, ring, legacy)
            if count == 0:
                continue
            name = rotated_name(segment.name)
            target = storage.path / name
            write_parquet(rotated, target)
            check_part(pq.read_table(target), rotated, str(target))
            old = {k: v for k, v in records.get(segment.name, {}).items() if k not in _CHAIN_FIELDS}
            append_record(
                storage.path,
                dict(
                    old,
                    segment=name,
                    replaces=segment.name,
                    rotated_to=ring.primary,
                    sha256=file_sha256(target),
                    bytes=target.stat().st_size,
                    sealed_at=format_timestamp(datetime.now(UTC)),
                ),
                signing_key=key,
            )
            path.unlink()
            report.rotated.append(name)
            report.values += count
    return report


def _clean(storage: FileStorage, report: RotationReport) -> None:
    """Finish what an interrupted rotation left: unrecorded new files, unremoved old ones."""
    records = read_records(storage.path)
    recorded = {r.get("segment") for r in records}
    replaced = {r.get("replaces") for r in records}
    for path in sorted(storage.path.glob("date=*/part-*.parquet")):
        name = path.relative_to(storage.path).as_posix()
        if name in replaced or ("-r" in path.name and name not in recorded):
            path.unlink()
            report.cleaned.append(name)


def _reencrypt(
    table: pa.Table, ring: KeyRing, legacy: EncryptionManager | None
) -> tuple[pa.Table, int]:
    ids = table.column("id").to_pylist()
    count = 0
    for name in CONTENT_FIELDS:
        values: list[Any] = table.column(name).to_pylist()
        for i, token in enumerate(values):
            if not isinstance(token, str) or key_id_of(token) == ring.primary:
                continue
            keys: EncryptionManager | KeyRing | None = ring if key_id_of(token) else legacy
            if keys is None:
                raise InvalidQueryError(
                    f"entry {ids[i]}: {name} was encrypted with Fernet; pass "
                    "legacy=EncryptionManager(key)"
                )
            plain = decrypt_text(keys, token, ids[i], name)
            values[i] = ring.encrypt(plain, entry_id=ids[i], field=name)
            count += 1
        table = table.set_column(
            table.schema.get_field_index(name),
            table.schema.field(name),
            pa.array(values, pa.string()),
        )
    return table, count
