"""What checking one day yields: events the verifier replays in day order.

Verification walks the days in order, and each writer's hash chain runs across them, so the
chain can only be followed in that order. Everything else a day needs — reading its segments,
hashing them, decoding and checking entries — is independent of other days. A day's check
([`comply_lab.integrity.days.check_day`][comply_lab.integrity.days.check_day]) returns its
findings as *events*, in the order they arose: problems, the chain observations to feed the
tracker, and findings that hold only if nothing else was found since a mark. Replaying the
events of the days in day order ([`replay`][comply_lab.integrity.events.replay]) gives exactly
the report a single pass gives, so days can be checked in parallel (one task each) and replayed
serially.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import NamedTuple

from comply_lab.integrity.chains import ChainTracker, Place, Run
from comply_lab.integrity.report import Problem


class See(NamedTuple):
    """Event: feed one entry's chain fields to the tracker."""

    writer: str
    seq: int
    prev_hash: str | None
    digest: str | None
    entry_id: str | None
    partition: date | None
    segment: str | None
    moment: datetime | None


class Span(NamedTuple):
    """Event: a writer's entries ``first..last`` of one segment, linked (checked column-wise)."""

    writer: str
    first: int
    first_prev: str | None
    first_time: datetime | None
    last: int
    last_hash: str | None
    last_time: datetime | None
    entry_id: str | None
    partition: date | None
    segment: str | None

    def run(self) -> Run:
        """Return the span as the tracker's run."""
        place = Place(self.entry_id, self.partition, self.segment)
        return Run(
            self.first,
            self.last,
            self.first_prev,
            self.last_hash,
            self.first_time,
            self.last_time,
            place,
        )


class IfClean(NamedTuple):
    """Event: report ``problem`` only if no error was found since the last mark.

    Findings of other severities (a shredded entry, a warning) explain nothing about why
    a segment's bytes changed, so they do not stand in for it.
    """

    problem: Problem


class Mark(NamedTuple):
    """Event: remember where the findings stand, for a later `IfClean`."""


MARK = Mark()
Event = Problem | See | Span | IfClean | Mark


@dataclass
class DayResult:
    """What checking one day found.

    Attributes:
        events: Events to replay, in order.
        entries: Entries checked.
        segments: Segments checked.
        names: The segments the day's listing showed (readers read exactly these).
        sealed: How many of them are sealed.
    """

    events: list[Event] = field(default_factory=list)
    entries: int = 0
    segments: int = 0
    names: set[str] = field(default_factory=set)
    sealed: int = 0


def replay(result: DayResult, tracker: ChainTracker, problems: list[Problem]) -> None:
    """Apply one day's events, in order, to the chain tracker and the findings."""
    mark = len(problems)
    for event in result.events:
        if isinstance(event, Problem):
            problems.append(event)
        elif isinstance(event, See):
            problems.extend(tracker.see(*event))
        elif isinstance(event, Span):
            problems.extend(tracker.run(event.writer, event.run()))
        elif isinstance(event, Mark):
            mark = len(problems)
        elif not any(p.severity == "error" for p in problems[mark:]):
            problems.append(event.problem)
