"""Reading JSONL segments: one record per line, damaged lines reported and skipped.

A line can be damaged by a crash in the middle of a write (a *torn* line, always the last of its
file until a later writer starts a fresh line after it) or by outside tampering. Either way the
line is skipped with a [`CorruptLineWarning`][comply_lab.errors.CorruptLineWarning] naming the
file and line number, and every other line is still read: one bad line never hides the rest of
the log.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal, NamedTuple

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
    lines, tail = split_lines(data)
    for number, line in enumerate(lines, 1):
        if not line:
            continue
        record = decode_line(line)
        if isinstance(record, dict) and within is not None and outside(record, within):
            continue
        entry = record if isinstance(record, Damage) else to_entry(record)
        if isinstance(entry, Damage):
            _report(f"{source} line {number}: {entry.reason}; skipped, the rest is read")
        else:
            yield entry
    if tail.strip():
        _report(
            f"{source} line {len(lines) + 1}: incomplete last line ({len(tail)} bytes, no "
            "newline), torn by a crash or still being written; skipped"
        )


class Damage(NamedTuple):
    """Why a line holds no entry.

    ``kind`` is ``fragment`` for the start of one of our lines cut short (what a write
    that did not complete leaves; it was never acknowledged) and ``damaged`` for anything
    else that is not an entry.
    """

    kind: Literal["fragment", "damaged"]
    reason: str


def split_lines(data: bytes) -> tuple[list[bytes], bytes]:
    """Return a segment's newline-terminated lines and its tail (b"" if it ends in one)."""
    lines = data.split(b"\n")
    tail = lines.pop()
    return lines, tail


def decode_line(line: bytes) -> dict[str, Any] | Damage:
    """Return one line's record, or why it has none; readers and verification share it."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as err:
        if _cut_short(line):
            return Damage("fragment", f"not valid JSON: a fragment of {len(line)} bytes")
        return Damage("damaged", f"not valid JSON ({err})")
    if not isinstance(record, dict):
        return Damage("damaged", f"JSON but a {type(record).__name__}, not an object")
    return record


def to_entry(record: dict[str, Any]) -> AuditEntry | Damage:
    """Return the entry a decoded record holds, or why it is not a valid entry."""
    try:
        return AuditEntry.from_dict(record)
    except (CorruptRecordError, TypeError) as err:
        return Damage("damaged", f"not a valid entry ({err})")


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

    Faster than [`parse_segment`][comply_lab.storage.jsonl.parse_segment] (no entries are built,
    nothing is warned about): for recording what is about to be deleted.
    """
    count = 0
    spans: dict[str, WriterSpan] = {}
    loads, error = orjson.loads, orjson.JSONDecodeError
    for line in split_lines(data)[0]:
        try:
            record = loads(line) if line else None
        except error:
            continue
        if type(record) is not dict or "id" not in record:
            continue
        count += 1
        writer, seq = record.get("writer_id"), record.get("seq")
        if type(writer) is not str or type(seq) is not int:
            continue
        span = spans.get(writer)
        if span is None:
            digest = record.get("entry_hash")
            last_hash = digest if type(digest) is str else None
            spans[writer] = {"first_seq": seq, "last_seq": seq, "last_hash": last_hash}
        elif seq > span["last_seq"]:
            digest = record.get("entry_hash")
            span["last_seq"], span["last_hash"] = seq, digest if type(digest) is str else None
        elif seq < span["first_seq"]:
            span["first_seq"] = seq
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


def _cut_short(line: bytes) -> bool:
    """Whether an unparseable line is the start of one of our lines, cut short.

    That is what a write that did not complete (disk full, a crash) leaves.
    """
    return line.startswith(_ENTRY_START) and not line.endswith(b"}")


TailKind = Literal["none", "edited", "torn"]


def tail_kind(tail: bytes) -> TailKind:
    """Tell what the bytes after a segment's last newline are.

    ``edited`` is a whole entry that lost its line end (the file was changed), ``torn`` a
    write cut short by a crash, ``none`` nothing at all.
    """
    if not tail.strip():
        return "none"
    for candidate in (tail, tail[:-1]):
        record = decode_line(candidate)
        if isinstance(record, dict) and "entry_hash" in record:
            return "edited"
    return "torn"


def _report(message: str) -> None:
    warnings.warn(message, CorruptLineWarning, stacklevel=3)
