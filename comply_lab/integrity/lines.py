"""Classifying the lines of a JSONL segment for verification.

Every line is one of:

- ``entry``: a hashed entry stored exactly in its canonical form (see
  :func:`comply_lab.model.entry.line_problem`);
- ``legacy``: a record written by another tool (the original one): no hash, no chain;
- ``modified``: an entry whose line is not its canonical form, whose hash does not
  match, or whose integrity fields were altered or stripped;
- ``fragment``: the start of one of our lines, cut short — what a write that did not
  complete (disk full, a crash) leaves; it was never acknowledged;
- ``damaged``: anything else (not JSON, not an entry).

The last bytes of a segment without a newline are its *tail*: see :func:`tail_kind`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, NamedTuple

import orjson

from comply_lab.errors import CorruptRecordError
from comply_lab.model.entry import AuditEntry, line_problem
from comply_lab.model.ids import id_time
from comply_lab.storage.jsonl import complete_record, cut_short

LineKind = Literal["entry", "legacy", "modified", "fragment", "damaged"]
_INTEGRITY = ("writer_id", "seq", "prev_hash", "entry_hash", "hash_key_id")


class Line(NamedTuple):
    """One classified line: its number (from 1), kind, decoded entry if any, and why."""

    number: int
    kind: LineKind
    entry: AuditEntry | None
    reason: str


def split(data: bytes) -> tuple[list[bytes], bytes]:
    """Return a segment's newline-terminated lines and its tail (b"" if it ends in one)."""
    lines = data.split(b"\n")
    tail = lines.pop()
    return lines, tail


def classify(lines: list[bytes]) -> Iterator[Line]:
    """Yield the classification of each non-empty line."""
    for number, line in enumerate(lines, 1):
        if line:
            yield _classify(number, line)


def _classify(number: int, line: bytes) -> Line:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as err:
        if cut_short(line):
            return Line(number, "fragment", None, f"a fragment of {len(line)} bytes")
        return Line(number, "damaged", None, f"not valid JSON ({err})")
    if not isinstance(record, dict):
        return Line(number, "damaged", None, "JSON but not an object")
    try:
        entry = AuditEntry.from_dict(record)
    except (CorruptRecordError, TypeError) as err:
        return Line(number, "damaged", None, f"not a valid entry ({err})")
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


TailKind = Literal["none", "edited", "torn"]


def tail_kind(tail: bytes) -> TailKind:
    """Tell what the bytes after a segment's last newline are.

    ``edited`` is a whole entry that lost its line end (the file was changed), ``torn`` a
    write cut short by a crash, ``none`` nothing at all.
    """
    if not tail.strip():
        return "none"
    return "edited" if complete_record(tail) else "torn"
