"""Segments: the files (or objects) a day partition is made of, and how they are named.

A day partition holds **segments** in write order:

- JSONL segments ``audit_YYYYMMDD.jsonl``, ``audit_YYYYMMDD_001.jsonl``, ... are appended to
  by writers (the hot segment) and are the write-ahead log of Parquet stores;
- sealed Parquet segments ``date=YYYY-MM-DD/part-YYYYMMDD-NNN.parquet``, named after the
  JSONL segment they were sealed from. Readers follow the manifest: a part it records
  replaces its JSONL source, while a part it does not record yet (sealing was interrupted
  before the record) is left aside as long as its source is there, so no entry is read
  twice and nothing unvouched shadows what was written.

Names starting with ``_`` or ``.`` are never data (dataset readers skip them):
``_staging/`` holds new generations of parts waiting to replace them (key rotation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

SegmentFormat = Literal["jsonl", "parquet"]
SegmentOrigin = Literal["stored", "spool", "legacy"]
"""Where a segment is: in the store (``stored``), in an S3 store's local spool waiting for
upload (``spool``), or the original tool's per-entry S3 objects of one day read as one
segment (``legacy``)."""

_JSONL = re.compile(r"^audit_(\d{8})(?:_(\d{3,}))?\.jsonl$")
_PARQUET = re.compile(r"^part-(\d{8})-(\d{3,})\.parquet$")
_OBJECT = re.compile(r"^date=\d{4}-\d{2}-\d{2}/part-\d{8}-\d{3,}-[0-9a-f]{6,}\.(?:parquet|jsonl)$")
_PARTITION = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
_SOURCE = re.compile(
    r"(?:^|/)(?:audit_(\d{8})(?:_(\d{3,}))?\.jsonl"
    r"|part-(\d{8})-(\d{3,})(?:-([0-9a-f]{6,}))?\.(?:parquet|jsonl))$"
)
STAGING = "_staging"
"""Where new generations of sealed parts wait to replace them (no dataset reader looks)."""
SEALED = "_sealed"
"""Folder of empty marker files, one per sealed JSONL segment: its index is never reused."""
QUARANTINE = "_quarantine"
"""Where sealing keeps the bytes of damaged lines (nothing stored is dropped)."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One readable segment of a day partition.

    Attributes:
        day: The UTC day partition.
        name: Path relative to the store root (``audit_20260129.jsonl`` or
            ``date=2026-01-29/part-20260129-000.parquet``).
        format: ``"jsonl"`` or ``"parquet"``.
        size: Size in bytes.
        sealed: True for immutable segments; False for JSONL still open to appends.
        entries: Number of entries when known without reading (from the manifest).
        origin: Where it is (see [`SegmentOrigin`][comply_lab.storage.segments.SegmentOrigin]);
            readers and retention decide by it.
        ceiling: The most rows any generation of the part held, per the manifest: the row
            limit when ``entries`` is unknown (a part compaction rewrote).
    """

    day: date
    name: str
    format: SegmentFormat
    size: int
    sealed: bool
    entries: int | None = None
    origin: SegmentOrigin = "stored"
    ceiling: int | None = None


ROW_GROUP_SIZE = 8 * 1024
"""Rows per Parquet row group: large enough to compress well, small enough that a reader
coming back for a few rows (the explorer's ranked pages, an id lookup) decodes little
more than them."""


def day_digits(day: date) -> str:
    """Return ``YYYYMMDD`` for ``day``, four-digit year included (strftime drops zeros)."""
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


def jsonl_name(day: date, index: int) -> str:
    """Return the name of JSONL segment ``index`` (0 is the first) of ``day``."""
    stem = f"audit_{day_digits(day)}"
    return f"{stem}.jsonl" if index == 0 else f"{stem}_{index:03d}.jsonl"


def partition_dir(day: date) -> str:
    """Return the Hive partition directory of ``day``: ``date=YYYY-MM-DD``."""
    return f"date={day.isoformat()}"


def parquet_name(partition: date, source_day: date, index: int) -> str:
    """Return the path of the Parquet segment sealed from JSONL segment (source_day, index)."""
    return f"{partition_dir(partition)}/part-{day_digits(source_day)}-{index:03d}.parquet"


def parse_jsonl_name(name: str) -> tuple[date, int] | None:
    """Return (day, index) of a JSONL segment file name, or None for other names."""
    match = _JSONL.match(name)
    if match is None:
        return None
    day = _day(match.group(1), "%Y%m%d")
    return None if day is None else (day, int(match.group(2) or 0))


def source_key(name: str, spool_id: str = "") -> str:
    """Return what a segment was made from, so a reader never reads one source twice.

    A JSONL segment and its sealed or re-encrypted Parquet parts share the key.

    ``spool_id`` names the spool a local JSONL segment belongs to, for S3 spools (whose
    uploaded objects carry it). Names of no known shape are their own key.
    """
    match = _SOURCE.search(name)
    if match is None:
        return name
    day, index, spool = (
        (match.group(1), match.group(2) or "0", spool_id)
        if match.group(1)
        else (match.group(3), match.group(4), match.group(5) or "")
    )
    return f"{day}-{int(index):03d}-{spool}"


def parse_parquet_name(name: str) -> tuple[date, int] | None:
    """Return the (source day, index) a Parquet segment file name was sealed from."""
    match = _PARQUET.match(name)
    if match is None:
        return None
    day = _day(match.group(1), "%Y%m%d")
    return None if day is None else (day, int(match.group(2)))


def is_sealed_object(name: str) -> bool:
    """Whether ``name`` is a sealed S3 object as comply_lab names them.

    ``date=YYYY-MM-DD/part-YYYYMMDD-NNN-<spool>.parquet`` (or ``.jsonl``): readers read
    those; anything else in a day folder is not a segment (verification reports it if a
    dataset reader would read it).
    """
    return _OBJECT.match(name) is not None


def parse_partition(name: str) -> date | None:
    """Return the day of a ``date=YYYY-MM-DD`` directory name, or None."""
    match = _PARTITION.match(name)
    return None if match is None else _day(match.group(1), "%Y-%m-%d")


def _day(text: str, fmt: str) -> date | None:
    try:
        return datetime.strptime(text, fmt).date()
    except ValueError:
        return None


def reader_visible(name: str) -> bool:
    """Whether some documented dataset reader reads the file ``name`` (relative to the root).

    pandas, pyarrow datasets, Spark, Trino and Athena read every file below the root
    whose path has no part starting with ``_`` or ``.``; the DuckDB view that
    ``comply-lab ddl`` prints reads ``date=*/*.parquet``, hidden names included.
    """
    parts = name.split("/")
    if not any(part.startswith(("_", ".")) for part in parts):
        return True
    return len(parts) == 2 and parts[0].startswith("date=") and parts[1].endswith(".parquet")
