"""Following every writer's hash chain through the log, in constant memory per writer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from comply_lab.audit.entry import GENESIS_HASH
from comply_lab.integrity.report import Problem, Status

_MAX_PENDING = 10_000  # gaps wider than this are reported at once instead of awaited
Expired = tuple[int, int, str | None]
"""Seqs ``first..last`` of one writer deleted by recorded retention, and the last one's hash."""


class ChainTracker:
    """Checks that each writer's entries form one unbroken chain, seq 0, 1, 2, ...

    Entries are fed in stored order. A gap is held open until the end, so an entry that
    turns up later is classified as *reordered* rather than *missing*.

    Args:
        open_start: Accept chains that start after seq 0 (a time-limited verification).
        expired: Per writer, the ranges recorded retention deleted: gaps they explain are
            not reported (the deleted segments are reported as ``expired_by_policy``
            instead). A chain that starts after seq 0 must start right after such
            ranges, continuing from the hash of the last deleted entry where it is known.
    """

    def __init__(
        self, *, open_start: bool, expired: dict[str, list[Expired]] | None = None
    ) -> None:
        self.open_start = open_start
        self.expired = expired or {}
        self._last: dict[str, tuple[int, str | None]] = {}
        self._pending: dict[str, set[int]] = {}

    def see(
        self,
        writer: str,
        seq: int,
        prev_hash: str | None,
        digest: str | None,
        entry_id: str | None,
        partition: date | None,
        segment: str | None,
    ) -> list[Problem]:
        """Take the next entry of ``writer``; return the problems it reveals."""

        def problem(status: Status, text: str) -> Problem:
            return Problem(status, text, partition, segment, entry_id, writer, seq)

        last = self._last.get(writer)
        if last is None:
            self._last[writer] = (seq, digest)
            return [] if self.open_start else self._start(writer, seq, prev_hash, problem)
        last_seq, last_hash = last
        if seq == last_seq + 1:
            self._last[writer] = (seq, digest)
            if prev_hash != last_hash:
                return [
                    problem(
                        "modified",
                        f"prev_hash does not match the entry_hash of seq "
                        f"{last_seq}: the chain is broken here (an entry was "
                        "changed, replaced or forged)",
                    )
                ]
            return []
        if seq > last_seq + 1:
            self._last[writer] = (seq, digest)
            gap = self._unexplained(writer, last_seq + 1, seq - 1)
            if len(gap) > _MAX_PENDING:
                return [
                    problem(
                        "missing",
                        f"{len(gap)} entries between seq {last_seq} and {seq} of this writer "
                        "are not in the log",
                    )
                ]
            self._pending.setdefault(writer, set()).update(gap)
            return []
        pending = self._pending.get(writer)
        if pending is not None and seq in pending:
            pending.discard(seq)
            return [
                problem("reordered", f"seq {seq} is stored after seq {last_seq} of the same writer")
            ]
        if seq == last_seq and digest == last_hash:
            return [problem("inserted", f"a second copy of seq {seq} of this writer")]
        return [
            problem(
                "inserted",
                f"another entry already holds seq {seq} of this writer (forged or duplicated)",
            )
        ]

    def _start(
        self,
        writer: str,
        seq: int,
        prev_hash: str | None,
        problem: Callable[[Status, str], Problem],
    ) -> list[Problem]:
        """Check where a writer's chain starts: at seq 0, or right after deleted entries."""
        if seq == 0:
            if prev_hash == GENESIS_HASH:
                return []
            return [problem("modified", "the chain's first entry does not start from genesis")]
        gap = self._unexplained(writer, 0, seq - 1)
        if gap:
            first, last = min(gap), max(gap)
            span = f"entry {first}" if first == last else f"entries {first}..{last}"
            return [
                problem(
                    "missing",
                    f"the chain starts at seq {seq}: {span} of this writer are not in the log, "
                    "and no retention record says they were deleted",
                )
            ]
        before = [h for _, b, h in self.expired.get(writer, ()) if b == seq - 1 and h]
        if before and prev_hash not in before:
            return [
                problem(
                    "modified",
                    f"the chain resumes at seq {seq} after entries deleted by retention, but "
                    "its prev_hash is not the hash of the last deleted entry",
                )
            ]
        return []

    def _unexplained(self, writer: str, first: int, last: int) -> set[int] | range:
        """Return the seqs in ``[first, last]`` that no expired range covers."""
        spans = [(a, b) for a, b, _ in self.expired.get(writer, ()) if a <= last and b >= first]
        if not spans:
            return range(first, last + 1)
        missing = set(range(first, last + 1))
        for a, b in spans:
            missing.difference_update(range(max(a, first), min(b, last) + 1))
        return missing

    def advance(self, writer: str, seq: int, digest: str | None) -> None:
        """Move ``writer`` to ``seq`` after its entries up to there were checked elsewhere."""
        self._last[writer] = (seq, digest)

    def finish(self) -> list[Problem]:
        """Report the gaps no later entry filled as missing entries."""
        problems = []
        for writer, pending in self._pending.items():
            for start, stop in _runs(sorted(pending)):
                span = f"seq {start}" if start == stop else f"seqs {start}..{stop}"
                problems.append(
                    Problem(
                        "missing",
                        f"{span} of this writer not found in the log",
                        writer_id=writer,
                        seq=start,
                    )
                )
        return problems


def _runs(values: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for value in values:
        if runs and value == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


def group_starts(writers: pa.ChunkedArray) -> list[int]:
    """Return the row of each run of equal writer ids (the column is sorted)."""
    if len(writers) < 2:
        return [0]
    changes = pc.not_equal(writers.slice(1), writers.slice(0, len(writers) - 1))
    return [0, *(i + 1 for i in pc.indices_nonzero(changes).to_pylist())]


def links_hold(table: pa.Table, starts: list[int]) -> bool:
    """Check, column-wise, that every row continues the previous row of its writer."""
    n = table.num_rows
    if n < 2:
        return True
    seq, prev, digest = (table.column(c) for c in ("seq", "prev_hash", "entry_hash"))
    step = pc.equal(pc.subtract(seq.slice(1), seq.slice(0, n - 1)), 1)
    linked = pc.equal(prev.slice(1), digest.slice(0, n - 1))
    good = pc.fill_null(pc.and_(step, linked), False)
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
