"""Queries written once over the [`Storage`][comply_lab.storage.base.Storage] primitives.

Every query prunes by day partition first: a time range reads only the days it touches,
an entry id (UUIDv7) reads only the day its id names, and retention deletes whole days.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from datetime import date, datetime
from typing import TYPE_CHECKING

from comply_lab._gcpause import paused_gc
from comply_lab._time import TimeLike, day_end, day_start, to_range
from comply_lab.errors import InvalidQueryError
from comply_lab.model.entry import AuditEntry
from comply_lab.storage.decode import read_day, read_listed, segment_entries
from comply_lab.storage.deletions import deleted
from comply_lab.storage.idindex import candidates
from comply_lab.storage.listing import readable
from comply_lab.storage.segments import Segment

if TYPE_CHECKING:
    from comply_lab.storage.base import Storage

_BY_TIME = operator.attrgetter("timestamp", "id")


def select_segments(storage: Storage, lo: datetime | None, hi: datetime | None) -> list[Segment]:
    """Return the segments that may hold entries of ``[lo, hi]``, day by day.

    This is the scanner's pruning step, shared by every reader: days outside the range
    are never listed, so their files are never opened; sealed files no trusted manifest
    record names are left out (see [`readable`][comply_lab.storage.listing.readable]).
    """
    return readable(
        storage,
        [
            segment
            for day in storage.days()
            if (lo is None or day >= lo.date()) and (hi is None or day <= hi.date())
            for segment in storage.segments(day)
        ],
    )


def covers_day(lo: datetime | None, hi: datetime | None, day: date) -> bool:
    """Return True if ``[lo, hi]`` holds the whole of ``day``."""
    return (lo is None or lo <= day_start(day)) and (hi is None or day_end(day) <= hi)


def iter_range(
    storage: Storage, start: TimeLike | None, end: TimeLike | None
) -> Iterator[AuditEntry]:
    """Yield entries with ``start <= timestamp <= end``, reading only the days in range.

    Entries come day by day in stored order. See
    [`comply_lab._time.to_range`][comply_lab._time.to_range] for how bounds are read.

    Raises:
        InvalidQueryError: ``start`` is after ``end`` or a bound is not a time.
    """
    lo, hi = to_range(start, end)
    hidden = deleted(storage)
    for day in sorted({s.day for s in select_segments(storage, lo, hi)}):
        yield from read_day(storage, day, None if covers_day(lo, hi, day) else (lo, hi), hidden)


def entries_between(
    storage: Storage, start: TimeLike | None, end: TimeLike | None
) -> list[AuditEntry]:
    """Return the entries of ``[start, end]`` (both included) ordered by time, then id."""
    with paused_gc():
        return sorted(iter_range(storage, start, end), key=_BY_TIME)


def find_entry(
    storage: Storage, entry_id: str, skipped: list[Segment] | None = None
) -> AuditEntry | None:
    """Return the entry with ``entry_id``, or None.

    A UUIDv7 id names its day, so only that day is read; another id (written by other tools) is
    looked up in the id index, and only the row groups it names are decoded, besides unsealed
    segments and parts no index covers (see
    [`comply_lab.storage.idindex`][comply_lab.storage.idindex]). Entries deleted on request are
    not found.

    Args:
        storage: The store.
        entry_id: The id.
        skipped: If given, damaged segments are appended to it and the lookup goes on;
            otherwise CorruptSegmentError is raised.

    Raises:
        InvalidQueryError: ``entry_id`` is not a string.
    """
    if not isinstance(entry_id, str):
        raise InvalidQueryError(f"entry id must be a str, got {type(entry_id).__name__}")
    if entry_id in deleted(storage).ids:
        return None
    groups: dict[str, list[int] | None] = {}

    def listing() -> list[Segment]:
        found = candidates(storage, entry_id)
        groups.update((segment.name, rows) for segment, rows in found)
        return [segment for segment, _ in found]

    def read(segment: Segment) -> AuditEntry | None:
        return _in_segment(storage, segment, entry_id, groups[segment.name])

    return next((e for e in read_listed(storage, listing, read, skipped) if e is not None), None)


def _in_segment(
    storage: Storage, segment: Segment, entry_id: str, groups: list[int] | None
) -> AuditEntry | None:
    """Return the entry ``entry_id`` of one segment, or None.

    In a Parquet part only the row groups holding the id are decoded whole: those the
    index named (``groups``), or else those where the id column, read alone, has it.
    """
    if segment.format == "jsonl":
        return next((e for e in segment_entries(storage, segment) if e.id == entry_id), None)
    import pyarrow.compute as pc

    from comply_lab.storage.arrow import table_to_entries
    from comply_lab.storage.parts import read_part

    wanted = pc.field("id") == entry_id
    table = None
    if groups is not None:
        table = read_part(storage, segment, filters=wanted, row_groups=groups)
    if table is None or not table.num_rows:  # no index, or rows moved since (compaction)
        where = read_part(storage, segment, columns=["id"], filters=wanted, group_column="_g")
        if not where.num_rows:
            return None
        found = sorted(set(where.column("_g").to_pylist()))
        table = read_part(storage, segment, filters=wanted, row_groups=found)
    return next(iter(table_to_entries(table.slice(0, 1))), None)
