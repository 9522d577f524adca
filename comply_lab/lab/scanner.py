"""The lab's scan: Arrow tables from any store, pruned by day, filtered and projected.

Segment selection (which days, which segments) is the storage scanner's
([`comply_lab.storage.scan.select_segments`][comply_lab.storage.scan.select_segments]), shared
with the logger's queries; this module decodes the selected segments into Arrow. Parquet parts
are decoded with only the columns needed (see
[`comply_lab.storage.parts`][comply_lab.storage.parts], which also says why row groups are not
pruned by their statistics), then filtered; JSONL segments are decoded and filtered in memory.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from comply_lab._progress import progress_bar
from comply_lab._time import day_end, day_start
from comply_lab.errors import CorruptSegmentWarning, InvalidQueryError
from comply_lab.lab.query import Query
from comply_lab.storage.arrow import SCHEMA, entries_to_table
from comply_lab.storage.base import Storage
from comply_lab.storage.capabilities import LocalFiles
from comply_lab.storage.decode import count_segments, read_day_segments, segment_entries
from comply_lab.storage.deletions import deleted
from comply_lab.storage.parts import decoding, read_part
from comply_lab.storage.scan import covers_day, select_segments
from comply_lab.storage.segments import Segment

BATCH_ROWS = 128 * 1024


OnCorrupt = Literal["raise", "skip"]
"""What a scan does at a damaged segment: raise CorruptSegmentError, or skip it with a warning."""


def scan(
    storage: Storage,
    query: Query,
    *,
    progress: bool | None = None,
    on_corrupt: OnCorrupt = "raise",
) -> Iterator[pa.Table]:
    """Yield the rows matching ``query`` as Arrow tables, segment by segment, in time order.

    Args:
        storage: Any store.
        query: What to read.
        progress: Show a progress bar on scans that take more than a moment; None shows it
            only on terminals and notebooks.
        on_corrupt: ``"raise"`` (default): a damaged segment raises CorruptSegmentError;
            ``"skip"``: the scan goes on without it, and once it is over one
            [`CorruptSegmentWarning`][comply_lab.errors.CorruptSegmentWarning] lists every
            segment skipped.
    """
    query = hiding(storage, query)
    selected = select_segments(storage, query.start, query.end)
    days = sorted({s.day for s in selected})
    skipped: list[Segment] | None = [] if on_corrupt == "skip" else None
    with progress_bar(len(selected), "scanning segments", enabled=progress) as bar:
        for day in days:
            for tables in day_tables(storage, day, query, skipped):
                bar.update(1)
                yield from tables
    warn_skipped(storage, skipped)


def day_tables(
    storage: Storage, day: date, query: Query, skipped: list[Segment] | None = None
) -> Iterator[list[pa.Table]]:
    """Yield, segment by segment, the rows of one day that match ``query``.

    The unit of work of a scan: the lab's reads run it day after day, a Dask DataFrame
    runs it once per partition. Damaged segments raise, or are added to ``skipped``.
    """
    query = hiding(storage, query)
    return read_day_segments(storage, day, lambda s: _read(storage, s, query), skipped)


def dataset(storage: Storage, query: Query) -> ds.Dataset:
    """Return a pyarrow dataset over the segments of the days ``query`` covers.

    Local Parquet segments are scanned lazily by whoever reads the dataset (with filter and
    projection pushdown, e.g. DuckDB or Polars); other segments are decoded into memory.
    """
    query = hiding(storage, query)
    parts: list[ds.Dataset] = []
    files: list[str] = []
    for segment in select_segments(storage, query.start, query.end):
        if segment.format == "parquet" and isinstance(storage, LocalFiles):
            files.append(str(storage.local_path(segment)))
        elif segment.format == "parquet":
            parts.append(ds.dataset(read_part(storage, segment)))
        else:
            table = entries_to_table(list(segment_entries(storage, segment)))
            parts.append(ds.dataset(table.cast(SCHEMA)))
    if files:
        parts.insert(0, ds.dataset(files, schema=SCHEMA, format="parquet"))
    if not parts:
        return ds.dataset(SCHEMA.empty_table())
    whole = parts[0] if len(parts) == 1 else ds.dataset(parts)
    if query.hidden:
        whole = whole.filter(~pc.field("id").isin(pa.array(sorted(query.hidden.ids))))
    return whole


def hiding(storage: Storage, query: Query) -> Query:
    """Return ``query`` knowing which entries were deleted on request (read once per read)."""
    return query if query.hidden is not None else replace(query, hidden=deleted(storage))


def check_on_corrupt(value: object) -> OnCorrupt:
    """Return ``value`` if it is a valid ``on_corrupt`` choice.

    Raises:
        InvalidQueryError: it is not ``"raise"`` or ``"skip"``.
    """
    if value == "raise" or value == "skip":
        return value
    raise InvalidQueryError(f"on_corrupt must be 'raise' or 'skip', got {value!r}")


def warn_skipped(storage: Storage, skipped: list[Segment] | None) -> None:
    """Emit one warning naming the damaged segments a scan skipped (none: nothing)."""
    if skipped:
        names = ", ".join(s.name for s in skipped)
        warnings.warn(
            CorruptSegmentWarning(
                f"{len(skipped)} damaged segment(s) of {storage!r} were skipped, their entries "
                f"are missing from the result: {names}; verify the log to see what is wrong"
            ),
            stacklevel=3,
        )


WHOLE = -1
"""The row group `segment_rows` gives rows of a segment that has none (JSONL)."""
GROUP = "_group"
"""The column `segment_rows` adds: each row's row group in its segment."""


def segment_rows(
    storage: Storage,
    segment: Segment,
    query: Query,
    groups: list[int] | None = None,
    stamps: pa.Array | None = None,
) -> pa.Table:
    """Return the rows of one segment matching ``query``, each with its row group.

    A Parquet part's rows carry their row group's position in
    [`GROUP`][comply_lab.lab.scanner.GROUP]; a JSONL segment is decoded whole and its rows carry
    [`WHOLE`][comply_lab.lab.scanner.WHOLE]. A reader that keeps the positions can come back for
    a few rows and decode only their groups (``groups``), naming the rows by their timestamps
    (``stamps``: only rows with one of them are kept).
    """
    query = hiding(storage, query)
    chosen = None if stamps is None else pc.field("timestamp").isin(stamps)
    if segment.format != "parquet":
        table = pa.concat_tables(_read(storage, segment, query) or [query.schema.empty_table()])
        table = table if chosen is None else table.filter(chosen)
        return table.append_column(GROUP, pa.repeat(WHOLE, table.num_rows).cast(pa.int64()))
    expression, filter_columns = query.filters_on(segment.day)
    if chosen is not None:
        expression = chosen if expression is None else chosen & expression
        filter_columns.append("timestamp")
    with decoding(storage, segment):
        table = read_part(
            storage,
            segment,
            columns=query.read_columns(),
            filters=expression,
            filter_columns=filter_columns,
            row_groups=groups,
            group_column=GROUP,
        )
    return query.finish(table, keep=(GROUP,))


def _read(storage: Storage, segment: Segment, query: Query) -> list[pa.Table]:
    columns = query.read_columns()
    expression, filter_columns = query.filters_on(segment.day)
    if segment.format == "parquet":
        with decoding(storage, segment):
            table = read_part(
                storage,
                segment,
                columns=columns,
                filters=expression,
                filter_columns=filter_columns,
            )
            return [query.finish(b) for b in table.to_batches(BATCH_ROWS) if b.num_rows]
    table = entries_to_table(list(segment_entries(storage, segment)))
    if expression is not None:
        table = table.filter(expression)
    return [query.finish(table.select(columns))] if table.num_rows else []


def count_range(storage: Storage, query: Query, *, on_corrupt: OnCorrupt = "raise") -> int:
    """Return how many entries fall in ``query``'s time range.

    Whole days are counted from the manifest (or Parquet footers) without reading rows;
    only partly covered days are scanned, and then only their timestamps.
    """
    query = hiding(storage, query)
    total = 0
    partial = set()
    for segment in select_segments(storage, query.start, query.end):
        if covers_day(query.start, query.end, segment.day) and not query.hides(segment.day):
            total += count_segments(storage, [segment])
        else:
            partial.add(segment.day)
    for day in sorted(partial):
        day_query = Query.build(
            max(query.start, day_start(day)) if query.start else day_start(day),
            min(query.end, day_end(day)) if query.end else day_end(day),
            columns=["timestamp"],
        )
        day_query = replace(day_query, hidden=query.hidden)
        rows = scan(storage, day_query, progress=False, on_corrupt=on_corrupt)
        total += sum(t.num_rows for t in rows)
    return total
