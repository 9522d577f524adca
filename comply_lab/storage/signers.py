"""Who may sign a log's records: its root key, and the operator keys the root certified.

Trust has one root: the public key the verifier pins (``public_key=``, ``--public-key``;
for a process acting on a log, the key it was opened with). Nothing a log says about
itself adds to it. The root key signs what the writer records; people and jobs that act
on the log without that key (investigators decrypting, operators placing holds or
applying retention, a key rotation job) sign with **operator** keys, each certified by a
record of the ``_signers`` trail that the root key signed, naming the operator key and
its **scopes**: the trails its signatures count in (see `SCOPES`). A record signed by any
other key, or by an operator key outside its scopes, is ``bad_signature``, whatever the
log's own records claim: a declaration signed by another key is ignored, even one naming
the root key as its "operator".

Operator keys are not revoked: to stop trusting one, move the log to a new root key.
This module reads the certificates (readers and verification use it) and refuses, before
anything is done, what a process's key may not sign (`check_may_sign`); certifying a key
is `comply_lab.integrity.authority`'s.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from comply_lab.crypto.signing import PublicKeyLike, key_id, load_public_key, signature_valid
from comply_lab.errors import SigningKeyRequiredError
from comply_lab.storage.manifest import (
    ACCESS,
    DELETIONS,
    HEARTBEAT,
    HOLDS,
    IDS,
    KEYS,
    MANIFEST,
    RETENTION,
    SHREDDED,
    SIGNERS,
    WRITERS,
    parse_lines,
    parse_records,
    record_hash,
    signed_bytes,
)

SCOPES: dict[str, str] = {
    MANIFEST: "seal",
    HEARTBEAT: "seal",
    WRITERS: "seal",
    IDS: "seal",
    RETENTION: "retention",
    HOLDS: "holds",
    DELETIONS: "deletions",
    ACCESS: "decryption",
    KEYS: "keys",
    SHREDDED: "erasure",
}
"""The scope an operator key needs for its signatures to count in each trail (checkpoints
need ``seal``). Declarations in the ``_signers`` trail are the root key's alone."""

ALL_SCOPES = tuple(sorted(set(SCOPES.values())))
"""Every scope, in order: what an operator key declared without ``scopes`` gets."""


@dataclass
class Authority:
    """The keys whose signatures a log's records may carry, from one pinned root.

    Attributes:
        keys: Key id -> public key: the root and every operator key it certified.
        writer: The root key's id, when a root is known.
        operators: Certified operator key id -> its name.
        scopes: Certified operator key id -> the scopes it was given.
        adopted: Trail -> the ``record_hash`` of its last record when the root adopted
            the log (an ``adoption`` record it signed): the records up to it were written
            before the log was signed, and count unsigned.
    """

    keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    writer: str | None = None
    operators: dict[str, str] = field(default_factory=dict)
    scopes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    adopted: dict[str, str] = field(default_factory=dict)

    def vouched(self, trail: str, records: Sequence[dict[str, Any] | None]) -> set[str]:
        """Return the ``record_hash`` of each record of ``trail`` the root's adoption vouched for.

        ``records`` are the trail's lines, in order. The adoption names the hash of the
        last record the trail held when the log was adopted; following the chain back
        from it (``prev_record_hash``) gives every record before it.
        """
        head = self.adopted.get(trail)
        by_hash = {r.get("record_hash"): r for r in records if r is not None}
        found: set[str] = set()
        while isinstance(head, str) and head in by_hash and head not in found:
            found.add(head)
            head = by_hash[head].get("prev_record_hash")
        return found

    def keys_for(self, trail: str) -> dict[str, Ed25519PublicKey]:
        """Return the keys whose signatures count in ``trail`` (or ``"checkpoint"``)."""
        scope = "seal" if trail == "checkpoint" else SCOPES.get(trail)
        return {
            key: public
            for key, public in self.keys.items()
            if key == self.writer or (scope is not None and scope in self.scopes.get(key, ()))
        }


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


@dataclass(frozen=True)
class Declaration:
    """An operator key certified in the ``_signers`` trail, by the key that signed it."""

    writer: Ed25519PublicKey
    operator: Ed25519PublicKey
    name: str
    scopes: tuple[str, ...]


def declarations(data: bytes, root: Ed25519PublicKey | None = None) -> list[Declaration]:
    """Return the authentic operator declarations of a ``_signers`` trail.

    Authentic: its record hash holds and the key it names as its writer signed it. With
    ``root``, only those that key signed: the others certify nothing.
    """
    found = []
    for _, _, record in parse_lines(data):
        if record is None or record.get("kind") != "operator":
            continue
        writer, operator = _key(record.get("writer_key")), _key(record.get("operator_key"))
        signature = record.get("signature")
        scopes = _scopes(record.get("scopes"))
        if (
            writer is not None
            and operator is not None
            and scopes is not None
            and isinstance(signature, str)
            and record.get("record_hash") == record_hash(record)
            and record.get("signer") == key_id(writer)
            and (root is None or key_id(root) == key_id(writer))
            and signature_valid(writer, signed_bytes(record), signature)
        ):
            found.append(Declaration(writer, operator, str(record.get("name")), scopes))
    return found


def _scopes(value: object) -> tuple[str, ...] | None:
    """Return a declaration's scopes: all of them when absent, None when malformed."""
    if value is None:
        return ALL_SCOPES  # declared before scopes existed: the root gave it everything
    if isinstance(value, list) and all(isinstance(v, str) and v in ALL_SCOPES for v in value):
        return tuple(sorted(set(value)))
    return None


def authority(signers: bytes, key: PublicKeyLike | None) -> Authority:
    """Return who may sign a log's records, from its pinned root key.

    Args:
        signers: The log's ``_signers`` trail.
        key: The root key (the writer's public key; None: unknown). Operator keys count
            only through declarations this key signed; the trail cannot name another root.
    """
    if key is None:
        return Authority()
    root = load_public_key(key)
    root_id = key_id(root)
    result = Authority({root_id: root}, root_id)
    for declared in declarations(signers, root):
        operator_id = key_id(declared.operator)
        if operator_id == root_id:
            continue
        result.keys[operator_id] = declared.operator
        result.operators[operator_id] = declared.name
        result.scopes[operator_id] = tuple(
            sorted(set(result.scopes.get(operator_id, ())) | set(declared.scopes))
        )
    for _, _, record in parse_lines(signers):
        if record is None or record.get("kind") != "adoption":
            continue
        heads = record.get("trails")
        if isinstance(heads, dict) and signed_by(record, {root_id: root}):
            for trail, head in heads.items():
                if isinstance(head, list) and len(head) == 2 and isinstance(head[1], str):
                    result.adopted[str(trail)] = head[1]
    return result


@runtime_checkable
class Keyed(Protocol):
    """A store that may sign what it appends and may pin its log's root key."""

    signing_key: Ed25519PrivateKey | None
    root_key: Ed25519PublicKey | None


def pinned_root(storage: object, public_key: PublicKeyLike | None = None) -> PublicKeyLike | None:
    """Return the root key to check a store's trails with, before acting on them.

    ``public_key`` if given, else the root the store was opened with
    ([`StorageBase.root_key`][comply_lab.storage.base.StorageBase.root_key]), else its own
    signing key (right for the writer; a process signing with an operator key must pin
    the root). None when there is none: the trails' signatures are not checked.
    """
    if public_key is not None:
        return public_key
    if isinstance(storage, Keyed):
        return storage.root_key or storage.signing_key
    return None


def check_may_sign(
    storage: object,
    trail: str,
    key: Ed25519PrivateKey | None = None,
    root: PublicKeyLike | None = None,
) -> None:
    """Refuse, before anything is done, a record ``key`` may not sign in ``trail``.

    ``key`` defaults to the store's signing key, ``root`` to the root the store pinned
    ([`StorageBase.root_key`][comply_lab.storage.base.StorageBase.root_key]); ``trail``
    may be ``"checkpoint"``. An operator key must be certified by the root for the trail's
    scope.
    Without a pinned root the key is taken as the root, so a key the log certifies as an
    operator is refused: what it signed would be checked as the root's and fail.

    Raises:
        SigningKeyRequiredError: the key may not sign there (the message says what to do).
    """
    if not isinstance(storage, Keyed) or not isinstance(storage, MetadataSource):
        return
    key = key or storage.signing_key
    pinned = storage.root_key if root is None else load_public_key(root)
    if key is None or (pinned is not None and key_id(key) == key_id(pinned)):
        return
    signers = storage.read_metadata(SIGNERS)
    if pinned is None:
        if any(key_id(d.operator) == key_id(key) for d in declarations(signers)):
            raise SigningKeyRequiredError(
                f"the signing key {key_id(key)} is certified as an operator of this log, "
                "not its root, and no root key is pinned: pin the log's public key "
                "(open_log(..., public_key=...), --public-key) so that what it signs is "
                "checked against the scopes the root gave it; nothing was done"
            )
        return
    if key_id(key) in authority(signers, pinned).keys_for(trail):
        return
    scope = (
        "seal" if trail == "checkpoint" else SCOPES.get(trail, "none: only the root key signs it")
    )
    raise SigningKeyRequiredError(
        f"the signing key {key_id(key)} is not certified by the log's root key "
        f"{key_id(pinned)} to sign {trail} (scope {scope}): what it records would fail "
        "verification, so nothing was done. Sign with the root key, or have it certify this "
        "key for that scope (log.add_operator(..., scopes=[...]), comply-lab operators --add "
        "--scope ...)"
    )


def signed_by(record: dict[str, Any], keys: dict[str, Ed25519PublicKey]) -> bool:
    """Whether ``record`` carries a valid signature of one of ``keys`` (key id -> key)."""
    key = keys.get(str(record.get("signer")))
    signature = record.get("signature")
    return (
        key is not None
        and isinstance(signature, str)
        and record.get("record_hash") == record_hash(record)
        and signature_valid(key, signed_bytes(record), signature)
    )


def store_root(storage: object) -> Ed25519PublicKey | None:
    """Return the root a store pinned, or its signing key's public half; None without either."""
    if not isinstance(storage, Keyed):
        return None
    if storage.root_key is not None:
        return storage.root_key
    return None if storage.signing_key is None else storage.signing_key.public_key()


@runtime_checkable
class MetadataSource(Protocol):
    """What reading a trail needs of a store."""

    def read_metadata(self, name: str) -> bytes:
        """Return a metadata file's bytes (empty if there is none)."""
        ...


def trail_records(storage: MetadataSource, trail: str) -> list[dict[str, Any]]:
    """Return the records of a trail that readers and maintenance may act on.

    The links of its chain (see `comply_lab.storage.manifest.parse_records`) and, when the
    store knows its root key (pinned, or its own signing key: `store_root`), only those
    signed by the root or an operator key it certified for the trail: a record anyone
    else added hides, releases or removes nothing.
    """
    records = [r for _, r in parse_records(storage.read_metadata(trail)) if r is not None]
    return counted(records, storage, store_root(storage), trail)


def counted(
    records: list[dict[str, Any]],
    storage: MetadataSource,
    root: Ed25519PublicKey | None,
    trail: str,
) -> list[dict[str, Any]]:
    """Return the ``records`` of ``trail`` signed by ``root`` or a key it certified for it.

    Besides, the unsigned records the root's adoption vouched for. All of them when there
    is no root to check with (a store without any key).
    """
    if root is None:
        return records
    known = authority(storage.read_metadata(SIGNERS), root)
    keys = known.keys_for(trail)
    vouched = known.vouched(trail, records)
    return [
        record
        for record in records
        if signed_by(record, keys)
        or ("signature" not in record and record.get("record_hash") in vouched)
    ]
