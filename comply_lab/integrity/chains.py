"""Following every writer's hash chain through the log, in constant memory per writer."""

from __future__ import annotations

from datetime import date

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
