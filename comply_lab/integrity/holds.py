"""Recorded deletions against the legal holds in force: no deletion may break a hold.

Each retention record names the state of the ``_holds`` trail it decided by (its length
and head, ``policy.holds``). Verification checks, from the signed trails alone:

- that state is a real prefix of the holds trail (else the record invented one);
- no hold in force in that state covered the deleted day by time;
- no heartbeat written before the retention record had seen a longer holds trail in
  which a hold covering the day was in force (a record naming an older state, to ignore
  a hold placed before it, or a hold placed while retention ran, which it then broke);
- no hold placed more than `CLOCK_MARGIN` before the deletion, by the time stamps, and
  not released by then, covered the day.

Deletions on request are checked the same way, without a claimed state: an entry's time
is its UUIDv7 id's, and the holds in force are those a heartbeat before the deletion had
seen and those placed well before it.

A hold by conversation or metadata cannot be checked this way (the deleted entries are
gone): retention itself reads the entries before deleting a day such a hold may cover.
Records written before retention recorded the holds state are not checked.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from comply_lab._time import day_end, day_start
from comply_lab.integrity.report import Problem
from comply_lab.integrity.trails import Trail
from comply_lab.model.entry import parse_time
from comply_lab.model.holds import Hold, active_holds
from comply_lab.model.ids import id_time
from comply_lab.storage.manifest import DELETIONS, HEARTBEAT, HOLDS, RETENTION

CLOCK_MARGIN = timedelta(minutes=15)
"""How far two operators' clocks may differ before a hold placed "before" a deletion, by
its time stamp, counts against a deletion that does not name it."""


def broken_holds(trails: dict[str, Trail]) -> list[Problem]:
    """Return a ``violated_hold`` finding for each recorded deletion a hold forbade.

    A retention record names the holds state it decided by (``policy.holds``: length and
    head of the holds trail). That state must be a real prefix of the trail, and no hold in
    force in it may cover the deleted day. A hold outside that state counts too, when a
    heartbeat written before the record had seen it in force, or when it was placed more
    than `CLOCK_MARGIN` before the deletion by the time stamps and not released by then.
    """
    holds, retention = trails[HOLDS], trails[RETENTION]
    by_hash = {r.get("record_hash"): r for r in holds.records}
    ordered = _upto(holds.hashes, by_hash, len(holds.hashes))
    seen = _seen_before(trails[HEARTBEAT].records)
    found = []
    for record in retention.records:
        day = _date(record.get("date"))
        if day is None:
            continue
        where = f"the retention record deleting {day}"
        state = (record.get("policy") or {}).get("holds")
        length = _length(state)
        if length is not None and not _is_prefix(holds.hashes, length, state):
            found.append(
                Problem(
                    "violated_hold",
                    f"{where} decided by a state of the legal-hold trail ({length} records) "
                    "that the trail never held",
                    day,
                    RETENTION,
                )
            )
            continue
        position = retention.hashes.index(record.get("record_hash"))
        known = min(max((h for r, h in seen if r <= position), default=0), len(holds.hashes))
        broken = {
            h.name: h
            for prefix in {length or 0, known}
            for h in _covering(active_holds(_upto(holds.hashes, by_hash, prefix)).values(), day)
        }
        deleted_at = _time(record.get("deleted_at"))
        if deleted_at is not None:
            unseen = ordered[length or 0 :]
            broken |= {h.name: h for h in _placed_unreleased(unseen, ordered, deleted_at, day)}
        for hold in broken.values():
            found.append(
                Problem(
                    "violated_hold",
                    f"{where}: legal hold {hold.name!r}, placed {hold.at}, covered that day "
                    "and was in force when it was deleted",
                    day,
                    RETENTION,
                )
            )
    return found + _held_deletions(trails, by_hash, ordered)


def _held_deletions(
    trails: dict[str, Trail], by_hash: dict[Any, dict[str, Any]], ordered: list[dict[str, Any]]
) -> list[Problem]:
    """Return ``violated_hold`` for each deletion on request of an entry a hold covered.

    The entry's time is its UUIDv7 id's (another id: the whole day must be held). The holds
    in force are those a heartbeat before the deletion had seen, and those placed well
    before it by their time stamps and not released by then.
    """
    deletions = trails[DELETIONS]
    seen = _seen_before(trails[HEARTBEAT].records, DELETIONS)
    found = []
    for record in deletions.records:
        day, entry_id = _date(record.get("date")), record.get("entry_id")
        deleted_at = _time(record.get("deleted_at"))
        if day is None or not isinstance(entry_id, str) or deleted_at is None:
            continue
        position = deletions.hashes.index(record.get("record_hash"))
        known = min(
            max((h for r, h in seen if r <= position), default=0), len(trails[HOLDS].hashes)
        )
        candidates = {
            h.name: h
            for h in [
                *_covering(active_holds(_upto(trails[HOLDS].hashes, by_hash, known)).values(), day),
                *_placed_unreleased(ordered, ordered, deleted_at, day),
            ]
        }
        when = id_time(entry_id)
        for hold in candidates.values():
            if _holds_time(hold, when, day):
                found.append(
                    Problem(
                        "violated_hold",
                        f"entry {entry_id} was deleted on request at {record.get('deleted_at')}, "
                        f"but legal hold {hold.name!r}, placed {hold.at}, covered it",
                        day,
                        DELETIONS,
                        entry_id,
                    )
                )
    return found


def _holds_time(hold: Hold, when: datetime | None, day: date) -> bool:
    """Whether ``hold`` covers an entry of ``day`` logged at ``when`` (None: unknown)."""
    lo, hi = (when, when) if when is not None else (day_start(day), day_end(day))
    return (hold.start is None or hold.start <= lo) and (hold.end is None or hi <= hold.end)


def _upto(
    hashes: list[str | None], by_hash: dict[Any, dict[str, Any]], prefix: int
) -> list[dict[str, Any]]:
    """Return the authentic records among the first ``prefix`` lines of a trail."""
    return [by_hash[h] for h in hashes[:prefix] if h in by_hash]


def _placed_unreleased(
    unseen: list[dict[str, Any]], every: list[dict[str, Any]], deleted_at: datetime, day: date
) -> list[Hold]:
    """Return the holds of ``unseen`` placed well before ``deleted_at`` that cover ``day``.

    Well before: by more than `CLOCK_MARGIN`, by the time stamps; a hold released (in
    ``every``) by ``deleted_at`` plus the margin is not counted.
    """
    released = {
        str(r.get("name"))
        for r in every
        if r.get("kind") == "release"
        and (at := _time(r.get("at"))) is not None
        and at <= deleted_at + CLOCK_MARGIN
    }
    placed = [
        r
        for r in unseen
        if r.get("kind") == "hold"
        and (at := _time(r.get("at"))) is not None
        and at < deleted_at - CLOCK_MARGIN
        and str(r.get("name")) not in released
    ]
    return _covering(active_holds(placed).values(), day)


def _time(value: object) -> datetime | None:
    return parse_time(value) if isinstance(value, str) else None


def _seen_before(beats: list[dict[str, Any]], trail: str = RETENTION) -> list[tuple[int, int]]:
    """Return, per heartbeat, (records of ``trail``, holds records) it had seen."""
    seen = []
    for beat in beats:
        heads = beat.get("trails") or {}
        kept, held = _length(heads.get(trail)), _length(heads.get(HOLDS))
        if kept is not None and held is not None:
            seen.append((kept, held))
    return seen


def _is_prefix(hashes: list[str | None], length: int, state: Any) -> bool:
    """Whether ``state`` ``[length, head]`` names the first ``length`` records of a trail."""
    head = state[1] if len(state) > 1 else None
    return length <= len(hashes) and (hashes[length - 1] if length else None) == head


def _length(head: object) -> int | None:
    """Return the length of a trail head ``[length, hash]``, None if it is not one."""
    if isinstance(head, list) and head and isinstance(head[0], int):
        return head[0]
    return None


def _covering(holds: Any, day: date) -> list[Hold]:
    return [h for h in holds if not h.by_content and h.may_cover(day)]


def _date(value: object) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
