"""Pages of a selection, read as they are needed: what keeps the explorer fast.

Showing 20 rows of a million never loads the million. A [`Pager`][comply_lab.lab.paging.Pager]
walks the days of the selection in the order shown (newest first by default). It counts each
day's matching entries once: from the manifest (or Parquet footers) when no row filter applies,
else by decoding only the columns the filters read, one day per thread. The rows of a page are
then read from the one or two days that hold them. Other orders (slowest first, blocked first)
decode the sort column and the timestamps of the selection once, row group by row group, and
keep their order with where each row lies: a page then decodes only the row groups holding its
rows (finding each row again by its timestamp), a few thousand rows rather than the days they
lie on.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date, datetime
from typing import Literal, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from comply_lab._time import day_end, day_start
from comply_lab.lab.query import Query
from comply_lab.lab.scanner import (
    GROUP,
    WHOLE,
    OnCorrupt,
    day_tables,
    hiding,
    segment_rows,
    warn_skipped,
)
from comply_lab.storage.base import Storage
from comply_lab.storage.decode import count_segments, read_day_segments
from comply_lab.storage.scan import covers_day, select_segments
from comply_lab.storage.segments import Segment

T = TypeVar("T")
K = TypeVar("K")
Order = Literal["newest first", "oldest first", "slowest first", "blocked first"]
ORDERS: tuple[Order, ...] = ("newest first", "oldest first", "slowest first", "blocked first")
"""The orders a pager offers."""


class Pager:
    """Rows ``offset`` to ``offset + limit`` of a query's result, in a chosen order.

    Args:
        storage: The log's store.
        query: The selection (time range, filters) and the columns of a page.
        order: One of [`ORDERS`][comply_lab.lab.paging.ORDERS].
        on_corrupt: As for every read (see
            [`comply_lab.lab.scanner.scan`][comply_lab.lab.scanner.scan]).
    """

    def __init__(
        self,
        storage: Storage,
        query: Query,
        order: Order = "newest first",
        on_corrupt: OnCorrupt = "raise",
    ) -> None:
        self.storage = storage
        self.query = hiding(storage, query)
        self.order = order
        self.on_corrupt = on_corrupt
        segments = select_segments(storage, query.start, query.end)
        self._segments: dict[date, list[Segment]] = {}
        for segment in segments:
            self._segments.setdefault(segment.day, []).append(segment)
        self._days = sorted(self._segments, reverse=order != "oldest first")
        self._counts: dict[date, int] = {}
        self._ranked: pa.Table | None = None
        self._parts: list[Segment] = []
        self._lock = threading.Lock()
        self._sorted: pa.Table | None = None

    def total(self) -> int:
        """Return how many entries the selection holds (counted once, then remembered)."""
        if self.order in ("newest first", "oldest first"):
            return sum(self._count(day) for day in self._days)
        return int(self._ranking().num_rows)

    def _count(self, day: date) -> int:
        """Return how many entries of ``day`` match, counting every day on the first call."""
        if not self._counts:
            self._counts = self._count_days()
        return self._counts.get(day, 0)

    def _count_days(self) -> dict[date, int]:
        """Count the matching entries of every day, reading as little as the query allows."""
        query = self.query
        counts: dict[date, int] = {}
        partial = []
        for day, segments in self._segments.items():
            if (
                _unfiltered(query)
                and covers_day(query.start, query.end, day)
                and not query.hides(day)
            ):
                counts[day] = count_segments(self.storage, segments)
            else:
                partial.append(day)
        cheapest = replace(query, columns=("safety_passed",))
        found = self._each(lambda day: self._read(cheapest, day).num_rows, partial)
        counts.update(zip(partial, found, strict=True))
        return counts

    def page(self, offset: int, limit: int, *, retry: bool = True) -> pa.Table:
        """Return the rows ``offset`` to ``offset + limit`` of the selection, in order.

        ``retry``: rank again once if a segment was sealed since the ranking.
        """
        if self.order in ("newest first", "oldest first"):
            return self._by_time(offset, limit)
        ranked = self._top(offset + limit).slice(offset, limit)
        if not ranked.num_rows:
            return self.query.schema.empty_table()
        stamps = ranked.column("timestamp").combine_chunks()
        where = ranked.select([_SEGMENT, GROUP]).to_pydict()
        places = sorted(set(zip(where[_SEGMENT], where[GROUP], strict=True)))
        try:
            found = self._each(lambda place: self._rows(place, stamps), places)
        except FileNotFoundError:
            if retry:  # a segment was sealed since the ranking: rank the selection again
                self._ranked, self._sorted, self._parts = None, None, []
                return self.page(offset, limit, retry=False)
            raise
        rows = pa.concat_tables(found)
        position = {t: i for i, t in enumerate(stamps.to_pylist())}
        keys = pa.array([position[t] for t in rows.column("timestamp").to_pylist()])
        return rows.take(pc.sort_indices(keys)).slice(0, limit).select(list(self.query.columns))

    def _rows(self, place: tuple[int, int], stamps: pa.Array) -> pa.Table:
        """Return the rows of one row group (``place``) whose timestamps are in ``stamps``."""
        segment = self._parts[place[0]]
        groups = None if place[1] == WHOLE else [place[1]]
        query = self._on(self.query, segment.day)
        if "timestamp" not in query.columns:  # how a row is found again
            query = replace(query, columns=(*query.columns, "timestamp"))
        rows = segment_rows(self.storage, segment, query, groups, stamps)
        if not rows.num_rows:
            raise FileNotFoundError(f"{segment.name} no longer holds the rows ranked in it")
        return rows.drop_columns([GROUP])

    def _by_time(self, offset: int, limit: int) -> pa.Table:
        ascending = self.order == "oldest first"
        parts: list[pa.Table] = []
        seen = 0
        for day in self._days:
            count = self._count(day)
            if seen + count <= offset:
                seen += count
                continue
            table = self._read(self.query, day)
            order = "ascending" if ascending else "descending"
            table = table.take(pc.sort_indices(table, [("timestamp", order)]))
            start = max(offset - seen, 0)
            parts.append(table.slice(start, limit - sum(p.num_rows for p in parts)))
            seen += count
            if sum(p.num_rows for p in parts) >= limit:
                break
        return pa.concat_tables(parts) if parts else self.query.schema.empty_table()

    def _ranking(self) -> pa.Table:
        """Return the sort column, timestamps and places of the whole selection (unordered).

        Only those two columns are decoded, one day per thread; each row's place is its
        segment (a position in ``_parts``) and row group, where a page finds it again.
        """
        if self._ranked is None:
            column = _RANKS[self.order][0]
            needed = replace(self.query, columns=("timestamp", column))
            tables = self._each(lambda day: self._locate(needed, day), self._days)
            empty = needed.schema.empty_table().append_column(GROUP, pa.array([], pa.int64()))
            empty = empty.append_column(_SEGMENT, pa.array([], pa.int64()))
            self._ranked = _concat(tables) or empty
        return self._ranked

    def _locate(self, query: Query, day: date) -> pa.Table | None:
        """Return the rows of ``day`` matching ``query``, each with its segment and row group."""
        day_query = self._on(query, day)
        skipped: list[Segment] | None = [] if self.on_corrupt == "skip" else None

        def read(segment: Segment) -> pa.Table:
            with self._lock:
                self._parts.append(segment)
                number = len(self._parts) - 1
            rows = segment_rows(self.storage, segment, day_query)
            return rows.append_column(_SEGMENT, pa.array(np.full(rows.num_rows, number)))

        rows = _concat(read_day_segments(self.storage, day, read, skipped))
        warn_skipped(self.storage, skipped)
        return rows

    def _top(self, count: int) -> pa.Table:
        """Return the timestamps and places of the first ``count`` rows in the pager's order.

        A partial selection (``select_k``) instead of sorting the whole selection, of at least
        [`_TOP`][comply_lab.lab.paging._TOP] rows, kept for the pages that follow.
        """
        table = self._ranking()
        if self._sorted is None or self._sorted.num_rows < min(count, table.num_rows):
            column, direction = _RANKS[self.order]
            keys = [(column, direction), ("timestamp", "descending")]
            wanted = min(max(count, _TOP), table.num_rows)
            top = table.take(pc.select_k_unstable(table, wanted, keys)) if wanted else table
            self._sorted = top.take(pc.sort_indices(top, keys)).select(
                ["timestamp", _SEGMENT, GROUP]
            )
        return self._sorted.slice(0, count)

    def _each(self, work: Callable[[K], T], items: list[K]) -> list[T]:
        """Return ``work(item)`` for each item (a day, a row group), in order, on threads.

        Decoding Parquet and filtering release the GIL, so days decode side by side.
        """
        if len(items) < 2:
            return [work(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(len(items), os.cpu_count() or 2)) as pool:
            return list(pool.map(work, items))

    @staticmethod
    def _on(query: Query, day: date) -> Query:
        """Return ``query`` narrowed to one day (without bounds on a day it wholly covers)."""
        if covers_day(query.start, query.end, day):
            return replace(query, start=None, end=None)
        return replace(query, start=_later(query, day), end=_earlier(query, day))

    def _read(self, query: Query, day: date) -> pa.Table:
        """Return the rows of one day matching ``query``."""
        day_query = self._on(query, day)
        skipped: list[Segment] | None = [] if self.on_corrupt == "skip" else None
        tables = [t for part in day_tables(self.storage, day, day_query, skipped) for t in part]
        warn_skipped(self.storage, skipped)
        return _concat(tables) or day_query.schema.empty_table()


_SEGMENT = "_segment"
_TOP = 1000
"""Rows put in order at once in a ranked order (the first 50 pages of 20)."""
_RANKS = {
    "slowest first": ("latency_ms", "descending"),
    "blocked first": ("safety_passed", "ascending"),
}


def _unfiltered(query: Query) -> bool:
    """Whether the query keeps every row of a wholly selected day."""
    filters = (query.provider, query.model, query.conversation_id, query.detector, query.ids)
    return query.safety_passed is None and all(f is None for f in filters)


def _concat(tables: Iterable[pa.Table | None]) -> pa.Table | None:
    parts = [t for t in tables if t is not None and t.num_rows]
    return pa.concat_tables(parts) if parts else None


def _later(query: Query, day: date) -> datetime:
    return max(query.start, day_start(day)) if query.start else day_start(day)


def _earlier(query: Query, day: date) -> datetime:
    return min(query.end, day_end(day)) if query.end else day_end(day)
