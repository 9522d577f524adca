"""Who may sign a log's records: its writer's key, and the operator keys it declares.

A log is signed by its **writer** key. People and jobs that act on the log without that
key — investigators decrypting, operators placing holds or applying retention, a key
rotation job — sign with **operator** keys, which the writer declares: each declaration
is a record of the ``_signers`` trail, signed by the writer's key, naming the operator
key (and carrying the writer's public key, so the declaration can be checked). A record
signed by any other key is ``bad_signature``: verification accepts exactly the writer's
key and the operator keys that key declared.

Whoever holds one of those keys can work out the rest from the log: given the writer's
key, the operators it declared; given an operator's key, the writer whose declaration
names it, and that writer's other operators. Operator keys are not revoked: to stop
trusting one, move the log to a new writer key.
"""

from __future__ import annotations

import base64
import binascii
import getpass
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from comply_lab._time import utc_now
from comply_lab.crypto.signing import PublicKeyLike, key_id, load_public_key, signature_valid
from comply_lab.errors import InvalidQueryError
from comply_lab.model.entry import format_timestamp
from comply_lab.storage.base import Storage, StorageBase
from comply_lab.storage.manifest import SIGNERS, parse_lines, record_hash, signed_bytes


@dataclass
class Authority:
    """The keys whose signatures a log's records may carry.

    Attributes:
        keys: Key id -> public key.
        writer: The writer's key id, when known.
        operators: Declared operator key id -> its name.
    """

    keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    writer: str | None = None
    operators: dict[str, str] = field(default_factory=dict)


def raw_public(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """Return a public key as base64 of its 32 raw bytes, as declarations store it."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def _key(text: object) -> Ed25519PublicKey | None:
    if not isinstance(text, str):
        return None
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error):
        return None


def declarations(data: bytes) -> list[tuple[Ed25519PublicKey, Ed25519PublicKey, str]]:
    """Return the authentic operator declarations of a ``_signers`` trail.

    Each is ``(writer key, operator key, name)``: a record whose hash holds and that the
    writer key it names has signed.
    """
    found = []
    for _, _, record in parse_lines(data):
        if record is None or record.get("kind") != "operator":
            continue
        writer, operator = _key(record.get("writer_key")), _key(record.get("operator_key"))
        signature = record.get("signature")
        if (
            writer is not None
            and operator is not None
            and isinstance(signature, str)
            and record.get("record_hash") == record_hash(record)
            and record.get("signer") == key_id(writer)
            and signature_valid(writer, signed_bytes(record), signature)
        ):
            found.append((writer, operator, str(record.get("name"))))
    return found


def authority(signers: bytes, key: PublicKeyLike | None) -> Authority:
    """Return who may sign a log's records, starting from one key known to be its.

    Args:
        signers: The log's ``_signers`` trail.
        key: The writer's key, or an operator key the writer declared (None: unknown).
    """
    if key is None:
        return Authority()
    given = load_public_key(key)
    given_id = key_id(given)
    declared = declarations(signers)
    writer = given
    for declaring, operator, _ in declared:
        if key_id(operator) == given_id:
            writer = declaring  # an operator's key: its writer is the one who named it
            break
    writer_id = key_id(writer)
    result = Authority({writer_id: writer}, writer_id)
    for declaring, operator, name in declared:
        if key_id(declaring) == writer_id:
            result.keys[key_id(operator)] = operator
            result.operators[key_id(operator)] = name
    result.keys.setdefault(given_id, given)
    return result


def declare_operator(
    storage: Storage, public_key: PublicKeyLike, name: str, *, reason: str, who: str | None = None
) -> str:
    """Declare an operator key, signed with the store's (the writer's) signing key.

    Returns:
        The operator key's id.

    Raises:
        InvalidQueryError: the store has no signing key, the key is the writer's own, or
            the name or reason is missing.
    """
    writer = storage.signing_key if isinstance(storage, StorageBase) else None
    if writer is None:
        raise InvalidQueryError(
            "declaring an operator key needs the writer's signing key: open the log with "
            "open_log(..., signing_key=<writer key>) or pass --signing-key"
        )
    operator = load_public_key(public_key)
    if key_id(operator) == key_id(writer):
        raise InvalidQueryError("that is the writer's own key; declare another key")
    for text, what in ((name, "a name"), (reason, "a reason")):
        if not isinstance(text, str) or not text.strip():
            raise InvalidQueryError(f"declaring an operator key needs {what}")
    record: dict[str, Any] = {
        "kind": "operator",
        "name": name,
        "operator_key": raw_public(operator),
        "operator_id": key_id(operator),
        "writer_key": raw_public(writer),
        "reason": reason,
        "who": who or getpass.getuser(),
        "at": format_timestamp(utc_now()),
    }
    storage.append_metadata(SIGNERS, record)
    return key_id(operator)
