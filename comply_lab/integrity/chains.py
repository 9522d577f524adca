"""Following every writer's hash chain through the log, in constant memory per writer."""

from __future__ import annotations

from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from comply_lab.audit.entry import GENESIS_HASH
from comply_lab.integrity.report import Problem, Status

_MAX_PENDING = 10_000  # gaps wider than this are reported at once instead of awaited


class ChainTracker:
    """Checks that each writer's entries form one unbroken chain, seq 0, 1, 2, ...

    Entries are fed in stored order. A gap is held open until the end, so an entry that
    turns up later is classified as *reordered* rather than *missing*.

    Args:
        open_start: Accept chains that start after seq 0 (a time-limited verification, or
            a log whose oldest days were deleted by recorded retention).
        expired: Per writer, ``(first_seq, last_seq)`` ranges deleted by recorded
            retention: gaps they explain are not reported (the deleted segments are
            reported as ``expired_by_policy`` instead).
    """

    def __init__(
        self, *, open_start: bool, expired: dict[str, list[tuple[int, int]]] | None = None
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
            if (seq != 0 or prev_hash != GENESIS_HASH) and not self.open_start:
                return [
                    problem(
                        "missing",
                        f"the chain starts at seq {seq}: entries 0..{seq - 1} "
                        "of this writer are not in the log",
                    )
                ]
            return []
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

    def _unexplained(self, writer: str, first: int, last: int) -> set[int] | range:
        """Return the seqs in ``[first, last]`` that no expired range covers."""
        spans = [(a, b) for a, b in self.expired.get(writer, ()) if a <= last and b >= first]
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
) -> dict[str, list[tuple[int, int]]]:
    """Return, per writer, the seq ranges that recorded retention deleted.

    Sealed segments' ranges come from their manifest records; unsealed ones are in the
    retention record itself.
    """
    ranges: dict[str, list[tuple[int, int]]] = {}

    def add(writer: object, first: object, last: object) -> None:
        if isinstance(writer, str) and isinstance(first, int) and isinstance(last, int):
            ranges.setdefault(writer, []).append((first, last))

    for record in retention:
        for name in record.get("segments") or []:
            for writer, chain in ((by_segment.get(name) or {}).get("writers") or {}).items():
                if isinstance(chain, dict):
                    add(writer, chain.get("first_seq"), chain.get("last_seq"))
        for writer, span in (record.get("writers") or {}).items():
            if isinstance(span, list) and len(span) == 2:
                add(writer, span[0], span[1])
    return ranges
