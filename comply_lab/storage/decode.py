"""Reading segments of any format into entries, written once for every backend."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from typing import Protocol, TypeVar

from comply_lab.errors import CorruptSegmentError
from comply_lab.model.entry import AuditEntry
from comply_lab.storage.capabilities import LocalFiles, SourceTracking
from comply_lab.storage.deletions import Hidden, deleted
from comply_lab.storage.jsonl import (
    Window,
    WriterSpan,
    merge_span,
    parse_segment,
    summarize_jsonl,
)
from comply_lab.storage.listing import readable
from comply_lab.storage.segments import Segment, source_key
from comply_lab.storage.vetting import vet


class SegmentSource(Protocol):
    """The reading half of the storage protocol."""

    def segments(self, day: date) -> list[Segment]:
        """Return the readable segments of one day partition, in write order."""
        ...

    def read_segment(self, segment: Segment) -> bytes:
        """Return a segment's bytes."""
        ...

    def read_metadata(self, name: str) -> bytes:
        """Return a metadata file's bytes (empty if there is none)."""
        ...


_RELIST_ATTEMPTS = 5
T = TypeVar("T")


def segment_entries(
    storage: SegmentSource, segment: Segment, within: Window | None = None
) -> Iterator[AuditEntry]:
    """Yield the entries of one segment in stored order (only those ``within``, if given).

    Raises:
        FileNotFoundError: the segment was sealed or deleted since it was listed.
    """
    if segment.format == "jsonl":
        data, source = storage.read_segment(segment), _source(storage, segment)
        if segment.sealed:
            yield from parse_segment(data, source, within)
        else:
            yield from vet(storage, segment.name, data, within, source)
        return
    from comply_lab.storage.arrow import in_window, table_to_entries
    from comply_lab.storage.parts import decoding, read_part

    with decoding(storage, segment):
        table = read_part(storage, segment)
        if within is not None:
            table = in_window(table, within)
        entries = list(table_to_entries(table))
    yield from entries


def read_day_segments(
    storage: SegmentSource,
    day: date,
    read: Callable[[Segment], T],
    skipped: list[Segment] | None = None,
) -> Iterator[T]:
    """Apply ``read`` to every segment of a day once, even while segments are being sealed.

    See [`read_listed`][comply_lab.storage.decode.read_listed], with the day's listing.
    """
    return read_listed(storage, lambda: readable(storage, storage.segments(day)), read, skipped)


def read_listed(
    storage: SegmentSource,
    listing: Callable[[], Iterable[Segment]],
    read: Callable[[Segment], T],
    skipped: list[Segment] | None = None,
) -> Iterator[T]:
    """Apply ``read`` to every segment ``listing`` gives once, even while some are sealed.

    A JSONL segment sealed between listing and reading has a Parquet twin by then: when a
    segment has vanished, the listing is taken again and the segments not yet read are read — by
    *source* (see [`source_key`][comply_lab.storage.segments.source_key]), so the twin of a
    JSONL segment read before it was sealed is not read again. ``read`` must read its segment
    fully (or raise FileNotFoundError) before returning.

    Args:
        storage: The store.
        listing: Lists the segments to read (called again after a segment vanished).
        read: What to do with each segment.
        skipped: If given, a segment ``read`` finds damaged (CorruptSegmentError) is
            appended to it and the reading goes on; otherwise the error is raised.
    """
    key = (
        storage.source_of
        if isinstance(storage, SourceTracking)
        else lambda segment: source_key(segment.name)
    )
    done: set[str] = set()
    for _ in range(_RELIST_ATTEMPTS):
        vanished = False
        for segment in listing():
            source = key(segment)
            if source in done:
                continue
            try:
                result = read(segment)
            except FileNotFoundError:
                vanished = True
                continue
            except CorruptSegmentError:
                if skipped is None:
                    raise
                skipped.append(segment)
                done.add(source)
                continue
            done.add(source)
            yield result
        if not vanished:
            return


def read_day(
    storage: SegmentSource,
    day: date,
    within: Window | None = None,
    hidden: Hidden | None = None,
) -> Iterator[AuditEntry]:
    """Yield every entry of a day partition once (only those ``within``), in stored order.

    Entries deleted on request are left out (``hidden``: the store's deletions, read
    from its trail when not given).
    """
    gone = (deleted(storage) if hidden is None else hidden).on(day)

    def read(segment: Segment) -> list[AuditEntry]:
        entries = segment_entries(storage, segment, within)
        return [e for e in entries if e.id not in gone] if gone else list(entries)

    for entries in read_day_segments(storage, day, read):
        yield from entries


def count_segments(storage: SegmentSource, segments: Sequence[Segment]) -> int:
    """Count the entries of segments, from the manifest or Parquet footers where known."""
    total = 0
    for segment in segments:
        if segment.entries is not None:
            total += segment.entries
        elif segment.format == "parquet":
            from comply_lab.storage.parts import part_rows

            total += part_rows(storage, segment)
        elif segment.sealed:
            try:
                total += summarize_jsonl(storage.read_segment(segment))[0]
            except FileNotFoundError:
                continue  # sealed meanwhile: its Parquet twin is counted by a new listing
        else:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # reading the entries warns
                    total += sum(1 for _ in segment_entries(storage, segment))
            except FileNotFoundError:
                continue  # sealed meanwhile: its Parquet twin is counted by a new listing
    return total


def count_day(storage: SegmentSource, day: date, hidden: Hidden) -> int:
    """Count the entries of a day, leaving out those deleted on request (``hidden``).

    A day without deletions is counted from the manifest or footers; on a day with some,
    the ids are read (only the id column of Parquet parts).
    """
    gone = hidden.on(day)
    if not gone:
        return count_segments(storage, readable(storage, storage.segments(day)))

    def count(segment: Segment) -> int:
        if segment.format == "jsonl":
            return sum(1 for e in segment_entries(storage, segment) if e.id not in gone)
        from comply_lab.storage.parts import read_part

        ids = read_part(storage, segment, columns=["id"]).column("id").to_pylist()
        return sum(1 for i in ids if i not in gone)

    return sum(read_day_segments(storage, day, count))


def summarize_segments(
    storage: SegmentSource, segments: Sequence[Segment]
) -> tuple[int, dict[str, WriterSpan]]:
    """Count the entries of segments, and each writer's span in the unsealed ones.

    What retention records before deleting: sealed segments are counted from the
    manifest or Parquet footers (their manifest records hold the writer ranges); unsealed
    JSONL is read once, parsing each line without building entries.
    """
    total = 0
    spans: dict[str, WriterSpan] = {}
    for segment in segments:
        if segment.sealed or segment.format != "jsonl":
            total += count_segments(storage, [segment])
            continue
        try:
            data = storage.read_segment(segment)
        except FileNotFoundError:
            continue  # sealed meanwhile: deleted with the partition's other segments
        count, found = summarize_jsonl(data)
        total += count
        for writer, span in found.items():
            merge_span(spans, writer, span["first_seq"], span["last_seq"], span["last_hash"])
    return total, spans


def _source(storage: SegmentSource, segment: Segment) -> str:
    return str(storage.local_path(segment)) if isinstance(storage, LocalFiles) else segment.name
