"""Legal holds as the ``_holds`` trail records them: what each covers, and which are active.

Placing, releasing and enforcing holds is `comply_lab.retention.holds`'s; this module is
the record's meaning, shared with verification, which checks that recorded retention
never deleted a day an active hold covered.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from comply_lab._time import day_end, day_start, to_utc
from comply_lab.model.entry import AuditEntry


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


def hold_of(record: dict[str, Any]) -> Hold:
    """Return the hold a ``"hold"`` record of the ``_holds`` trail places."""
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


def active_holds(records: Iterable[dict[str, Any]]) -> dict[str, Hold]:
    """Return the holds in force after ``records`` (holds and releases, in trail order)."""
    holds: dict[str, Hold] = {}
    for record in records:
        kind = record.get("kind")
        if kind == "hold" and isinstance(record.get("name"), str):
            holds[str(record["name"])] = hold_of(record)
        elif kind == "release":
            holds.pop(str(record.get("name")), None)
    return holds
