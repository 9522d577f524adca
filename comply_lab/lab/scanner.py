"""The lab's scan: Arrow tables from any store, pruned by day, filtered and projected.

Segment selection (which days, which segments) is the storage scanner's
(:func:`comply_lab.storage.scan.select_segments`), shared with the logger's queries; this
module decodes the selected segments into Arrow. Parquet segments are read with the
filter pushed down (row groups whose statistics cannot match are skipped) and only the
columns needed; JSONL segments are decoded and filtered in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from comply_lab._progress import progress_bar
from comply_lab.lab.query import Query
from comply_lab.storage.arrow import SCHEMA, entries_to_table, native_reader
from comply_lab.storage.base import Storage
from comply_lab.storage.decode import corrupt_segment, read_day_segments, segment_entries
from comply_lab.storage.scan import select_segments
from comply_lab.storage.segments import Segment

BATCH_ROWS = 128 * 1024


def scan(storage: Storage, query: Query, *, progress: bool | None = None) -> Iterator[pa.Table]:
    """Yield the rows matching ``query`` as Arrow tables, segment by segment, in time order.

    Args:
        storage: Any store.
        query: What to read.
        progress: Show a progress bar on scans that take more than a moment; None shows it
            only on terminals and notebooks.
    """
    selected = select_segments(storage, query.start, query.end)
    days = sorted({s.day for s in selected})
    with progress_bar(len(selected), "scanning segments", enabled=progress) as bar:
        for day in days:
            for tables in day_tables(storage, day, query):
                bar.update(1)
                yield from tables


def day_tables(storage: Storage, day: date, query: Query) -> Iterator[list[pa.Table]]:
    """Yield, segment by segment, the rows of one day that match ``query``.

    The unit of work of a scan: the lab's reads run it day after day, a Dask DataFrame
    runs it once per partition.
    """
    return read_day_segments(storage, day, lambda s: _read(storage, s, query))


def _read(storage: Storage, segment: Segment, query: Query) -> list[pa.Table]:
    columns = query.read_columns()
    expression = query.expression()
    if segment.format == "parquet":
        try:
            table = pq.read_table(
                _parquet_source(storage, segment),
                columns=columns,
                filters=expression,
                schema=SCHEMA,
            )
            return [query.finish(b) for b in table.to_batches(BATCH_ROWS) if b.num_rows]
        except pa.ArrowInvalid as err:
            raise corrupt_segment(storage, segment, err) from err
    table = entries_to_table(list(segment_entries(storage, segment)))
    if expression is not None:
        table = table.filter(expression)
    return [query.finish(table.select(columns))] if table.num_rows else []


def _parquet_source(storage: Storage, segment: Segment) -> Any:
    local = getattr(storage, "local_path", None)
    if local is not None:
        return str(local(segment))
    return native_reader(storage.read_segment(segment))
