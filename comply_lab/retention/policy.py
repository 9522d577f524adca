"""Retention: plans, legal holds, a minimum-retention floor, and an audited trail.

Retention deletes whole UTC day partitions, never rewrites a file, and never deletes what
it was not shown first:

1. `plan_retention` lists every partition with what
would happen to it and why —
   ``expired`` (delete), ``within retention``, ``under hold: <names>``, ``locked by
   object lock until ...`` (S3) — without changing anything;
2. [`apply_retention`][comply_lab.retention.policy.apply_retention] deletes exactly the
   partitions
the plan marks for deletion,
   after checking holds and the floor again (a hold placed after planning still wins),
   and each deletion first appends a retention record (who, when, which policy) to
   ``_retention``, so verification reports the partition as ``expired_by_policy``.

Legal holds ([`place_hold`][comply_lab.retention.holds.place_hold],
[`release_hold`][comply_lab.retention.holds.release_hold]) and the minimum-retention floor
([`set_floor`][comply_lab.retention.holds.set_floor]) are records of the log's chained
``_holds`` trail — signed when the store has a signing key — so every process that applies
retention sees them, and an auditor can list who held, released or deleted what, and when. A
hold covers the entries matching all of its criteria (a time range, a conversation, metadata
values; none means the whole log); a partition holding any such entry is kept.

The floor (for example 183 days, the EU AI Act's six months for deployers' logs) makes
any plan with fewer retention days fail unless it carries an explicit ``override``
reason, which is recorded with each deletion it causes.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

from comply_lab._time import TimeLike, day_end, days_before, to_utc, utc_now
from comply_lab.crypto.signing import PublicKeyLike
from comply_lab.errors import (
    RetentionFloorError,
)
from comply_lab.model.entry import format_timestamp
from comply_lab.model.holds import Hold
from comply_lab.retention.holds import Policy, check_days, read_policy
from comply_lab.storage.base import Storage
from comply_lab.storage.capabilities import ObjectLocked, maintenance
from comply_lab.storage.decode import count_segments, read_day
from comply_lab.storage.manifest import HOLDS, RETENTION, parse_records, trail_head
from comply_lab.storage.signers import check_may_sign

if TYPE_CHECKING:
    import pandas as pd

Action = Literal["delete", "keep"]


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
    """What retention would delete, made by `plan_retention`; nothing is changed.

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
    """What [`apply_retention`][comply_lab.retention.policy.apply_retention] did.

    Attributes:
        partitions: The partitions deleted.
        entries: How many entries they held.
        kept: Partitions the plan would have deleted but that were kept, with the reason
            (a hold placed after planning, objects S3 refused to delete).
    """

    partitions: list[date] = field(default_factory=list)
    entries: int = 0
    kept: dict[date, str] = field(default_factory=dict)


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
        RetentionError: the legal-hold trail does not verify (see
            [`read_policy`][comply_lab.retention.holds.read_policy]).
        SigningKeyRequiredError: the store signs with an operator key its pinned root did
            not certify for retention.
    """
    check_days(days, "days")
    moment = to_utc(now) if now is not None else utc_now()
    policy = read_policy(storage, trusted=True, public_key=public_key)
    floors = [f for f in (policy.floor_days, floor_days) if f is not None]
    floor = max(check_days(f, "floor_days") for f in floors) if floors else None
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
        plan: From `plan_retention` (or its DataFrame,
            via ``Log.apply_retention``).
        who: Who applies it; defaults to the operating-system user.
        reason: Why (a policy name or ticket); recorded with each deletion.
        public_key: Checks the signatures of the legal-hold trail.

    Raises:
        RetentionError: the legal-hold trail does not verify (see
            [`read_policy`][comply_lab.retention.holds.read_policy]).
        SigningKeyRequiredError: the store signs with an operator key its pinned root did
            not certify for retention.
        ConcurrentOperationError: another retention, compaction or key rotation is running.
    """
    check_may_sign(storage, RETENTION, root=public_key)
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
