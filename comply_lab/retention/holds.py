"""Legal holds, the minimum-retention floor, and deleting single entries under them.

Holds, releases and floors are records of the log's chained ``_holds`` trail — signed when the
store has a signing key — so every process sees them. Whatever decides what may be deleted
(retention, a deletion on request) trusts that trail only if it verifies: a hold lifted by
editing the trail must not let data go. `refuse_held` is registered with
[`guard_deletions`][comply_lab.storage.deletions.guard_deletions], so every store's ``delete``
refuses an entry an active hold covers, whichever API calls it.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from comply_lab._time import TimeLike, to_range, utc_now
from comply_lab.crypto.signing import PublicKeyLike
from comply_lab.errors import EntryHeldError, InvalidQueryError, RetentionError
from comply_lab.integrity.trails import check_trail
from comply_lab.model.entry import AuditEntry, format_timestamp
from comply_lab.model.holds import Hold, active_holds, hold_of
from comply_lab.storage.base import Storage, StorageBase
from comply_lab.storage.deletions import guard_deletions
from comply_lab.storage.manifest import DELETIONS, HOLDS, SIGNERS, parse_records
from comply_lab.storage.signers import authority, check_may_sign, pinned_root


@dataclass(frozen=True, slots=True)
class Policy:
    """The retention rules recorded in a log's ``_holds`` trail.

    Attributes:
        holds: Active holds by name.
        floor_days: The minimum retention in days, if one was set.
        floor_reason: Why the floor was set.
    """

    holds: dict[str, Hold] = field(default_factory=dict)
    floor_days: int | None = None
    floor_reason: str | None = None


def read_policy(
    storage: Storage, *, trusted: bool = False, public_key: PublicKeyLike | None = None
) -> Policy:
    """Return the active holds and the floor recorded in the log's ``_holds`` trail.

    Args:
        storage: The store.
        trusted: Use the trail only if it verifies — every record authentic, none
            removed, each signed when the log is — as retention does before deleting
            anything: a hold lifted by editing the trail must not let data go.
        public_key: Checks the signatures (default: the store's own signing key's).

    Raises:
        RetentionError: ``trusted`` and the trail does not verify, or is signed and no
            key is at hand to check it.
    """
    floor: tuple[int | None, str | None] = (None, None)
    data = storage.read_metadata(HOLDS)
    records = (
        _trusted(data, storage, public_key)
        if trusted
        else [r for _, r in parse_records(data) if r is not None]
    )
    for record in records:
        if record.get("kind") == "floor":
            days = record.get("days")
            floor = (days if isinstance(days, int) and days > 0 else None, record.get("reason"))
    return Policy(active_holds(records), floor[0], floor[1])


def _trusted(
    data: bytes, storage: Storage, public_key: PublicKeyLike | None
) -> list[dict[str, Any]]:
    """Return the records of the ``_holds`` trail, if it verifies under the pinned root."""
    key = pinned_root(storage, public_key)
    known = None if key is None else authority(storage.read_metadata(SIGNERS), key)
    trail = check_trail(data, HOLDS, None if known is None else known.keys_for(HOLDS), known)
    errors = [p for p in trail.problems if p.severity == "error"]  # a torn append is not one
    if errors:
        operator = (
            public_key is None
            and isinstance(storage, StorageBase)
            and storage.root_key is None
            and any(p.status == "bad_signature" for p in errors)
        )
        hint = (
            " (a process signing with an operator key checks it under the log's root key: "
            "pass public_key= / --public-key with the writer's public key)"
            if operator
            else ""
        )
        raise RetentionError(
            f"the legal-hold trail does not verify ({errors[0].line()}){hint}, so "
            "retention will not decide what may be deleted: verify the log, and restore the "
            f"trail {HOLDS} from a backup"
        )
    if trail.signed and key is None:
        raise RetentionError(
            "the legal-hold trail is signed, and retention honours only holds and releases "
            "whose signatures it checked: open the log with its signing key "
            "(open_log(..., signing_key=...), --signing-key) or pass public_key="
        )
    return trail.records


def _reason(reason: object, what: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidQueryError(f"{what} needs a reason (a case, ticket or policy reference)")
    return reason


def _stamp(record: dict[str, Any], who: str | None) -> dict[str, Any]:
    return dict(record, who=who or getpass.getuser(), at=format_timestamp(utc_now()))


def place_hold(
    storage: Storage,
    name: str,
    *,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    conversation_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    reason: str,
    who: str | None = None,
) -> Hold:
    """Place a legal hold; see [`comply_lab.lab.log.Log.hold`][comply_lab.lab.log.Log.hold].

    Raises:
        InvalidQueryError: no reason, an empty name, a name already active, or a bad range.
    """
    reason = _reason(reason, "a hold")
    if not isinstance(name, str) or not name.strip():
        raise InvalidQueryError("a hold needs a name (a case or matter number)")
    if name in read_policy(storage).holds:
        raise InvalidQueryError(
            f"a hold named {name!r} is already active; release it first or use another name"
        )
    if conversation_id is not None and not isinstance(conversation_id, str):
        raise InvalidQueryError("conversation_id must be a string")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise InvalidQueryError("metadata must be a dict of the values entries must have")
    lo, hi = to_range(start, end)
    record = _stamp(
        {
            "kind": "hold",
            "name": name,
            "start": None if lo is None else format_timestamp(lo),
            "end": None if hi is None else format_timestamp(hi),
            "conversation_id": conversation_id,
            "metadata": dict(metadata) if metadata else None,
            "reason": reason,
        },
        who,
    )
    check_may_sign(storage, HOLDS)
    storage.append_metadata(HOLDS, record)
    return hold_of(record)


def release_hold(storage: Storage, name: str, *, reason: str, who: str | None = None) -> None:
    """Release an active hold; its partitions become deletable again by later plans.

    Raises:
        InvalidQueryError: no reason, or no active hold has that name.
    """
    reason = _reason(reason, "releasing a hold")
    active = read_policy(storage).holds
    if name not in active:
        names = ", ".join(sorted(active)) or "none"
        raise InvalidQueryError(f"no active hold named {name!r} (active: {names})")
    check_may_sign(storage, HOLDS)
    storage.append_metadata(HOLDS, _stamp({"kind": "release", "name": name, "reason": reason}, who))


def set_floor(storage: Storage, days: int, *, reason: str, who: str | None = None) -> None:
    """Record a minimum retention in days (0 removes it) that plans must respect.

    Raises:
        InvalidQueryError: no reason, or ``days`` is not a non-negative int.
    """
    reason = _reason(reason, "a retention floor")
    check_days(days, "days")
    check_may_sign(storage, HOLDS)
    storage.append_metadata(HOLDS, _stamp({"kind": "floor", "days": days, "reason": reason}, who))


def check_days(days: object, name: str) -> int:
    """Return ``days`` if it is an int >= 0 (not a bool).

    Raises:
        InvalidQueryError: it is not; the message names the option ``name``.
    """
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise InvalidQueryError(f"{name} must be an int >= 0, got {days!r}")
    return days


def delete_entry(
    storage: Storage,
    entry_id: str,
    *,
    reason: str,
    who: str | None = None,
    public_key: PublicKeyLike | None = None,
) -> bool:
    """Delete one entry on request unless a legal hold covers it; False if there is none.

    The holds trail is trusted only if it verifies, as retention requires; the deletion itself
    is the store's ``delete`` (see
    [`delete_sync`][comply_lab.storage.base.StorageBase.delete_sync]).

    Raises:
        InvalidQueryError: no reason, or ``entry_id`` is not a string.
        EntryHeldError: an active hold covers the entry; nothing was deleted.
        RetentionError: the holds trail does not verify.
        SigningKeyRequiredError: the store's operator key is not certified for deletions.
    """
    reason = _reason(reason, "a deletion")
    check_may_sign(storage, DELETIONS, root=public_key)
    entry = cast(StorageBase, storage).read_sync(entry_id)
    if entry is None:
        return False
    refuse_held(storage, entry, public_key)
    return cast(StorageBase, storage).delete_sync(entry_id, by=who, reason=reason)


@guard_deletions
def refuse_held(
    storage: Storage, entry: AuditEntry, public_key: PublicKeyLike | None = None
) -> None:
    """Refuse to delete ``entry`` if an active legal hold covers it.

    Every store's ``delete`` runs this first (registered with
    [`guard_deletions`][comply_lab.storage.deletions.guard_deletions]), trusting the holds trail
    only if it verifies with ``public_key`` or the store's own signing key.

    Raises:
        EntryHeldError: an active hold covers the entry.
        RetentionError: the holds trail does not verify, or is signed and no key is at
            hand to check it.
    """
    policy = read_policy(storage, trusted=True, public_key=public_key)
    holds = [h.name for h in policy.holds.values() if h.covers(entry)]
    if holds:
        raise EntryHeldError(
            f"entry {entry.id} is under legal hold ({', '.join(sorted(holds))}): it cannot be "
            "deleted until the hold is released"
        )
