"""Freshness: a log that promises heartbeats must have a signed record that recent.

The promise comes from the log's genesis (``heartbeat_s``), from manifest records (each
records the cadence of the store that sealed it) and from the heartbeats themselves
(``every``). A log whose newest record is older than the cadence plus `GRACE` is
``stale``, unless its newest heartbeat is a final one (a writer closed cleanly; a
process killed before its close beats no more, so this cannot ask that every writer
that ever beat closed): its writers stopped without closing, or its newest records were
cut away. The newest heartbeat's cadence counts (writers may beat at other cadences than
the first did); one promising none, or more than `LONGEST`, leaves the genesis's.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TypeGuard

from comply_lab._time import TimeLike, to_utc, utc_now
from comply_lab.integrity.report import Problem
from comply_lab.integrity.trails import Trail
from comply_lab.model.entry import parse_time
from comply_lab.storage.manifest import HEARTBEAT, MANIFEST

GRACE = timedelta(minutes=15)
"""How late a promised heartbeat may be before the log is reported stale."""
LONGEST = timedelta(days=366)
"""The longest cadence counted; a record promising a longer one (or none) promises nothing."""
_TIMES = ("at", "sealed_at", "deleted_at", "rotated_at", "registered", "created")


def stale(
    trails: dict[str, Trail], as_of: TimeLike | None, genesis_cadence: float | None = None
) -> list[Problem]:
    """Report a log that promised heartbeats but has no record as recent as promised.

    Args:
        trails: Every trail, checked (their ``records`` are the authentic ones).
        as_of: The time to judge at (default: now).
        genesis_cadence: The cadence the log's authentic genesis promises.
    """
    found = []
    if not _seconds(genesis_cadence):
        genesis_cadence = None
    beats = trails[HEARTBEAT].records
    promised = [
        r["heartbeat_s"] for r in trails[MANIFEST].records if _seconds(r.get("heartbeat_s"))
    ]
    if genesis_cadence is not None:
        promised.insert(0, genesis_cadence)
    if promised and not beats:
        found.append(
            Problem(
                "missing",
                "the log promises heartbeats (its genesis or manifest records), but the "
                "heartbeat trail is gone",
                segment=HEARTBEAT,
            )
        )
    every = beats[-1].get("every") if beats else (promised[-1] if promised else None)
    if not _seconds(every):
        every = genesis_cadence  # a beat promising nothing does not undo the genesis
    if every is None:
        return found  # no cadence promised
    if beats and beats[-1].get("final") is True:
        return found  # the writers stopped cleanly
    times = [
        moment
        for trail in trails.values()
        for record in trail.records
        for field in _TIMES
        if isinstance(record.get(field), str) and (moment := parse_time(record[field]))
    ]
    if not times:
        return found
    newest = max(times)
    now = utc_now() if as_of is None else to_utc(as_of, name="as_of")
    limit = timedelta(seconds=float(every)) + GRACE
    if now - newest > limit:
        found.append(
            Problem(
                "stale",
                f"the newest record is from {newest:%Y-%m-%d %H:%M} UTC, "
                f"{_age(now - newest)} before {now:%Y-%m-%d %H:%M} UTC, but the log promises "
                f"a heartbeat every {_age(timedelta(seconds=float(every)))}: its writers "
                "stopped without closing, or its newest records were removed (verify a "
                "copy of a log with as_of= / --as-of the time it was copied)",
                segment=HEARTBEAT,
            )
        )
    return found


def _seconds(value: object) -> TypeGuard[int | float]:
    """Whether ``value`` is a usable cadence: a positive number of seconds, at most `LONGEST`."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and 0 < value <= LONGEST.total_seconds()
    )


def _age(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 60:.0f} minutes"
