"""Decoding sealed Parquet parts: typed errors for damage, a bound on what a part may expand to.

Every reader of Parquet parts (the lab's scans, the logger's queries, counts, retention,
key rotation, verification) decodes through this module, so that:

- **Damage is a** [`CorruptSegmentError`][comply_lab.errors.CorruptSegmentError] naming the part
  and
what
  is wrong — a bad footer, a failed decompression, a truncation, junk bytes, a column of the
  wrong type, text that is not UTF-8, metadata that is not a JSON object — never a raw
  ``OSError`` from Arrow. A part that vanished since it was listed still raises
  ``FileNotFoundError``: the day is listed again (see
  `read_day_segments`).
- **Decompression bombs are refused before decoding.** The footer is read first: a part that
  declares more rows than its manifest record, or more decoded bytes than
  [`EXPANSION_LIMIT`][comply_lab.storage.parts.EXPANSION_LIMIT] times its stored size (and more
  than [`EXPANSION_FLOOR`][comply_lab.storage.parts.EXPANSION_FLOOR]), is decoded only if its
  bytes are exactly those its manifest record vouches for (SHA-256), as a part this project
  sealed from very repetitive content would be. Memory while decoding a part therefore stays
  within a small multiple of the size its footer declares.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from comply_lab.errors import ComplyLabError, CorruptRecordError, CorruptSegmentError
from comply_lab.storage.arrow import SCHEMA, native_reader
from comply_lab.storage.capabilities import LocalFiles
from comply_lab.storage.manifest import MANIFEST, parse_records
from comply_lab.storage.segments import Segment

EXPANSION_LIMIT = 32
"""How many times its stored size a part not vouched for may declare once decoded."""
EXPANSION_FLOOR = 64 * 2**20
"""Declared decoded sizes up to this are always decoded (small parts compress well)."""

DECODE_ERRORS: tuple[type[BaseException], ...] = (
    pa.ArrowException,
    OSError,
    CorruptRecordError,
    KeyError,
    TypeError,
    ValueError,
    OverflowError,
    IndexError,
    MemoryError,
)
"""What decoding damaged Parquet raises, from Arrow, Thrift, the codecs and the entry model."""


class PartSource(Protocol):
    """What decoding a part needs of a store."""

    def read_segment(self, segment: Segment) -> bytes:
        """Return a segment's bytes."""
        ...

    def read_metadata(self, name: str) -> bytes:
        """Return a metadata file's bytes (empty if there is none)."""
        ...


def corrupt_segment(storage: object, segment: Segment, err: BaseException) -> CorruptSegmentError:
    """Return the error for a segment that cannot be decoded."""
    return CorruptSegmentError(
        f"{segment.name} in {storage!r} is not a readable {segment.format} segment ({err}); "
        "verify the log, and move the file aside to read the rest"
    )


@contextmanager
def decoding(storage: object, segment: Segment) -> Iterator[None]:
    """Turn what decoding damaged bytes raises into `CorruptSegmentError`.

    ``FileNotFoundError`` (the segment vanished since it was listed) and comply_lab's own
    errors (a ``StorageError`` reading the bytes, say) pass through; a record that is not
    a valid entry (``CorruptRecordError``) is damage of the segment.
    """
    try:
        yield
    except FileNotFoundError:
        raise
    except CorruptRecordError as err:
        raise corrupt_segment(storage, segment, err) from err
    except ComplyLabError:
        raise
    except DECODE_ERRORS as err:
        raise corrupt_segment(storage, segment, err) from err


def read_part(
    storage: PartSource,
    segment: Segment,
    *,
    columns: Sequence[str] | None = None,
    filters: pc.Expression | None = None,
    filter_columns: Sequence[str] = (),
    honest_size: int = 0,
    row_groups: Sequence[int] | None = None,
    group_column: str | None = None,
) -> pa.Table:
    """Decode a stored Parquet part into a table of [`SCHEMA`][comply_lab.storage.arrow.SCHEMA].

    A local file is read in place; other stores' bytes are copied into Arrow's memory first (see
    [`native_reader`][comply_lab.storage.arrow.native_reader]). Decoding uses Parquet's file
    reader, not the dataset scanner, whose error paths can leave a read waiting forever on a
    damaged file; and row groups are not pruned by their statistics, whose decoding can abort
    the process on a damaged footer (rows are filtered once read: a part holds one row group per
    8K entries).

    Args:
        storage: Where the part is.
        segment: The part.
        columns: The columns to return (all by default).
        filters: Rows to keep, as an Arrow expression over ``filter_columns``.
        filter_columns: Columns ``filters`` reads (read, then dropped).
        honest_size: A decoded size known to be honest without a manifest record (a part
            sealed from a JSONL source decodes to less than the source's bytes); larger
            declared sizes are still refused.
        row_groups: The row groups to decode, by position (all by default; positions past
            the last group are ignored). Never chosen by statistics (see above): a reader
            that kept where rows lie comes back for them, decoding only their groups.
        group_column: If given, the name of an added column holding each row's row group.

    Raises:
        CorruptSegmentError: the part is damaged, or refused as a decompression bomb.
        FileNotFoundError: the part vanished since it was listed.
    """
    with decoding(storage, segment), _opened(storage, segment, honest_size) as parquet:
        count = parquet.metadata.num_row_groups
        groups = range(count) if row_groups is None else [g for g in row_groups if 0 <= g < count]
        return _decode(parquet, columns, filters, filter_columns, groups, group_column)


def read_groups(
    storage: PartSource,
    segment: Segment,
    groups: Sequence[int],
    columns: Sequence[str],
    data: bytes | None = None,
) -> pa.Table:
    """Decode some row groups of a Parquet file that is not a part (an id index run).

    The same checks as [`read_part`][comply_lab.storage.parts.read_part] (typed errors, the
    bound on decoded bytes), without the entry schema. ``data``: the file's bytes, when
    the caller read them already (to check their digest).
    """
    with decoding(storage, segment), _opened(storage, segment, 0, data) as parquet:
        count = parquet.metadata.num_row_groups
        return parquet.read_row_groups([g for g in groups if 0 <= g < count], list(columns))


@contextmanager
def _opened(
    storage: PartSource, segment: Segment, honest_size: int, data: bytes | None = None
) -> Iterator[pq.ParquetFile]:
    """Open a part, local in place or from its bytes, with its footer checked."""
    if data is not None:
        source: Any = native_reader(data)
        size = len(data)
    elif isinstance(storage, LocalFiles):
        source = str(storage.local_path(segment))
        size = segment.size or _file_size(source)
    else:
        data = storage.read_segment(segment)
        source, size = native_reader(data), len(data)
    with pq.ParquetFile(source) as parquet:
        check_footer(storage, segment, parquet.metadata, size, data, honest_size=honest_size)
        yield parquet


def decode_part(
    storage: PartSource,
    segment: Segment,
    data: bytes,
    *,
    count_rows: bool = True,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """Decode a part's bytes already in hand, with the checks of `read_part`.

    Verification passes ``count_rows=False`` to decode a part that grew beyond its
    record (to name the entries added); the bound on decoded bytes still holds.
    """
    with decoding(storage, segment), pq.ParquetFile(native_reader(data)) as parquet:
        check_footer(storage, segment, parquet.metadata, len(data), data, count_rows=count_rows)
        return _decode(parquet, columns, None, ())


def _decode(
    parquet: pq.ParquetFile,
    columns: Sequence[str] | None,
    filters: pc.Expression | None,
    filter_columns: Sequence[str],
    groups: Sequence[int] | None = None,
    group_column: str | None = None,
) -> pa.Table:
    """Read the columns needed (of ``groups``, or all), conform, validate and filter."""
    wanted = list(columns) if columns is not None else list(SCHEMA.names)
    needed = wanted + [c for c in filter_columns if c not in wanted and filters is not None]
    stored = set(parquet.schema_arrow.names)
    read = [c for c in needed if c in stored]
    table = parquet.read(read) if groups is None else parquet.read_row_groups(groups, read)
    table = _conform(table, needed)
    check_values(table)
    if group_column is not None:
        groups = range(parquet.metadata.num_row_groups) if groups is None else groups
        sizes = [parquet.metadata.row_group(g).num_rows for g in groups]
        positions = pa.array(np.repeat(np.asarray(groups, np.int64), sizes))
        table = table.append_column(group_column, positions)
        wanted.append(group_column)
    if filters is not None:
        table = table.filter(filters)
    return table.select(wanted)


def check_values(table: pa.Table) -> None:
    """Check every value of ``table`` against its type, strings' UTF-8 included.

    Parquet readers do not check that strings are UTF-8: an invalid one would fail much
    later, converted to Python far from its file.

    Raises:
        pyarrow.ArrowInvalid: a value is not valid for its type.
    """
    table.validate(full=True)


def _conform(table: pa.Table, names: list[str]) -> pa.Table:
    """Return the columns ``names`` with their schema types (missing ones as nulls)."""
    fields = [SCHEMA.field(name) for name in names]
    arrays = []
    for field in fields:
        if field.name not in table.column_names:
            arrays.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table.column(field.name)
        arrays.append(column if column.type == field.type else column.cast(field.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, SCHEMA.metadata))


def part_rows(storage: PartSource, segment: Segment) -> int:
    """Return how many rows a part's footer declares (typed errors as `read_part`)."""
    with decoding(storage, segment):
        if isinstance(storage, LocalFiles):
            return int(pq.read_metadata(str(storage.local_path(segment))).num_rows)
        return int(pq.read_metadata(native_reader(storage.read_segment(segment))).num_rows)


def check_footer(
    storage: PartSource,
    segment: Segment,
    footer: pq.FileMetaData,
    stored: int,
    data: bytes | None = None,
    *,
    count_rows: bool = True,
    honest_size: int = 0,
) -> None:
    """Refuse a part whose footer declares more than its manifest record or a bomb's expansion.

    Args:
        storage: Where the part and its manifest are.
        segment: The part; ``segment.entries`` is its manifest record's count, if any
            (else ``segment.ceiling`` limits its rows).
        footer: The part's Parquet footer.
        stored: The part's size in bytes.
        data: The part's bytes, if already read (to compare with its record's SHA-256).
        count_rows: Whether to refuse more rows than the record holds.
        honest_size: A decoded size accepted without a record (see
            [`read_part`][comply_lab.storage.parts.read_part]).

    Raises:
        CorruptSegmentError: more rows than the record, or an expansion no record vouches for.
    """
    limit = segment.entries if segment.entries is not None else segment.ceiling
    if count_rows and limit is not None and footer.num_rows > limit:
        raise CorruptSegmentError(
            f"{segment.name} in {storage!r} declares {footer.num_rows} rows but its manifest "
            f"record holds {limit}: refused before decoding; verify the log"
        )
    declared = sum(footer.row_group(i).total_byte_size for i in range(footer.num_row_groups))
    if declared <= max(EXPANSION_FLOOR, EXPANSION_LIMIT * stored, honest_size):
        return
    if _vouched(storage, segment, data):
        return
    raise CorruptSegmentError(
        f"{segment.name} in {storage!r} declares {declared} bytes once decoded from {stored} "
        f"stored (more than {EXPANSION_LIMIT} times), and no manifest record vouches for its "
        "bytes: refused before decoding, as a decompression bomb would be; verify the log, "
        "and move the file aside to read the rest"
    )


def _vouched(storage: PartSource, segment: Segment, data: bytes | None) -> bool:
    """Whether the last manifest record of the part holds the SHA-256 of its bytes."""
    expected = None
    for _, record in parse_records(storage.read_metadata(MANIFEST)):
        if record is not None and record.get("segment") == segment.name:
            expected = record.get("sha256")
    if expected is None:
        return False
    body = data if data is not None else storage.read_segment(segment)
    return bool(hashlib.sha256(body).hexdigest() == expected)


def _file_size(path: str) -> int:
    return os.stat(path).st_size
