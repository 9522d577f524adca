"""Classifying the lines of a JSONL segment for verification.

Every line is one of:

- ``entry``: a hashed entry stored exactly in its canonical form (see
  [`comply_lab.model.entry.line_problem`][comply_lab.model.entry.line_problem]);
- ``legacy``: a record written by another tool (the original one): no hash, no chain;
- ``modified``: an entry whose line is not its canonical form, whose hash does not
  match, or whose integrity fields were altered or stripped;
- ``fragment``: the start of one of our lines, cut short — what a write that did not
  complete (disk full, a crash) leaves; it was never acknowledged;
- ``damaged``: anything else (not JSON, not an entry).

Decoding a line is shared with the readers
([`comply_lab.storage.jsonl.decode_line`][comply_lab.storage.jsonl.decode_line]); the last bytes
of a segment without a newline are its *tail*
([`comply_lab.storage.jsonl.tail_kind`][comply_lab.storage.jsonl.tail_kind]).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, NamedTuple

from comply_lab.model.entry import AuditEntry, line_problem
from comply_lab.model.ids import id_time
from comply_lab.storage.jsonl import Damage, decode_line, to_entry

LineKind = Literal["entry", "legacy", "modified", "fragment", "damaged"]
_INTEGRITY = ("writer_id", "seq", "prev_hash", "entry_hash", "hash_key_id")


class Line(NamedTuple):
    """One classified line: its number (from 1), kind, decoded entry if any, and why."""

    number: int
    kind: LineKind
    entry: AuditEntry | None
    reason: str


def classify(lines: list[bytes]) -> Iterator[Line]:
    """Yield the classification of each non-empty line."""
    for number, line in enumerate(lines, 1):
        if line:
            yield _classify(number, line)


def _classify(number: int, line: bytes) -> Line:
    record = decode_line(line)
    if isinstance(record, Damage):
        return Line(number, record.kind, None, record.reason)
    entry = to_entry(record)
    if isinstance(entry, Damage):
        return Line(number, entry.kind, None, entry.reason)
    if "entry_hash" in record:
        problem = line_problem(line, record)
        if problem is None:
            return Line(number, "entry", entry, "")
        return Line(number, "modified", entry, problem)
    # Another tool's record as comply_lab stores it (sealed objects spell the missing
    # integrity fields out as nulls) carries none of their values.
    if any(record.get(name) is not None for name in _INTEGRITY) or id_time(entry.id) is not None:
        return Line(
            number,
            "modified",
            entry,
            "an entry written by comply_lab lost its integrity fields (entry_hash, chain)",
        )
    return Line(number, "legacy", entry, "")
