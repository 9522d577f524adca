"""Reading JSONL segments: one record per line, damaged lines reported and skipped.

A line can be damaged by a crash in the middle of a write (a *torn* line, always the last
of its file until a later writer starts a fresh line after it) or by outside tampering.
Either way the line is skipped with a :class:`~comply_lab.errors.CorruptLineWarning`
naming the file and line number, and every other line is still read: one bad line never
hides the rest of the log.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson

from comply_lab.errors import CorruptLineWarning, CorruptRecordError
from comply_lab.model.entry import AuditEntry, parse_time

Window = tuple[datetime | None, datetime | None]
"""A time range, both ends included, aware UTC; None for an open end."""


def parse_segment(data: bytes, source: str, within: Window | None = None) -> Iterator[AuditEntry]:
    """Yield the entries of a JSONL segment's bytes, in order.

    Args:
        data: The whole segment.
        source: File name or URL, used in warnings.
        within: Yield only entries whose timestamp is inside this window; the others are
            not built (their timestamp is read first), which saves most of their cost in a
            query that covers part of a day.
    """
    lines = data.split(b"\n")
    tail = lines.pop()
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    for number, line in enumerate(lines, 1):
        try:
            record = loads(line)
        except decode_error:
            if line.strip():
                _report(f"{source} line {number}: not valid JSON; skipped, the rest is read")
            continue
        if within is not None and outside(record, within):
            continue
        entry = _entry(record, source, number)
        if entry is not None:
            yield entry
    if tail.strip():
        _report(
            f"{source} line {len(lines) + 1}: incomplete last line ({len(tail)} bytes, no "
            "newline), torn by a crash or still being written; skipped"
        )


def outside(record: object, within: Window) -> bool:
    """Whether a parsed record's timestamp is readable and outside ``within``.

    A record whose timestamp cannot be read is not outside: building it reports why.
    """
    stamp = record.get("timestamp") if isinstance(record, dict) else None
    moment = parse_time(stamp) if isinstance(stamp, str) else None
    if moment is None:
        return False
    lo, hi = within
    return (lo is not None and moment < lo) or (hi is not None and moment > hi)


WriterSpan = dict[str, Any]
"""One writer's entries in some segments: ``first_seq``, ``last_seq`` and ``last_hash``."""


def summarize_jsonl(data: bytes) -> tuple[int, dict[str, WriterSpan]]:
    """Return the number of entry records in a JSONL segment and each writer's span.

    Faster than :func:`parse_segment` (no entries are built, nothing is warned about):
    for recording what is about to be deleted.
    """
    count = 0
    spans: dict[str, WriterSpan] = {}
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    for line in data.split(b"\n")[:-1]:
        try:
            record = loads(line)
        except decode_error:
            continue
        if not isinstance(record, dict) or "id" not in record:
            continue
        count += 1
        writer, seq = record.get("writer_id"), record.get("seq")
        if isinstance(writer, str) and isinstance(seq, int) and not isinstance(seq, bool):
            merge_span(spans, writer, seq, seq, record.get("entry_hash"))
    return count, spans


def merge_span(
    spans: dict[str, WriterSpan], writer: str, first: int, last: int, last_hash: object
) -> None:
    """Widen ``writer``'s span in ``spans`` to cover seqs ``first..last``."""
    span = spans.get(writer)
    digest = last_hash if isinstance(last_hash, str) else None
    if span is None:
        spans[writer] = {"first_seq": first, "last_seq": last, "last_hash": digest}
        return
    span["first_seq"] = min(span["first_seq"], first)
    if last > span["last_seq"]:
        span["last_seq"], span["last_hash"] = last, digest


_ENTRY_START = b'{"alerts":'  # every line the logger writes starts so (keys are sorted)


def cut_short(line: bytes) -> bool:
    """Whether an unparseable line is the start of one of our lines, cut short.

    That is what a write that did not complete (disk full, a crash) leaves.
    """
    return line.startswith(_ENTRY_START) and not line.endswith(b"}")


def complete_record(tail: bytes) -> bool:
    """Tell a whole entry that lost its line end (an edit) from a write torn by a crash."""
    for candidate in (tail, tail[:-1]):
        try:
            record = orjson.loads(candidate)
        except orjson.JSONDecodeError:
            continue
        if isinstance(record, dict) and "entry_hash" in record:
            return True
    return False


def _entry(record: object, source: str, number: int) -> AuditEntry | None:
    try:
        if not isinstance(record, dict):
            raise CorruptRecordError("line is JSON but not an object")
        return AuditEntry.from_dict(record)
    except (CorruptRecordError, TypeError) as err:
        _report(f"{source} line {number}: {err}; skipped, the rest of the file is read")
        return None


def _report(message: str) -> None:
    warnings.warn(message, CorruptLineWarning, stacklevel=3)
