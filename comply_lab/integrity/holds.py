"""Recorded retention against the legal holds in force: no deletion may break a hold.

Each retention record names the state of the ``_holds`` trail it decided by (its length
and head, ``policy.holds``). Verification checks, from the signed trails alone:

- that state is a real prefix of the holds trail (else the record invented one);
- no hold in force in that state covered the deleted day by time;
- no heartbeat written before the retention record had seen a longer holds trail in
  which a hold covering the day was in force (a record naming an older state, to ignore
  a hold placed before it, or a hold placed while retention ran, which it then broke).

A hold by conversation or metadata cannot be checked this way (the deleted entries are
gone): retention itself reads the entries before deleting a day such a hold may cover.
Records written before retention recorded the holds state are not checked.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from comply_lab.integrity.report import Problem
from comply_lab.integrity.trails import Trail
from comply_lab.model.entry import parse_time
from comply_lab.model.holds import Hold, active_holds
from comply_lab.storage.manifest import HEARTBEAT, HOLDS, RETENTION


def broken_holds(trails: dict[str, Trail]) -> list[Problem]:
    """Return a ``violated_hold`` finding for each recorded deletion a hold forbade."""
    holds, retention = trails[HOLDS], trails[RETENTION]
    by_hash = {r.get("record_hash"): r for r in holds.records}
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
        known = max((h for r, h in seen if r <= position), default=0)
        placed = _placed_before(holds.hashes, by_hash, _time(record.get("deleted_at")))
        broken: dict[str, Hold] = {}
        for prefix in {length or 0, min(known, len(holds.hashes)), placed}:
            records = [by_hash[h] for h in holds.hashes[:prefix] if h in by_hash]
            broken.update((h.name, h) for h in _covering(active_holds(records).values(), day))
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
    return found


def _placed_before(
    hashes: list[str | None], by_hash: dict[Any, dict[str, Any]], when: datetime | None
) -> int:
    """Return how many holds records lead up to the last one placed at or before ``when``."""
    if when is None:
        return 0
    placed = 0
    for number, digest in enumerate(hashes, 1):
        at = _time(by_hash.get(digest, {}).get("at"))
        if at is not None and at <= when:
            placed = number
    return placed


def _time(value: object) -> datetime | None:
    return parse_time(value) if isinstance(value, str) else None


def _seen_before(beats: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """Return, per heartbeat, (retention records, holds records) it had seen."""
    seen = []
    for beat in beats:
        heads = beat.get("trails") or {}
        kept, held = _length(heads.get(RETENTION)), _length(heads.get(HOLDS))
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
