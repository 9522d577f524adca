"""What verification makes of entries deleted on request (see `comply_lab.storage.deletions`).

Only authentic deletion records count (checked like every trail, signatures included):

- each is reported ``deleted_on_request`` (information), with who asked, why and when;
- the chain position it records stands in for the entry once its bytes are gone, so the
  writer's chain is checked across it, link by link (`ChainTracker`); a forged or unsigned
  record explains nothing, and the gap is ``missing``;
- a manifest record that replaces a sealed part by one without some of its rows
  (``pruned_from``) is accepted only if every row it removes has such a record.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from comply_lab.integrity.chains import Ghost
from comply_lab.integrity.report import Problem
from comply_lab.storage.manifest import DELETIONS

_SAME_PART = ("segment", "source", "date")


def ghosts(records: list[dict[str, Any]]) -> dict[str, dict[int, Ghost]]:
    """Return, per writer, the chain position each deleted entry had, by seq."""
    found: dict[str, dict[int, Ghost]] = {}
    for record in records:
        writer, seq = record.get("writer_id"), record.get("seq")
        if isinstance(writer, str) and isinstance(seq, int) and not isinstance(seq, bool):
            found.setdefault(writer, {})[seq] = (record.get("prev_hash"), record.get("entry_hash"))
    return found


def deletion_findings(records: list[dict[str, Any]], days: set[date] | None) -> list[Problem]:
    """Report each deletion of an entry logged on one of ``days`` (None: every day)."""
    problems = []
    for record in records:
        day = _day(record)
        if days is not None and day not in days:
            continue
        who = f" by {record['by']}" if isinstance(record.get("by"), str) else ""
        why = f" ({record['reason']})" if isinstance(record.get("reason"), str) else ""
        problems.append(
            Problem(
                "deleted_on_request",
                f"deleted on request{who}{why} at {record.get('deleted_at')}: the recorded "
                "deletion stands in for the entry in its writer's chain",
                day,
                DELETIONS,
                record.get("entry_id"),
                record.get("writer_id"),
                record.get("seq"),
            )
        )
    return problems


def pruning_of(record: dict[str, Any], previous: dict[str, Any], deleted: set[str]) -> bool:
    """Whether ``record`` is a generation of ``previous``'s part without deleted rows only."""
    removed = record.get("removed")
    if record.get("pruned_from") != previous.get("sha256") or not isinstance(removed, list):
        return False
    if not all(record.get(k) == previous.get(k) for k in _SAME_PART):
        return False
    return all(isinstance(row, list) and len(row) == 3 and row[1] in deleted for row in removed)


def _day(record: dict[str, Any]) -> date | None:
    try:
        return date.fromisoformat(str(record.get("date")))
    except ValueError:
        return None
