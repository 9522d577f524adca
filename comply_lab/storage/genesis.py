"""The genesis record and writer registrations: what a signed log is, and who writes it.

Two kinds of signed records say what a log is, so that nothing has to be inferred from
how it looks:

- the **genesis** record, in the ``_signers`` trail, signed by the log's root key and
  only by it (a genesis signed by any other key is ignored): the log's ``origin`` (the
  name its checkpoints carry), that it is signed, and the heartbeat cadence it promises
  (``heartbeat_s``). A store with a signing key writes it before the first entry of a new
  log; a log that exists already gets it from ``comply-lab adopt`` (see
  [`comply_lab.integrity.adoption`][comply_lab.integrity.adoption]). Verification with
  a pinned key requires it, and requires its origin to be the pinned one;
- a **registration** per writer, in the ``_writers`` trail, signed by the root key or an
  operator key certified for ``seal``: the ``writer_id`` of a hash chain, written before
  the chain's first entry. A writer's unsealed entries count only when it is registered;
  readers and sealing leave out (sealing quarantines) the entries of unregistered
  writers, unless the root's adoption record vouched for their bytes, so planted lines
  are never sealed in.

An attacker who writes these records with their own key, or without one, adds nothing:
readers, sealing and verification take only those signed by the pinned root (or, for
registrations, a key it certified), and a second genesis that disagrees with the first
is a finding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from comply_lab._time import utc_now
from comply_lab.crypto.signing import key_id
from comply_lab.errors import SigningKeyRequiredError, StorageError, UnadoptedLogError
from comply_lab.model.entry import format_timestamp
from comply_lab.storage.manifest import MANIFEST, SIGNERS, WRITERS, parse_records
from comply_lab.storage.signers import MetadataSource, raw_public, store_root, trail_records

if TYPE_CHECKING:
    from comply_lab.storage.base import Storage

GENESIS = "genesis"
"""The ``kind`` of the genesis record in the ``_signers`` trail."""
WRITER = "writer"
"""The ``kind`` of a registration record in the ``_writers`` trail."""
ADOPTION = "adoption"
"""The ``kind`` of the record in the ``_signers`` trail by which the root vouches, when it
adopts a log, for the bytes of its unsealed segments (``unsealed``: name -> size, SHA-256)."""


def default_origin(key: Ed25519PrivateKey | Ed25519PublicKey | None) -> str:
    """Return a log's default origin: ``comply-lab/`` and its root key's fingerprint."""
    return f"comply-lab/{key_id(key) if key is not None else 'unsigned'}"


def genesis_record(
    key: Ed25519PrivateKey, origin: str | None, heartbeat_s: float | None
) -> dict[str, Any]:
    """Return the genesis record of a log whose root key is ``key``."""
    return {
        "kind": GENESIS,
        "origin": origin or default_origin(key),
        "root_key": raw_public(key),
        "heartbeat_s": heartbeat_s or None,
        "created": format_timestamp(utc_now()),
    }


def geneses(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the genesis records among counted ``_signers`` records."""
    return [r for r in records if r.get("kind") == GENESIS and isinstance(r.get("origin"), str)]


def genesis_of(storage: MetadataSource) -> dict[str, Any] | None:
    """Return the first genesis record the store's root signed, or None."""
    if store_root(storage) is None:
        return None
    found = geneses(trail_records(storage, SIGNERS))
    return found[0] if found else None


def adoptions(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the adoption records among counted ``_signers`` records."""
    return [r for r in records if r.get("kind") == ADOPTION]


def registered(records: list[dict[str, Any]]) -> set[str]:
    """Return the writer ids the counted ``_writers`` records register."""
    return {
        r["writer_id"]
        for r in records
        if r.get("kind") == WRITER and isinstance(r.get("writer_id"), str)
    }


def registration_record(writer_id: str, **details: Any) -> dict[str, Any]:
    """Return the registration record of writer ``writer_id``."""
    return {
        "kind": WRITER,
        "writer_id": writer_id,
        "registered": format_timestamp(utc_now()),
        **details,
    }


def register(
    storage: Storage,
    writer_id: str,
    key: Ed25519PrivateKey,
    origin: str | None,
    heartbeat_s: float | None,
) -> None:
    """Register ``writer_id`` in a store signing with ``key``, writing the genesis if due.

    The genesis is written when ``key`` is the log's root (no other root pinned) and the
    log is new: no genesis yet, no day of entries and no manifest record. A log that
    exists without a genesis is refused until it is adopted (`comply-lab adopt`, after
    it was verified), so a writer never vouches for entries it did not write — nor
    writes entries that sealing would then have to refuse.

    Raises:
        UnadoptedLogError: the log exists and has no genesis its root signed.
    """
    if genesis_of(storage) is None:
        root = store_root(storage)
        if (
            root is None
            or key_id(root) != key_id(key)
            or storage.days()
            or storage.read_metadata(MANIFEST).strip()
        ):
            raise UnadoptedLogError(
                f"{storage} holds a log without a genesis record signed by its root key "
                "(written without a key, by an earlier version or by another tool), so "
                "nothing was written to it. Verify it and adopt it with the root key "
                "(comply-lab adopt LOG --signing-key KEY), or log to an empty location"
            )
        storage.append_metadata(SIGNERS, genesis_record(key, origin, heartbeat_s))
    storage.append_metadata(WRITERS, registration_record(writer_id))


def refuse_keyless(storage: MetadataSource) -> None:
    """Refuse a writer without a key in a signed log (one with a genesis record).

    Its entries would be signed by nothing: verification would call them
    ``unregistered`` and sealing would quarantine them. Any genesis record counts here,
    signed by whichever key: a store without a key has no root to check one with.

    Raises:
        SigningKeyRequiredError: the log has a genesis record.
    """
    try:
        signers = storage.read_metadata(SIGNERS)
    except StorageError:
        return  # unreachable (offline, say): entries are spooled; sealing and verification judge
    if any(r.get("kind") == GENESIS for _, r in parse_records(signers) if r):
        raise SigningKeyRequiredError(
            f"{storage} is a signed log (it has a genesis record): a writer without a key "
            "would add entries nothing vouches for, so nothing was written. Open it with "
            "the signing key (signing_key=..., --signing-key) or an operator key the root "
            "certified for seal"
        )
