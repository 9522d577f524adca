"""Retention: plans, legal holds, a minimum-retention floor, and an audited trail.

Retention deletes whole UTC day partitions, never rewrites a file, and never deletes what
it was not shown first:

1. :func:`plan_retention` lists every partition with what would happen to it and why —
   ``expired`` (delete), ``within retention``, ``under hold: <names>``, ``locked by
   object lock until ...`` (S3) — without changing anything;
2. :func:`apply_retention` deletes exactly the partitions the plan marks for deletion,
   after checking holds and the floor again (a hold placed after planning still wins),
   and each deletion first appends a retention record (who, when, which policy) to
   ``_retention``, so verification reports the partition as ``expired_by_policy``.

Legal holds (:func:`place_hold`, :func:`release_hold`) and the minimum-retention floor
(:func:`set_floor`) are records of the log's chained ``_holds`` trail — signed when the
store has a signing key — so every process that applies retention sees them, and an
auditor can list who held, released or deleted what, and when. A hold covers the entries
matching all of its criteria (a time range, a conversation, metadata values; none means
the whole log); a partition holding any such entry is kept.

The floor (for example 183 days, the EU AI Act's six months for deployers' logs) makes
any plan with fewer retention days fail unless it carries an explicit ``override``
reason, which is recorded with each deletion it causes.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Literal, cast

from comply_lab._time import TimeLike, day_end, day_start, days_before, to_range, to_utc
from comply_lab.crypto.signing import PublicKeyLike
from comply_lab.errors import (
    EntryHeldError,
    InvalidQueryError,
    RetentionError,
    RetentionFloorError,
)
from comply_lab.integrity.authority import authority
from comply_lab.integrity.trails import check_trail
from comply_lab.model.entry import AuditEntry, format_timestamp
from comply_lab.storage.base import Storage, StorageBase
from comply_lab.storage.capabilities import ObjectLocked, maintenance
from comply_lab.storage.decode import count_segments, read_day
from comply_lab.storage.manifest import HOLDS, RETENTION, SIGNERS, parse_records, trail_head

if TYPE_CHECKING:
    import pandas as pd

Action = Literal["delete", "keep"]


@dataclass(frozen=True, slots=True)
class Hold:
    """An active legal hold: entries matching all its criteria must not be deleted.

    Attributes:
        name: The hold's unique name (a case or matter number).
        reason: Why it was placed.
        who: Who placed it.
        at: When it was placed (ISO 8601 UTC).
        start: Covers entries from this time (None: from the beginning).
        end: Covers entries up to this time (None: to the end of time).
        conversation_id: Covers only this conversation's entries.
        metadata: Covers only entries whose metadata has these key/value pairs.
    """

    name: str
    reason: str
    who: str
    at: str
    start: datetime | None = None
    end: datetime | None = None
    conversation_id: str | None = None
    metadata: dict[str, Any] | None = None

    def may_cover(self, day: date) -> bool:
        """Whether ``day`` overlaps the hold's time range."""
        return (self.start is None or day_end(day) >= self.start) and (
            self.end is None or day_start(day) <= self.end
        )

    def covers(self, entry: AuditEntry) -> bool:
        """Whether the hold covers ``entry``."""
        when = to_utc(entry.timestamp)
        return (
            (self.start is None or when >= self.start)
            and (self.end is None or when <= self.end)
            and (self.conversation_id is None or entry.conversation_id == self.conversation_id)
            and all((entry.metadata or {}).get(k) == v for k, v in (self.metadata or {}).items())
        )

    @property
    def by_content(self) -> bool:
        """Whether deciding needs the entries themselves (a conversation or metadata)."""
        return self.conversation_id is not None or bool(self.metadata)


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


@dataclass(frozen=True, slots=True)
class PlannedPartition:
    """What a plan does with one day partition, and why."""

    partition: date
    entries: int | None
    bytes: int
    action: Action
    reason: str
    holds: tuple[str, ...] = ()


@dataclass(frozen=True)
class RetentionPlan:
    """What retention would delete, made by :func:`plan_retention`; nothing is changed.

    Attributes:
        days: Entries whose whole UTC day is older than this many days are expired.
        now: The time the plan was made for.
        cutoff: ``now - days``: partitions ending before it are expired.
        floor_days: The minimum retention in force, if any.
        override: The recorded reason for going below the floor, if given.
        partitions: One row per partition, oldest first.
    """

    days: int
    now: datetime
    cutoff: datetime
    floor_days: int | None
    override: str | None
    partitions: tuple[PlannedPartition, ...]

    @property
    def to_delete(self) -> list[PlannedPartition]:
        """The partitions the plan deletes."""
        return [p for p in self.partitions if p.action == "delete"]

    def to_frame(self) -> pd.DataFrame:
        """Return the plan as a DataFrame (plan settings in ``DataFrame.attrs``)."""
        import pandas as pd

        frame = pd.DataFrame(
            [
                {
                    "partition": p.partition,
                    "entries": p.entries,
                    "bytes": p.bytes,
                    "action": p.action,
                    "reason": p.reason,
                    "holds": list(p.holds),
                }
                for p in self.partitions
            ],
            columns=["partition", "entries", "bytes", "action", "reason", "holds"],
        ).astype({"entries": "Int64", "bytes": "int64"})
        frame.attrs["plan"] = self
        return frame


@dataclass
class RetentionResult:
    """What :func:`apply_retention` did.

    Attributes:
        partitions: The partitions deleted.
        entries: How many entries they held.
        kept: Partitions the plan would have deleted but that were kept, with the reason
            (a hold placed after planning, objects S3 refused to delete).
    """

    partitions: list[date] = field(default_factory=list)
    entries: int = 0
    kept: dict[date, str] = field(default_factory=dict)


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
    holds: dict[str, Hold] = {}
    floor: tuple[int | None, str | None] = (None, None)
    data = storage.read_metadata(HOLDS)
    records = (
        _trusted(data, storage, public_key)
        if trusted
        else [r for _, r in parse_records(data) if r is not None]
    )
    for record in records:
        kind = record.get("kind")
        if kind == "hold":
            holds[str(record["name"])] = _hold(record)
        elif kind == "release":
            holds.pop(str(record.get("name")), None)
        elif kind == "floor":
            days = record.get("days")
            floor = (days if isinstance(days, int) and days > 0 else None, record.get("reason"))
    return Policy(holds, floor[0], floor[1])


def _trusted(
    data: bytes, storage: Storage, public_key: PublicKeyLike | None
) -> list[dict[str, Any]]:
    """Return the records of the ``_holds`` trail, if it verifies."""
    own = storage.signing_key if isinstance(storage, StorageBase) else None
    key = public_key if public_key is not None else own
    keys = authority(storage.read_metadata(SIGNERS), key).keys if key is not None else None
    trail = check_trail(data, HOLDS, keys)
    if trail.problems:
        raise RetentionError(
            f"the legal-hold trail does not verify ({trail.problems[0].line()}), so "
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


def _hold(record: dict[str, Any]) -> Hold:
    start, end = (record.get(k) for k in ("start", "end"))
    return Hold(
        name=str(record["name"]),
        reason=str(record.get("reason")),
        who=str(record.get("who")),
        at=str(record.get("at")),
        start=to_utc(start) if isinstance(start, str) else None,
        end=to_utc(end) if isinstance(end, str) else None,
        conversation_id=record.get("conversation_id"),
        metadata=record.get("metadata") or None,
    )


def _reason(reason: object, what: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidQueryError(f"{what} needs a reason (a case, ticket or policy reference)")
    return reason


def _stamp(record: dict[str, Any], who: str | None) -> dict[str, Any]:
    return dict(record, who=who or getpass.getuser(), at=format_timestamp(datetime.now(UTC)))


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
    """Place a legal hold; see :meth:`comply_lab.lab.log.Log.hold`.

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
    storage.append_metadata(HOLDS, record)
    return _hold(record)


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
    storage.append_metadata(HOLDS, _stamp({"kind": "release", "name": name, "reason": reason}, who))


def set_floor(storage: Storage, days: int, *, reason: str, who: str | None = None) -> None:
    """Record a minimum retention in days (0 removes it) that plans must respect.

    Raises:
        InvalidQueryError: no reason, or ``days`` is not a non-negative int.
    """
    reason = _reason(reason, "a retention floor")
    _check_days(days, "days")
    storage.append_metadata(HOLDS, _stamp({"kind": "floor", "days": days, "reason": reason}, who))


def _check_days(days: object, name: str) -> int:
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise InvalidQueryError(f"{name} must be an int >= 0, got {days!r}")
    return days


def plan_retention(
    storage: Storage,
    days: int,
    now: TimeLike | None = None,
    *,
    floor_days: int | None = None,
    override: str | None = None,
    count: bool = True,
    public_key: PublicKeyLike | None = None,
) -> RetentionPlan:
    """Return what retention of ``days`` days would delete, and why each partition stays.

    A partition is expired once its whole UTC day is more than ``days`` days before
    ``now``, so no entry younger than ``days`` is ever deleted.

    Args:
        storage: The store.
        days: The retention period in days.
        now: The time to plan for (default: now).
        floor_days: A minimum retention to respect besides the one recorded in the log
            (the larger applies).
        override: The reason for going below the floor; recorded with every deletion.
        count: Count each partition's entries (free for sealed Parquet, a read of each
            JSONL file otherwise); False leaves ``entries`` empty, so that planning reads
            nothing but the listing and the holds' partitions (what ``cleanup_expired``
            does: the deletion records count what they delete).
        public_key: Checks the signatures of the legal-hold trail (default: the store's
            own signing key's).

    Raises:
        RetentionFloorError: ``days`` is below the floor and no override is given.
        InvalidQueryError: ``days`` or ``floor_days`` is not an int >= 0.
        RetentionError: the legal-hold trail does not verify (see :func:`read_policy`).
    """
    _check_days(days, "days")
    moment = to_utc(now) if now is not None else datetime.now(UTC)
    policy = read_policy(storage, trusted=True, public_key=public_key)
    floors = [f for f in (policy.floor_days, floor_days) if f is not None]
    floor = max(_check_days(f, "floor_days") for f in floors) if floors else None
    if floor is not None and days < floor and not (isinstance(override, str) and override.strip()):
        why = f" ({policy.floor_reason})" if policy.floor_reason else ""
        raise RetentionFloorError(
            f"{days} days is below this log's minimum retention of {floor} days{why}; keep "
            "at least that, or pass override='<reason>' to go below it (the override is "
            "recorded with every deletion)"
        )
    cutoff = days_before(moment, days)
    young = None if floor is None else days_before(moment, floor)
    rows = [
        _plan_partition(storage, day, cutoff, policy, count, young, override)
        for day in storage.days()
    ]
    return RetentionPlan(days, moment, cutoff, floor, override, tuple(rows))


def _plan_partition(
    storage: Storage,
    day: date,
    cutoff: datetime,
    policy: Policy,
    count: bool,
    floor_cutoff: datetime | None,
    override: str | None,
) -> PlannedPartition:
    segments = storage.segments(day)
    size = sum(s.size for s in segments)
    entries = count_segments(storage, segments) if count else None
    if day_end(day) >= cutoff:
        return PlannedPartition(day, entries, size, "keep", "within retention")
    held = holds_on(storage, day, policy.holds.values())
    if held:
        return PlannedPartition(day, entries, size, "keep", "under hold: " + ", ".join(held), held)
    until = storage.locked_until(day) if isinstance(storage, ObjectLocked) else None
    if until is not None:
        reason = f"locked by object lock until {format_timestamp(until)}"
        return PlannedPartition(day, entries, size, "keep", reason)
    if floor_cutoff is not None and day_end(day) >= floor_cutoff:
        reason = f"expired, within the minimum retention but overridden: {override}"
        return PlannedPartition(day, entries, size, "delete", reason)
    return PlannedPartition(day, entries, size, "delete", "expired")


def holds_on(storage: Storage, day: date, holds: Iterable[Hold]) -> tuple[str, ...]:
    """Return the names of the holds that cover some entry of ``day``."""
    candidates = [h for h in holds if h.may_cover(day)]
    held = [h.name for h in candidates if not h.by_content]
    by_content = [h for h in candidates if h.by_content]
    if by_content:
        found: set[str] = set()
        for entry in read_day(storage, day):
            found.update(h.name for h in by_content if h.name not in found and h.covers(entry))
            if len(found) == len(by_content):
                break
        held += [h.name for h in by_content if h.name in found]
    return tuple(sorted(held))


def delete_entry(
    storage: Storage,
    entry_id: str,
    *,
    reason: str,
    who: str | None = None,
    public_key: PublicKeyLike | None = None,
) -> bool:
    """Delete one entry on request unless a legal hold covers it; False if there is none.

    The holds trail is trusted only if it verifies, as retention requires; the deletion
    itself is the store's ``delete`` (see
    :meth:`~comply_lab.storage.base.StorageBase.delete_sync`).

    Raises:
        InvalidQueryError: no reason, or ``entry_id`` is not a string.
        EntryHeldError: an active hold covers the entry; nothing was deleted.
        RetentionError: the holds trail does not verify.
    """
    reason = _reason(reason, "a deletion")
    entry = cast(StorageBase, storage).read_sync(entry_id)
    if entry is None:
        return False
    policy = read_policy(storage, trusted=True, public_key=public_key)
    holds = [h.name for h in policy.holds.values() if h.covers(entry)]
    if holds:
        raise EntryHeldError(
            f"entry {entry_id} is under legal hold ({', '.join(sorted(holds))}): it cannot be "
            "deleted until the hold is released"
        )
    return cast(StorageBase, storage).delete_sync(entry_id, by=who, reason=reason)


def apply_retention(
    storage: Storage,
    plan: RetentionPlan,
    *,
    who: str | None = None,
    reason: str | None = None,
    public_key: PublicKeyLike | None = None,
) -> RetentionResult:
    """Delete exactly the partitions ``plan`` marks for deletion, recording each first.

    Holds and the floor are read again, from a trail that must verify: a partition put
    under hold since planning is kept, as is one now younger than a floor raised since
    (unless the plan overrides it). Each deletion record names the holds trail it relied
    on (its length and last record hash).

    Args:
        storage: The store the plan was made for.
        plan: From :func:`plan_retention` (or its DataFrame, via ``Log.apply_retention``).
        who: Who applies it; defaults to the operating-system user.
        reason: Why (a policy name or ticket); recorded with each deletion.
        public_key: Checks the signatures of the legal-hold trail.

    Raises:
        RetentionError: the legal-hold trail does not verify (see :func:`read_policy`).
        ConcurrentOperationError: another retention, compaction or key rotation is running.
    """
    with maintenance(storage, "retention"):
        return _apply(storage, plan, who, reason, public_key)


def _apply(
    storage: Storage,
    plan: RetentionPlan,
    who: str | None,
    reason: str | None,
    public_key: PublicKeyLike | None,
) -> RetentionResult:
    policy = read_policy(storage, trusted=True, public_key=public_key)
    holds_seen = list(trail_head(storage.read_metadata(HOLDS)))
    result = RetentionResult()
    floors = [f for f in (policy.floor_days, plan.floor_days) if f is not None]
    floor = max(floors) if floors else None
    for row in plan.to_delete:
        held = holds_on(storage, row.partition, policy.holds.values())
        if held:
            result.kept[row.partition] = "placed under hold after planning: " + ", ".join(held)
            continue
        young = floor is not None and day_end(row.partition) >= days_before(plan.now, floor)
        if young and not plan.override:
            result.kept[row.partition] = f"within the minimum retention of {floor} days"
            continue
        details = {
            "who": who or getpass.getuser(),
            "reason": reason,
            "policy": {
                "days": plan.days,
                "planned_at": format_timestamp(plan.now),
                "floor_days": plan.floor_days,
                "override": plan.override,
                "holds": holds_seen,
            },
        }
        deleted = storage.drop_day(row.partition, details)
        if deleted or not storage.segments(row.partition):
            result.partitions.append(row.partition)
            result.entries += deleted
        else:
            result.kept[row.partition] = "the store refused to delete its objects"
    return result


def retention_events(storage: Storage) -> list[dict[str, Any]]:
    """Return every deletion, hold, release and floor change, oldest first."""
    events: list[dict[str, Any]] = []
    for _, record in parse_records(storage.read_metadata(RETENTION)):
        if record is None:
            continue
        policy = record.get("policy") or {}
        events.append(
            {
                "at": record.get("deleted_at"),
                "who": record.get("who"),
                "action": "delete",
                "partition": record.get("date"),
                "entries": record.get("entries"),
                "name": None,
                "reason": record.get("reason"),
                "days": policy.get("days"),
                "override": policy.get("override"),
            }
        )
    for _, record in parse_records(storage.read_metadata(HOLDS)):
        if record is None:
            continue
        events.append(
            {
                "at": record.get("at"),
                "who": record.get("who"),
                "action": record.get("kind"),
                "partition": None,
                "entries": None,
                "name": record.get("name"),
                "reason": record.get("reason"),
                "days": record.get("days"),
                "override": None,
            }
        )
    return sorted(events, key=lambda e: str(e["at"]))
