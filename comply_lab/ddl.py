"""External-table definitions: the sealed log as a table in Athena, Spark, Trino or DuckDB.

Sealed segments are plain Parquet files under Hive-style day folders
(``<root>/date=YYYY-MM-DD/part-*.parquet``), all with one schema
([`comply_lab.storage.arrow.SCHEMA`][comply_lab.storage.arrow.SCHEMA]), so SQL engines read them
directly; no comply_lab code runs in the engine. [`table_ddl`][comply_lab.ddl.table_ddl] writes
the statement for one engine from that schema, so the column types are always the stored ones:

- ``timestamp`` is UTC with microseconds (``TIMESTAMP WITH TIME ZONE`` in DuckDB;
  ``TIMESTAMP`` in Spark, read as an instant; Trino and Athena keep milliseconds unless
  the catalog's timestamp precision is raised);
- ``metadata`` is a JSON string (``json_extract_scalar`` / ``get_json_object`` /
  ``->>``); ``detectors_triggered`` and ``alerts`` are arrays of strings;
- ``date`` is the partition column, the entry's UTC day. Athena finds partitions by
  *projection* (no crawler, no ``MSCK REPAIR``), over the range from the log's first day
  to now.

Only sealed segments are visible: JSONL segments still being written (or never
compacted) are not Parquet, and the statement says how many there are. Files whose names
start with ``.`` or ``_`` (temporaries, ``_manifest``, ``_sealed``) are skipped by every
engine.
"""

from __future__ import annotations

import re
from typing import Literal, get_args

import pyarrow as pa

from comply_lab._time import utc_now
from comply_lab.errors import ConfigurationError, InvalidQueryError
from comply_lab.storage.arrow import SCHEMA
from comply_lab.storage.base import Storage
from comply_lab.storage.capabilities import Located

Engine = Literal["athena", "spark", "trino", "duckdb"]
ENGINES: tuple[str, ...] = get_args(Engine)

_HIVE = {pa.string(): "STRING", pa.bool_(): "BOOLEAN", pa.int64(): "BIGINT", pa.float64(): "DOUBLE"}
_TRINO = {
    pa.string(): "VARCHAR",
    pa.bool_(): "BOOLEAN",
    pa.int64(): "BIGINT",
    pa.float64(): "DOUBLE",
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def table_ddl(storage: Storage, engine: str, table: str = "audit_log") -> str:
    """Return the SQL that declares the log's Parquet layout as table ``table`` in ``engine``.

    Raises:
        InvalidQueryError: an unknown engine or an unusable table name, a store that is
            neither a directory nor S3, or one whose day folders hold JSONL segments
            (an S3 log written with ``format="jsonl"``), which engines cannot read as
            Parquet.
    """
    if engine not in ENGINES:
        raise InvalidQueryError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if not _NAME.match(table):
        raise InvalidQueryError(
            f"table name {table!r} must be letters, digits and underscores, not starting "
            "with a digit"
        )
    root = _root(storage)
    days = storage.days()
    segments = [s for day in days for s in storage.segments(day)]
    if any(s.format == "jsonl" and s.name.startswith("date=") for s in segments):
        raise InvalidQueryError(
            f"{storage} keeps JSONL segments in its day folders, which SQL engines would "
            "read as Parquet; log to it with format='parquet' to query it from SQL"
        )
    first = (days[0] if days else utc_now().date()).isoformat()
    unsealed = sum(s.format == "jsonl" for s in segments)
    note = (
        f"-- {unsealed} JSONL segment(s) not yet sealed are not visible here; "
        "run `comply-lab compact` (or log with format='parquet') to include them.\n"
        if unsealed
        else ""
    )
    build = {"athena": _athena, "spark": _spark, "trino": _trino, "duckdb": _duckdb}[engine]
    return note + build(table, root, first)


def _literal(text: str, *, hive: bool = False) -> str:
    """Return ``text`` as it goes inside a single-quoted SQL string.

    Standard SQL (Trino, DuckDB) doubles a quote; Hive and Spark SQL escape with a
    backslash (there, two quoted strings side by side would be joined).
    """
    if hive:
        return text.replace("\\", "\\\\").replace("'", "\\'")
    return text.replace("'", "''")


def _root(storage: Storage) -> str:
    if isinstance(storage, Located):
        return storage.location()
    raise ConfigurationError(
        f"{storage!r} has no location an SQL engine can read; DDL is for log directories "
        "and s3:// logs"
    )


def _columns(types: dict[pa.DataType, str], timestamp: str, quote: str) -> str:
    lines = []
    for field in SCHEMA:
        if field.type == pa.timestamp("us", tz="UTC"):
            kind = timestamp
        elif field.type == pa.list_(pa.string()):
            kind = f"ARRAY<{types[pa.string()]}>" if quote == "`" else "ARRAY(VARCHAR)"
        else:
            kind = types[field.type]
        lines.append(f"  {quote}{field.name}{quote} {kind}")
    return ",\n".join(lines)


def _athena(table: str, root: str, first: str) -> str:
    _need_s3(root, "Athena")
    root = _literal(root, hive=True)
    return f"""CREATE EXTERNAL TABLE IF NOT EXISTS {table} (
{_columns(_HIVE, "TIMESTAMP", "`")}
)
PARTITIONED BY (`date` STRING)
STORED AS PARQUET
LOCATION '{root}'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.date.type' = 'date',
  'projection.date.format' = 'yyyy-MM-dd',
  'projection.date.range' = '{first},NOW',
  'projection.date.interval' = '1',
  'projection.date.interval.unit' = 'DAYS',
  'storage.location.template' = '{root}date=${{date}}/'
);
"""


def _spark(table: str, root: str, first: str) -> str:
    location = _literal(root.replace("s3://", "s3a://", 1), hive=True)
    return f"""CREATE TABLE IF NOT EXISTS {table} (
{_columns(_HIVE, "TIMESTAMP", "`")},
  `date` DATE
)
USING PARQUET
PARTITIONED BY (`date`)
LOCATION '{location}';
-- Register the day folders (again after new days are sealed):
MSCK REPAIR TABLE {table};
"""


def _trino(table: str, root: str, first: str) -> str:
    root = _literal(root)
    return f"""-- In a Hive-connector catalog. To keep microseconds, set hive.timestamp-precision =
-- MICROSECONDS in the catalog (or SET SESSION <catalog>.timestamp_precision = 'MICROSECONDS').
CREATE TABLE IF NOT EXISTS {table} (
{_columns(_TRINO, "TIMESTAMP", '"')},
  "date" VARCHAR
)
WITH (
  external_location = '{root}',
  format = 'PARQUET',
  partitioned_by = ARRAY['date']
);
-- Register the day folders (again after new days are sealed); name the table's schema:
CALL system.sync_partition_metadata('default', '{table}', 'ADD');
"""


def _duckdb(table: str, root: str, first: str) -> str:
    location = _literal(root.removeprefix("file://"))
    setup = (
        "INSTALL httpfs;\nLOAD httpfs;\n"
        "CREATE SECRET IF NOT EXISTS (TYPE s3, PROVIDER credential_chain);\n"
        if root.startswith("s3://")
        else ""
    )
    return f"""{setup}CREATE OR REPLACE VIEW {table} AS
SELECT * FROM read_parquet(
  '{location}date=*/*.parquet',
  hive_partitioning = true,
  hive_types = {{'date': DATE}}
);
"""


def _need_s3(root: str, engine: str) -> None:
    if not root.startswith("s3://"):
        raise InvalidQueryError(f"{engine} reads tables from S3; pass the log's s3:// URL")
