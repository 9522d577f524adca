"""The log as a Dask DataFrame: one partition per day, read where the task runs.

The partitions are the log's own day partitions, chosen by the same pruning as every other read,
and each is decoded by the same code as
[`comply_lab.Log.entries`][comply_lab.lab.log.Log.entries] (the lab's scanner), so a partition
holds exactly the rows and dtypes ``entries()`` would give for that day. The schema is declared
up front (Dask infers nothing and reads nothing until asked), and only the chosen columns are
decoded.

A partition runs where Dask schedules it: in another process or on another machine the
storage is rebuilt there from its description (``FileStorage`` from its path, which
must be reachable from the workers; ``S3Storage`` from its bucket, prefix, region and
endpoint, with credentials from each worker's environment). Entries a writer has not
yet flushed to S3 (its local spool) are not visible to workers.

Requires the ``scale`` extra (``pip install 'comply-lab[scale]'``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING

import pandas as pd

from comply_lab.errors import InvalidQueryError
from comply_lab.lab.frame import entries_frame
from comply_lab.lab.query import Query
from comply_lab.lab.scanner import OnCorrupt, day_tables, warn_skipped
from comply_lab.storage.base import Storage
from comply_lab.storage.scan import select_segments
from comply_lab.storage.segments import Segment

if TYPE_CHECKING:
    import dask.dataframe as dd


def to_dask(
    storage: Storage,
    query: Query,
    metadata_keys: Iterable[str] | None = None,
    on_corrupt: OnCorrupt = "raise",
) -> dd.DataFrame:
    """Return the rows matching ``query`` as a Dask DataFrame with one partition per day.

    Partitions are in day order and each is sorted by time, as
    [`Log.entries`][comply_lab.lab.log.Log.entries] is; the index restarts at 0 in every
    partition. ``on_corrupt`` is as for [`scan`][comply_lab.lab.scanner.scan]; with ``"skip"``
    each day with damaged segments warns where its partition is computed.

    Raises:
        InvalidQueryError: Dask is not installed.
    """
    try:
        import dask.dataframe as dd
    except ImportError as err:
        raise InvalidQueryError(
            "to_dask needs Dask: pip install 'comply-lab[scale]' (dask[dataframe] and distributed)"
        ) from err
    keys = tuple(metadata_keys or ())
    days = sorted({s.day for s in select_segments(storage, query.start, query.end)})
    meta = entries_frame([], query, keys)
    if not days:
        return dd.from_pandas(meta, npartitions=1)  # type: ignore[no-untyped-call,no-any-return]
    return dd.from_map(  # type: ignore[no-untyped-call,no-any-return]
        _day_frame,
        days,
        args=(storage, query, keys, on_corrupt),
        meta=meta,
        label="comply-lab-day",
        enforce_metadata=False,
    )


def _day_frame(
    day: date,
    storage: Storage,
    query: Query,
    metadata_keys: tuple[str, ...],
    on_corrupt: OnCorrupt,
) -> pd.DataFrame:
    """Return one day's matching rows as ``entries()`` would."""
    read = query.reading_metadata(metadata_keys)
    skipped: list[Segment] | None = [] if on_corrupt == "skip" else None
    tables = [t for ts in day_tables(storage, day, read, skipped) for t in ts]
    warn_skipped(storage, skipped)
    return entries_frame(tables, query, metadata_keys)
