"""The Arrow schema of audit entries, defined once, and conversions to and from it.

Parquet segments written with this schema open directly in pandas
(``pandas.read_parquet``), DuckDB (``read_parquet(..., hive_partitioning=true)``), pyarrow
datasets, Spark, Trino and Athena, with no comply_lab import: timestamps are
``timestamp[us, tz=UTC]``, ``metadata`` is a JSON string, lists are ``list<string>``.

This module imports pyarrow; the logging path loads it only when sealing Parquet.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from comply_lab.errors import CorruptRecordError
from comply_lab.model.entry import CONTENT_FIELDS, AuditEntry, encode_line
from comply_lab.storage.segments import ROW_GROUP_SIZE

SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("input_hash", pa.string(), nullable=False),
        pa.field("output_hash", pa.string(), nullable=False),
        pa.field("input_content", pa.string()),
        pa.field("output_content", pa.string()),
        pa.field("provider", pa.string()),
        pa.field("model", pa.string()),
        pa.field("conversation_id", pa.string()),
        pa.field("safety_passed", pa.bool_()),
        pa.field("detectors_triggered", pa.list_(pa.string())),
        pa.field("block_reason", pa.string()),
        pa.field("alerts", pa.list_(pa.string())),
        pa.field("latency_ms", pa.float64()),
        pa.field("input_tokens", pa.int64()),
        pa.field("output_tokens", pa.int64()),
        pa.field("metadata", pa.string(), metadata={"comply_lab.encoding": "json"}),
        pa.field("hash_key_id", pa.string()),
        pa.field("writer_id", pa.string()),
        pa.field("seq", pa.int64()),
        pa.field("prev_hash", pa.string()),
        pa.field("entry_hash", pa.string()),
    ],
    metadata={"comply_lab.schema": "1"},
)
"""The one schema of stored entries (a Parquet segment holds exactly these columns)."""

COLUMNS = tuple(SCHEMA.names)
_ROW = operator.attrgetter(*COLUMNS)
_ID, _TIMESTAMP, _METADATA, _DETECTORS, _ALERTS = (
    COLUMNS.index(n) for n in ("id", "timestamp", "metadata", "detectors_triggered", "alerts")
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WRITE_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "row_group_size": ROW_GROUP_SIZE,
    "write_statistics": True,
    "use_dictionary": ["provider", "model", "writer_id", "block_reason"],
}


def entries_to_table(entries: Sequence[AuditEntry]) -> pa.Table:
    """Return the entries as a table of [`SCHEMA`][comply_lab.storage.arrow.SCHEMA]."""
    if not entries:
        return SCHEMA.empty_table()
    columns: dict[str, Any] = dict(zip(COLUMNS, zip(*map(_ROW, entries), strict=True), strict=True))
    dumps = orjson.dumps
    columns["metadata"] = [dumps(m).decode() for m in columns["metadata"]]
    return pa.Table.from_pydict(columns, schema=SCHEMA)


def table_to_entries(table: pa.Table) -> Iterator[AuditEntry]:
    """Return the rows of a table holding every column of `SCHEMA` as entries, in order.

    Raises:
        KeyError: a column is missing.
        pyarrow.ArrowInvalid: a column cannot be read as its schema type.
    """
    table = table.select(list(COLUMNS))
    if not table.schema.equals(SCHEMA, check_metadata=False):
        table = table.cast(SCHEMA)  # raises ArrowInvalid for values that do not fit
    columns = [table.column(name).to_pylist() for name in COLUMNS if name != "timestamp"]
    # Aware datetimes from pyarrow cost several microseconds each; epoch + offset is exact.
    micros = table.column("timestamp").cast(pa.int64()).to_pylist()
    columns.insert(_TIMESTAMP, [_EPOCH + timedelta(microseconds=us) for us in micros])
    columns[_METADATA] = metadata_dicts(columns[_METADATA], columns[_ID])
    for i in (_DETECTORS, _ALERTS):
        columns[i] = [items or [] for items in columns[i]]
    return map(AuditEntry, *columns)


def metadata_dicts(texts: Sequence[object], ids: Sequence[object] | None = None) -> list[Any]:
    """Return stored ``metadata`` texts as dicts (empty where there is no text).

    Args:
        texts: The ``metadata`` column: JSON texts; anything else (None, NA) means none.
        ids: The entries' ids, to name the one at fault.

    Raises:
        CorruptRecordError: a text is not JSON, or is JSON but not an object.
    """
    loads = orjson.loads
    try:
        parsed = [loads(text) if isinstance(text, str) and text else {} for text in texts]
    except orjson.JSONDecodeError:
        parsed = [_parse(text) for text in texts]
    if all(type(value) is dict for value in parsed):
        return parsed
    for at, value in enumerate(parsed):
        if type(value) is not dict:
            who = f"entry {ids[at]}" if ids is not None else f"row {at}"
            kind = "not valid JSON" if value is _INVALID else f"JSON but a {type(value).__name__}"
            raise CorruptRecordError(f"{who}: metadata is {kind}, where entries hold an object")
    return parsed


_INVALID = object()


def _parse(text: object) -> object:
    if not isinstance(text, str) or not text:
        return {}
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return _INVALID


def native_reader(data: bytes) -> pa.BufferReader:
    """Return a reader over a copy of ``data`` in Arrow's own memory.

    Reading Parquet from a Python object (``io.BytesIO``, or a buffer wrapping ``bytes``)
    leaves Arrow worker threads holding references they release later, which needs the
    Python GIL: if that happens while the interpreter is exiting, the process aborts
    (``terminate called without an active exception``, exit code 134) after its work is
    done. A copy in Arrow's memory is released without Python; the copy costs a memcpy.
    """
    buffer = pa.allocate_buffer(len(data))
    memoryview(buffer).cast("B")[:] = data
    return pa.BufferReader(buffer)


def read_parquet(data: bytes, **options: Any) -> pa.Table:
    """Read a Parquet segment's bytes (``options`` as for ``pyarrow.parquet.read_table``)."""
    return pq.read_table(native_reader(data), **options)


def in_window(table: pa.Table, within: tuple[datetime | None, datetime | None]) -> pa.Table:
    """Return the rows whose ``timestamp`` is inside ``within`` (both ends included)."""
    import pyarrow.compute as pc

    stamps = table.column("timestamp")
    lo, hi = within
    if lo is not None:
        table = table.filter(pc.greater_equal(stamps, pa.scalar(lo, stamps.type)))
        stamps = table.column("timestamp")
    if hi is not None:
        table = table.filter(pc.less_equal(stamps, pa.scalar(hi, stamps.type)))
    return table


def write_parquet(table: pa.Table, file: Any) -> None:
    """Write ``table`` as a Parquet segment (zstd, statistics, row groups) to ``file``."""
    pq.write_table(table, file, **WRITE_OPTIONS)


def table_to_jsonl(table: pa.Table) -> bytes:
    """Return the rows as JSONL lines exactly as the logger writes them (hashes verify)."""
    lines = []
    for entry in table_to_entries(table):
        record = entry.record()
        record.pop("entry_hash")
        if entry.entry_hash is None:  # another tool's record: stored as it came
            lines.append(orjson.dumps(record) + b"\n")
            continue
        contents = [record.pop(name) for name in CONTENT_FIELDS]
        lines.append(encode_line(record, *contents)[1])
    return b"".join(lines)


def parquet_bytes(table: pa.Table) -> bytes:
    """Return ``table`` as the bytes of a Parquet segment (zstd, statistics, row groups)."""
    sink = pa.BufferOutputStream()
    write_parquet(table, sink)
    return bytes(sink.getvalue().to_pybytes())
