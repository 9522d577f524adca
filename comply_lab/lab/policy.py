"""Retention for investigators: plans, holds and the trail of deletions as DataFrames.

A thin layer over `comply_lab.retention.policy`, which holds the
rules; see there for
what is kept, what is deleted, and what is recorded.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pandas as pd

from comply_lab.errors import InvalidQueryError
from comply_lab.retention.holds import read_policy
from comply_lab.retention.policy import RetentionPlan, retention_events
from comply_lab.storage.base import Storage

_HOLD_COLUMNS = ["name", "reason", "who", "at", "start", "end", "conversation_id", "metadata"]
_EVENT_COLUMNS = [
    "at",
    "who",
    "action",
    "partition",
    "entries",
    "name",
    "reason",
    "days",
    "override",
]


def plan_of(plan: RetentionPlan | pd.DataFrame) -> RetentionPlan:
    """Return the plan to apply: a `RetentionPlan`, or the rows left in its DataFrame.

    Rows removed from the DataFrame (or whose ``action`` was changed from ``"delete"``) are
    not deleted; a row cannot be added or turned into a deletion the plan did not make.

    Raises:
        InvalidQueryError: the DataFrame did not come from ``retention_plan``.
    """
    if isinstance(plan, RetentionPlan):
        return plan
    original = plan.attrs.get("plan") if isinstance(plan, pd.DataFrame) else None
    if not isinstance(original, RetentionPlan):
        raise InvalidQueryError(
            "pass the DataFrame returned by log.retention_plan() (its plan travels in "
            ".attrs) or the RetentionPlan itself"
        )
    assert isinstance(plan, pd.DataFrame)
    chosen = {
        d if isinstance(d, date) else pd.Timestamp(d).date()
        for d in plan.loc[plan["action"] == "delete", "partition"]
    }
    kept = tuple(
        p if p.partition in chosen or p.action != "delete" else replace(p, action="keep")
        for p in original.partitions
    )
    return replace(original, partitions=kept)


def holds_frame(storage: Storage) -> pd.DataFrame:
    """Return the active legal holds, one row each."""
    holds = read_policy(storage).holds.values()
    frame = pd.DataFrame([{c: getattr(h, c) for c in _HOLD_COLUMNS} for h in holds])
    frame = frame.reindex(columns=_HOLD_COLUMNS)
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame


def events_frame(storage: Storage) -> pd.DataFrame:
    """Return every deletion, hold, release and floor change, oldest first."""
    frame = pd.DataFrame(retention_events(storage), columns=_EVENT_COLUMNS)
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame.astype({"entries": "Int64", "days": "Int64"})
