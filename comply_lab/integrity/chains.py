"""Following every writer's hash chain through the log, by sequence number.

A writer's entries are checked by their sequence numbers, not by where they are stored:
an honest clock that steps back across midnight sends a writer's next entry to an earlier
day's segment, and one that jumps to a far-off date and back sends some to a far-off
partition. Entries are fed in stored order; consecutive seqs that link (each
``prev_hash`` the ``entry_hash`` before it) are kept as *runs*, and runs merge as the
entries between them arrive, so memory follows the number of runs, not of entries. At
the end the runs of each writer must make one chain from seq 0 — or from right after
entries recorded retention deleted.

Only one order is required: within one segment a writer's seqs increase, since a writer
appends to its segment in order; going back there is ``reordered``. A timestamp earlier
than the previous seq's is a ``clock_step`` (information).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from comply_lab.integrity.report import Problem, Status
from comply_lab.model.entry import GENESIS_HASH

Expired = tuple[int, int, str | None]
"""Seqs ``first..last`` of one writer deleted by recorded retention, and the last one's hash."""
Ghost = tuple[str | None, str | None]
"""The ``prev_hash`` and ``entry_hash`` a deletion record gives an entry deleted on request."""


@dataclass(slots=True)
class Place:
    """Where an entry is stored, and which, for findings about it."""

    entry_id: str | None
    partition: date | None
    segment: str | None


@dataclass(slots=True)
class Run:
    """Entries ``first..last`` of one writer, each linked to the one before."""

    first: int
    last: int
    first_prev: str | None
    last_hash: str | None
    first_time: datetime | None
    last_time: datetime | None
    place: Place


class ChainTracker:
    """Checks that each writer's entries form one unbroken chain, seq 0, 1, 2, ...

    Args:
        open_start: Accept chains that start after seq 0 (a time-limited verification).
        expired: Per writer, the ranges recorded retention deleted: gaps they explain are
            not reported (the deleted segments are reported as ``expired_by_policy``
            instead). A chain that starts after seq 0 must start right after such
            ranges, continuing from the hash of the last deleted entry where it is known.
        deleted: Per writer, the entries deleted on request, by seq: a gap they fill
            exactly (each links to the one before, the entry after links to the last)
            is not reported; one they fill but do not link is ``modified``.
    """

    def __init__(
        self,
        *,
        open_start: bool,
        expired: dict[str, list[Expired]] | None = None,
        deleted: dict[str, dict[int, Ghost]] | None = None,
    ) -> None:
        self.open_start = open_start
        self.expired = expired or {}
        self.deleted = deleted or {}
        self._runs: dict[str, list[Run]] = {}
        self._firsts: dict[str, list[int]] = {}
        self._in_segment: dict[tuple[str, str | None], int] = {}

    def see(
        self,
        writer: str,
        seq: int,
        prev_hash: str | None,
        digest: str | None,
        entry_id: str | None,
        partition: date | None,
        segment: str | None,
        moment: datetime | None = None,
    ) -> list[Problem]:
        """Take one entry of ``writer``; return the problems it reveals now."""
        place = Place(entry_id, partition, segment)
        return self.run(writer, Run(seq, seq, prev_hash, digest, moment, moment, place))

    def run(self, writer: str, new: Run) -> list[Problem]:
        """Take a run of ``writer``'s entries already checked to link among themselves."""
        problems: list[Problem] = []
        key = (writer, new.place.segment)
        before = self._in_segment.get(key)
        if before is not None and new.first <= before:
            problems.append(
                _problem(
                    "reordered",
                    f"seq {new.first} is stored after seq {before} of the same writer in "
                    "the same segment",
                    writer,
                    new.first,
                    new.place,
                )
            )
        self._in_segment[key] = max(new.last, before if before is not None else new.last)
        runs = self._runs.setdefault(writer, [])
        firsts = self._firsts.setdefault(writer, [])
        at = bisect.bisect_right(firsts, new.first)
        left = runs[at - 1] if at else None
        right = runs[at] if at < len(runs) else None
        if (left is not None and left.last >= new.first) or (
            right is not None and right.first <= new.last
        ):
            held = left if left is not None and left.last >= new.first else right
            assert held is not None
            return [*problems, _duplicate(writer, new, held)]
        if left is not None and left.last == new.first - 1:
            problems += _link(writer, left, new)
            left.last, left.last_hash, left.last_time = new.last, new.last_hash, new.last_time
            new, at = left, at - 1
        else:
            runs.insert(at, new)
            firsts.insert(at, new.first)
        if right is not None and right.first == new.last + 1:
            problems += _link(writer, new, right)
            new.last, new.last_hash, new.last_time = right.last, right.last_hash, right.last_time
            del runs[at + 1]
            del firsts[at + 1]
        return problems

    def finish(self) -> list[Problem]:
        """Report where the chains start wrong, and the gaps no entry filled."""
        problems: list[Problem] = []
        for writer, runs in self._runs.items():
            expected = runs[0].first if self.open_start else 0
            before: Run | None = None
            for run in runs:
                if run.first > expected:
                    problems += self._gap(writer, expected, run, before)
                elif run.first == 0 and run.first_prev != GENESIS_HASH:
                    problems.append(
                        _problem(
                            "modified",
                            "the chain's first entry does not start from genesis",
                            writer,
                            0,
                            run.place,
                        )
                    )
                expected = run.last + 1
                before = run
        return problems

    def _gap(self, writer: str, first: int, run: Run, before: Run | None) -> list[Problem]:
        """Check the seqs ``first..run.first - 1`` that no entry holds."""
        ghosts = self.deleted.get(writer, {})
        filled = run.first - first <= len(ghosts)  # a damaged seq can be astronomically large
        if filled and all(seq in ghosts for seq in range(first, run.first)):
            start = GENESIS_HASH if first == 0 else before.last_hash if before else None
            return _ghost_links(writer, first, run, ghosts, start)
        missing = self._unexplained(writer, first, run.first - 1)
        if missing:
            low, high = missing[0][0], missing[-1][1]
            span = f"entry {low}" if low == high else f"entries {low}..{high}"
            if first == 0:
                text = (
                    f"the chain starts at seq {run.first}: {span} of this writer are not in "
                    "the log, and no retention record says they were deleted"
                )
            else:
                text = f"{span} of this writer are not in the log"
            return [_problem("missing", text, writer, low, run.place)]
        last = [h for _, b, h in self.expired.get(writer, ()) if b == run.first - 1 and h]
        if last and run.first_prev not in last:
            return [
                _problem(
                    "modified",
                    f"the chain resumes at seq {run.first} after entries deleted by retention, "
                    "but its prev_hash is not the hash of the last deleted entry",
                    writer,
                    run.first,
                    run.place,
                )
            ]
        return []

    def _unexplained(self, writer: str, first: int, last: int) -> list[tuple[int, int]]:
        """Return the intervals of ``[first, last]`` that no expired range covers.

        Computed on intervals, never seq by seq: a damaged seq can be astronomically large.
        """
        gaps = []
        at = first
        ghosts = [(seq, seq, None) for seq in self.deleted.get(writer, ())]
        for a, b, _ in sorted([*self.expired.get(writer, ()), *ghosts]):
            if b < at or a > last:
                continue
            if a > at:
                gaps.append((at, a - 1))
            at = max(at, b + 1)
            if at > last:
                return gaps
        if at <= last:
            gaps.append((at, last))
        return gaps


def _ghost_links(
    writer: str, first: int, run: Run, ghosts: dict[int, Ghost], start: str | None
) -> list[Problem]:
    """Check that entries deleted on request ``first..run.first - 1`` link the chain.

    ``start`` is the hash the first must continue (None: unknown, not checked).
    """
    previous = start
    for seq in range(first, run.first):
        prev_hash, digest = ghosts[seq]
        if previous is not None and prev_hash != previous:
            return [_unlinked(writer, seq, run)]
        previous = digest
    if run.first_prev != previous:
        return [_unlinked(writer, run.first, run)]
    return []


def _unlinked(writer: str, seq: int, run: Run) -> Problem:
    return _problem(
        "modified",
        f"the chain does not link across the entries deleted on request before seq "
        f"{run.first} (at seq {seq}): the deletion records do not describe the entries "
        "that were there",
        writer,
        seq,
        run.place,
    )


def _problem(status: Status, text: str, writer: str, seq: int, place: Place) -> Problem:
    return Problem(status, text, place.partition, place.segment, place.entry_id, writer, seq)


def _link(writer: str, earlier: Run, later: Run) -> list[Problem]:
    """Check that ``later`` continues ``earlier`` (whose last seq precedes its first)."""
    problems = []
    if later.first_prev != earlier.last_hash:
        problems.append(
            _problem(
                "modified",
                f"prev_hash does not match the entry_hash of seq {earlier.last}: the chain is "
                "broken here (an entry was changed, replaced or forged)",
                writer,
                later.first,
                later.place,
            )
        )
    before, after = earlier.last_time, later.first_time
    if before is not None and after is not None and after < before:
        problems.append(
            _problem(
                "clock_step",
                f"the writer's clock stepped back {_span(before - after)} between seq "
                f"{earlier.last} ({before:%Y-%m-%d %H:%M:%S}) and seq {later.first} "
                f"({after:%Y-%m-%d %H:%M:%S} UTC): its entries are checked by sequence "
                "number, so this is information, not tampering",
                writer,
                later.first,
                later.place,
            )
        )
    return problems


def _duplicate(writer: str, new: Run, held: Run) -> Problem:
    if new.first == new.last == held.last and new.last_hash == held.last_hash:
        text = f"a second copy of seq {new.first} of this writer"
    elif new.first == new.last:
        text = f"another entry already holds seq {new.first} of this writer (forged or duplicated)"
    else:
        text = (
            f"seqs {new.first}..{new.last} of this writer are held by other entries already "
            "(a copied or forged segment)"
        )
    return _problem("inserted", text, writer, new.first, new.place)


def _span(delta: Any) -> str:
    seconds = delta.total_seconds()
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.3f} seconds"


def group_starts(writers: pa.ChunkedArray) -> list[int]:
    """Return the row of each run of equal writer ids (the column is sorted)."""
    if len(writers) < 2:
        return [0]
    changes = pc.not_equal(writers.slice(1), writers.slice(0, len(writers) - 1))
    return [0, *(i + 1 for i in pc.indices_nonzero(changes).to_pylist())]


def links_hold(table: pa.Table, starts: list[int]) -> bool:
    """Check, column-wise, that every row continues the previous row of its writer.

    Each must have the next seq, link to its hash and carry a timestamp no earlier; a
    segment where any does not is then walked entry by entry.
    """
    n = table.num_rows
    if n < 2:
        return True
    seq, prev, digest, stamps = (
        table.column(c) for c in ("seq", "prev_hash", "entry_hash", "timestamp")
    )
    step = pc.equal(pc.subtract(seq.slice(1), seq.slice(0, n - 1)), 1)
    linked = pc.equal(prev.slice(1), digest.slice(0, n - 1))
    onward = pc.greater_equal(stamps.slice(1), stamps.slice(0, n - 1))
    good = pc.fill_null(pc.and_(pc.and_(step, linked), onward), False)
    # Rows that start a writer's run are checked by the tracker instead.
    mask = [True] * (n - 1)
    for start in starts[1:]:
        mask[start - 1] = False
    within = pc.filter(good, pa.array(mask))
    return bool(pc.all(within).as_py()) if len(within) else True


def expired_ranges(
    retention: list[dict[str, Any]], by_segment: dict[str, dict[str, Any]]
) -> dict[str, list[Expired]]:
    """Return, per writer, the ranges that recorded retention deleted.

    Sealed segments' ranges come from their manifest records; unsealed ones are in the
    retention record itself (``{"first_seq", "last_seq", "last_hash"}``, or a
    ``[first, last]`` pair in records of earlier versions).
    """
    ranges: dict[str, list[Expired]] = {}

    def add(writer: object, span: object) -> None:
        if isinstance(span, list) and len(span) == 2:
            span = {"first_seq": span[0], "last_seq": span[1]}
        if not isinstance(writer, str) or not isinstance(span, dict):
            return
        first, last, digest = span.get("first_seq"), span.get("last_seq"), span.get("last_hash")
        if isinstance(first, int) and isinstance(last, int):
            ranges.setdefault(writer, []).append(
                (first, last, digest if isinstance(digest, str) else None)
            )

    for record in retention:
        for name in record.get("segments") or []:
            for writer, chain in ((by_segment.get(name) or {}).get("writers") or {}).items():
                add(writer, chain)
        for writer, span in (record.get("writers") or {}).items():
            add(writer, span)
    return ranges
