"""Selective decryption for investigators, each use recorded as an access event.

Only the rows asked for are decrypted, and before anything is decrypted an access record
(who, when, which entries, why, which key) is appended to the log's ``_access.jsonl``
(chained like the manifest, and signed when the log was opened with a signing key), so
reading protected content always leaves a trace.

Every decrypted text is checked against the entry's own ``input_hash``/``output_hash``
(HMAC-SHA256 when the log is keyed and the hash key is given) before it is returned.
Content encrypted with the original tool's Fernet key is not bound to its entry, so a
ciphertext copied from another entry decrypts fine: this check is what catches it, and
such a row comes back marked, without text.
"""

from __future__ import annotations

import getpass
import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

import pandas as pd

from comply_lab._time import utc_now
from comply_lab.crypto.fingerprint import fingerprint, hash_key_id
from comply_lab.errors import DecryptionError, InvalidQueryError
from comply_lab.keys.encryption import EncryptionManager, decrypt_text
from comply_lab.keys.keyring import ContentKeys, ShreddedKeyError
from comply_lab.model.entry import CONTENT_FIELDS, format_timestamp
from comply_lab.storage.manifest import ACCESS, parse_records
from comply_lab.storage.signers import check_may_sign

if TYPE_CHECKING:
    from comply_lab.lab.log import Log

Keys = EncryptionManager | ContentKeys | None
_COLUMNS = ["id", "timestamp", "input", "output", "decrypted", "verified", "note"]
_READ = [
    "id",
    "timestamp",
    "input_content",
    "output_content",
    "input_hash",
    "output_hash",
    "hash_key_id",
]


def _ids(selection: pd.DataFrame | Iterable[str] | str) -> list[str]:
    if isinstance(selection, str):
        return [selection]
    if isinstance(selection, pd.DataFrame):
        if "id" not in selection.columns:
            raise InvalidQueryError("the DataFrame to decrypt needs its 'id' column")
        return [str(i) for i in selection["id"]]
    return [str(i) for i in selection]


def decrypt_entries(
    log: Log,
    selection: pd.DataFrame | Iterable[str] | str,
    encryption: Keys,
    *,
    reason: str,
    who: str | None = None,
    hash_key: bytes | None = None,
) -> pd.DataFrame:
    """Decrypt the content of exactly the selected entries, recording the access first.

    Args:
        log: The log.
        selection: Entry ids, or a DataFrame with an ``id`` column.
        encryption: The ``EncryptionManager`` or content keys (``KeyRing``,
            ``EnvelopeKeys``, ``SubjectKeys``) the content was encrypted with; None decrypts
            nothing (every row comes back marked), and the attempt is still recorded. Keys
            lacking a row's key mark that row only; a shredded subject's rows are marked
            ``shredded``.
        reason: Why the content is read (a ticket, a case number); required.
        who: Who reads it; defaults to the operating-system user.
        hash_key: The log's hash key, when its fingerprints are keyed (``hash_key_id``):
            without it the decrypted text of those entries cannot be checked.

    Returns:
        One row per selected entry: ``id``, ``timestamp``, ``input``, ``output``,
        ``decrypted`` (False when the key is missing or wrong, no content is stored, or
        the text is not the entry's), ``verified`` (True when the text matched the
        entry's fingerprints, False when it did not — then no text is returned —, <NA>
        when it could not be checked) and ``note``. Rows are never dropped.

    Raises:
        InvalidQueryError: no reason is given, or the selection is not ids.
    """
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidQueryError("decrypting needs a reason (a case or ticket number, a purpose)")
    ids = list(dict.fromkeys(_ids(selection)))
    key_id = None
    if isinstance(encryption, ContentKeys):
        encryption = encryption.bind(log.storage)
        key_id = encryption.label
    elif encryption is not None:
        key_id = hashlib.sha256(encryption.get_key()).hexdigest()[:16]
    check_may_sign(log.storage, ACCESS)
    log.storage.append_metadata(
        ACCESS,
        {
            "action": "decrypt",
            "who": who or getpass.getuser(),
            "at": format_timestamp(utc_now()),
            "reason": reason,
            "entries": ids,
            "key_id": key_id,
        },
    )
    found = log.entries(ids=ids, columns=_READ)
    rows = {str(row["id"]): {str(k): v for k, v in row.items()} for row in found.to_dict("records")}
    result = []
    for entry_id in ids:
        row = rows.get(entry_id)
        if row is None:
            result.append({"id": entry_id, "decrypted": False, "note": "no such entry"})
            continue
        result.append(_checked(row, _decrypt_row(row, encryption), hash_key))
    return pd.DataFrame(result, columns=_COLUMNS).astype(
        {"decrypted": "bool", "verified": "boolean"}
    )


def _checked(
    row: dict[str, object], out: dict[str, object], hash_key: bytes | None
) -> dict[str, object]:
    """Compare decrypted text with the entry's fingerprints; withhold text that differs."""
    if not out["decrypted"]:
        return out
    row_key = row.get("hash_key_id")
    keyed = isinstance(row_key, str)
    if keyed and (hash_key is None or hash_key_id(hash_key) != row_key):
        out["note"] = (
            f"not checked against its fingerprints: they are keyed (key {row_key}); pass "
            "hash_key= to check"
        )
        return out
    key = hash_key if keyed else None
    for side in ("input", "output"):
        text = out.get(side)
        if isinstance(text, str) and fingerprint(text, key) != row[f"{side}_hash"]:
            return {
                "id": out["id"],
                "timestamp": out["timestamp"],
                "decrypted": False,
                "verified": False,
                "note": f"the decrypted {side} does not match this entry's {side}_hash: the "
                "ciphertext belongs to another entry or was replaced; no text is returned",
            }
    out["verified"] = True
    return out


def _decrypt_row(row: dict[str, object], encryption: Keys) -> dict[str, object]:
    out: dict[str, object] = {"id": row["id"], "timestamp": row["timestamp"], "decrypted": False}
    stored = [row["input_content"], row["output_content"]]
    if all(not isinstance(v, str) for v in stored):
        out["note"] = "no content stored (hash-only entry)"
        return out
    if encryption is None:
        out["note"] = "encrypted: a key is needed"
        return out
    entry_id = str(row["id"])
    try:
        out["input"], out["output"] = (
            decrypt_text(encryption, v, entry_id, field) if isinstance(v, str) else None
            for v, field in zip(stored, CONTENT_FIELDS, strict=True)
        )
    except ShreddedKeyError as err:
        out["note"] = f"shredded: {err}"
        return out
    except DecryptionError as err:
        out["note"] = str(err)
        return out
    out["decrypted"] = True
    out["note"] = ""
    return out


def access_events(log: Log) -> pd.DataFrame:
    """Return every recorded access to protected content, oldest first."""
    records = [r for _, r in parse_records(log.storage.read_metadata(ACCESS)) if r is not None]
    frame = pd.DataFrame(records, columns=["at", "who", "action", "reason", "entries", "key_id"])
    frame["entries"] = frame["entries"].map(lambda e: e if isinstance(e, list) else [])
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame
