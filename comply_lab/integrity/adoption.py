"""Adoption: a log that exists gets what a new signed log gets when it is created.

[`adopt`][comply_lab.integrity.adoption.adopt] gives an existing log what a new one gets
when it is created, once it verifies: the genesis, a registration for every writer its
entries name, and a final heartbeat vouching for the bytes of every unsealed segment, so
that sealing seals them in. It is run with the root key, by someone who has checked the
log: adoption vouches for what the log holds at that moment.
"""

from __future__ import annotations

from comply_lab.crypto.signing import key_id
from comply_lab.errors import IntegrityError, SigningKeyRequiredError
from comply_lab.storage.base import Storage, StorageBase
from comply_lab.storage.genesis import geneses
from comply_lab.storage.heartbeat import DEFAULT_HEARTBEAT_S
from comply_lab.storage.manifest import SIGNERS
from comply_lab.storage.signers import trail_records
from comply_lab.storage.takeover import Adoption, take_over

ADOPTABLE = frozenset({"unsigned", "pending", "unregistered", "stale"})
"""The errors a log may have and still be adopted: what adoption itself resolves."""


def adopt(
    storage: Storage,
    *,
    origin: str | None = None,
    heartbeat_s: float | None = DEFAULT_HEARTBEAT_S,
    pending: bool = True,
) -> Adoption:
    """Give an existing log its genesis and writer registrations, once it verifies.

    Args:
        storage: The log, opened with its root key as signing key (genesis records are
            the root's alone).
        origin: The log's origin (default ``comply-lab/<key fingerprint>``); a log that
            has a genesis keeps its own.
        heartbeat_s: The heartbeat cadence the genesis promises (None: none).
        pending: Adopt entries no signed record vouched for yet (``pending``: a stopped
            writer's last entries, or planted ones) — the operator who adopts has checked
            them. False refuses such a log (what compaction does when it adopts).

    Raises:
        SigningKeyRequiredError: the store has no signing key, or pinned another root.
        IntegrityError: the log does not verify under the key, apart from what adoption
            resolves (unsigned, pending, stale, and in a log without a genesis
            unregistered): nothing was written.
    """
    from comply_lab.integrity.verify import verify  # verification imports this module

    key = storage.signing_key if isinstance(storage, StorageBase) else None
    pinned = storage.root_key if isinstance(storage, StorageBase) else None
    if key is None or (pinned is not None and key_id(pinned) != key_id(key)):
        raise SigningKeyRequiredError(
            "a log is adopted with its root key (open it with signing_key=, --signing-key): "
            "the genesis is the root's alone; nothing was written"
        )
    present = geneses(trail_records(storage, SIGNERS))
    if present:
        origin = str(present[0]["origin"])
    report = verify(storage, public_key=key.public_key(), origin=origin, progress=False)
    if any(p.status == "unsigned" for p in report.errors):
        # Nothing in it is signed (its records are "not signed" under the key): what can
        # be checked is that it is consistent in itself.
        report = verify(storage, progress=False, allow_unsigned=True)
    accepted = ADOPTABLE if pending else ADOPTABLE - {"pending"}
    if present:
        # In a log that has a genesis every writer registers before its first entry:
        # entries of one that did not were planted. Sealing quarantines them.
        accepted -= {"unregistered"}
    blocking = [p for p in report.errors if p.status not in accepted]
    if blocking:
        raise IntegrityError(
            f"the log does not verify ({'; '.join(p.line() for p in blocking[:3])}): adoption "
            "vouches for what it holds, so nothing was written. Resolve the findings first "
            "(comply-lab verify --public-key ...)"
        )
    return take_over(storage, key, origin, heartbeat_s)
