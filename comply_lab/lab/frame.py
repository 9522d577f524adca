"""Arrow tables to pandas DataFrames with the dtypes an investigator expects.

- ``timestamp``: ``datetime64[us, UTC]`` (tz-aware, plots and resamples directly);
- strings: pandas' pyarrow-backed ``string`` dtype; missing values are ``<NA>``;
- ``safety_passed``: nullable ``boolean``; token counts and ``seq``: nullable ``Int64``;
- ``latency_ms``: ``float64``;
- ``detectors_triggered`` and ``alerts``: Arrow list dtype (``list<item: string>[pyarrow]``);
- ``metadata``: the JSON string as stored; chosen keys can be expanded into columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from comply_lab.errors import InvalidQueryError
from comply_lab.lab.query import Query
from comply_lab.storage.arrow import metadata_dicts
from comply_lab.storage.base import Storage
from comply_lab.storage.decode import count_day
from comply_lab.storage.deletions import deleted
from comply_lab.storage.listing import readable

_TYPES: dict[pa.DataType, object] = {
    pa.string(): pd.StringDtype("pyarrow"),
    pa.bool_(): pd.BooleanDtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.list_(pa.string()): pd.ArrowDtype(pa.list_(pa.string())),
}


def to_frame(table: pa.Table, metadata_keys: Sequence[str] | None = None) -> pd.DataFrame:
    """Convert a table of entry columns to a DataFrame, expanding chosen metadata keys.

    Args:
        table: Columns of the entry schema.
        metadata_keys: Metadata keys to add as columns named after the key (needs the
            ``metadata`` column); a missing key gives ``<NA>``.

    Raises:
        InvalidQueryError: a metadata key would replace an entry column, or ``metadata``
            was not read.
    """
    frame: pd.DataFrame = table.to_pandas(types_mapper=_TYPES.get, self_destruct=True)
    for key in metadata_keys or ():
        if key in frame.columns:
            raise InvalidQueryError(
                f"metadata key {key!r} has the name of an entry column; read the metadata "
                "column and expand it yourself, e.g. df.metadata.map(json.loads)"
            )
        if "metadata" not in frame.columns:
            raise InvalidQueryError("metadata_keys needs the 'metadata' column; add it to columns")
    if metadata_keys:
        ids = list(frame["id"]) if "id" in frame.columns else None
        parsed = metadata_dicts(list(frame["metadata"]), ids)
        for key in metadata_keys:
            frame[key] = pd.Series([d.get(key) for d in parsed], index=frame.index).convert_dtypes()
    return frame


def entries_frame(
    tables: list[pa.Table], query: Query, metadata_keys: Sequence[str] = ()
) -> pd.DataFrame:
    """Return scanned tables as the DataFrame of `comply_lab.Log.entries`.

    Rows are sorted by time (stably: segments come in day order and rows in write order,
    so only interleaved writers need the sort); ``metadata`` is kept only if ``query``
    asked for it, though it was read to expand ``metadata_keys``.
    """
    read = query.reading_metadata(metadata_keys)
    table = pa.concat_tables(tables) if tables else read.schema.empty_table()
    if "timestamp" in table.column_names and not _is_sorted(table.column("timestamp")):
        table = table.take(pc.sort_indices(table, sort_keys=[("timestamp", "ascending")]))
    frame = to_frame(table, metadata_keys)
    if read is not query:
        frame = frame.drop(columns="metadata")
    return frame


def _is_sorted(column: pa.ChunkedArray) -> bool:
    if len(column) < 2:
        return True
    values = column.combine_chunks() if column.num_chunks > 1 else column.chunk(0)
    return bool(pc.all(pc.less_equal(values[:-1], values[1:])).as_py())


PARTITION_COLUMNS = ["date", "segments", "entries", "bytes", "format", "sealed"]


def partitions_frame(storage: Storage) -> pd.DataFrame:
    """Return one row per day partition of ``storage`` (see `Log.partitions`).

    Entries are counted from the manifest or Parquet footers where known; entries deleted
    on request are not counted, even before compaction removes them from the files.
    """
    rows = []
    hidden = deleted(storage)
    for day in storage.days():
        segments = readable(storage, storage.segments(day))
        if not segments:
            continue  # everything in it is left out (see comply_lab.storage.listing)
        formats = sorted({s.format for s in segments})
        rows.append(
            {
                "date": day,
                "segments": len(segments),
                "entries": count_day(storage, day, hidden),
                "bytes": sum(s.size for s in segments),
                "format": formats[0] if len(formats) == 1 else "mixed",
                "sealed": all(s.sealed for s in segments),
            }
        )
    frame = pd.DataFrame(rows, columns=PARTITION_COLUMNS)
    return frame.astype(
        {"segments": "int64", "entries": "int64", "bytes": "int64", "sealed": "bool"}
    )
