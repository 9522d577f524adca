"""New generations of sealed parts: a part replaced, under its name, by a changed copy.

Key rotation ([`comply_lab.keys.rotate`][comply_lab.keys.rotate]) and compaction after deletions
on request (`prune_deleted`) both replace a sealed part the same crash-safe way: the new
generation is staged where no reader looks, a manifest record for it naming the digest it
replaces is appended, and the staged copy then replaces the part in one step. A run cut short
between record and replacement is finished by the next
([`finish_staged`][comply_lab.storage.generations.finish_staged]).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from comply_lab._time import utc_now
from comply_lab.model.entry import format_timestamp
from comply_lab.storage.arrow import entries_to_table, table_to_entries
from comply_lab.storage.base import Storage
from comply_lab.storage.decode import segment_entries
from comply_lab.storage.deletions import deleted
from comply_lab.storage.idindex import foreign_rows
from comply_lab.storage.leaves import leaf_entry_hash
from comply_lab.storage.manifest import MANIFEST, parse_records
from comply_lab.storage.parts import read_part
from comply_lab.storage.seal import manifest_record
from comply_lab.storage.segments import Segment
from comply_lab.storage.sink import Sink


def latest_records(storage: Storage) -> dict[str, dict[str, Any]]:
    """Return the newest manifest record of each segment (new generations append newer ones)."""
    records: dict[str, dict[str, Any]] = {}
    for _, record in parse_records(storage.read_metadata(MANIFEST)):
        if record is not None:
            records[str(record.get("segment"))] = record
    return records


def finish_staged(storage: Storage, sink: Sink) -> tuple[list[str], list[str]]:
    """Complete what an interrupted replacement left: recorded staged copies are committed.

    Returns:
        The parts whose staged generation was put in place, and the staged copies no
        record names (an attempt cut short before its record), which are discarded.
    """
    records = latest_records(storage)
    finished, cleaned = [], []
    for name, staged in sink.staged().items():
        record = records.get(name)
        recorded = record is not None and record.get("sha256") == staged
        if recorded and sink.digest(name) != staged:
            sink.commit(name)
            finished.append(name)
            continue
        sink.discard(name)
        cleaned.append(name)
    return finished, cleaned


def prune_deleted(storage: Storage, sink: Sink) -> list[str]:
    """Rewrite, once each, the sealed parts that still hold entries deleted on request.

    Only the days deletion records name are looked at. Each part's new generation keeps
    every other row as it was; its manifest record (signed by the sink) lists in
    ``removed`` every row deleted from the part's first generation so far, as ``[row, id,
    entry_hash]``, so the log-wide tree keeps their leaves.

    Returns:
        The parts rewritten.
    """
    finish_staged(storage, sink)
    hidden = deleted(storage)
    if not hidden:
        return []
    records = latest_records(storage)
    pruned = []
    for day in sorted(hidden.days):
        gone = hidden.on(day)
        for segment in storage.segments(day):
            record = records.get(segment.name)
            if (
                segment.sealed
                and record is not None
                and _prune(storage, sink, segment, record, gone)
            ):
                pruned.append(segment.name)
    return pruned


def _prune(
    storage: Storage, sink: Sink, segment: Segment, record: dict[str, Any], gone: frozenset[str]
) -> bool:
    if segment.format == "parquet":
        table = read_part(storage, segment)
    else:
        table = entries_to_table(list(segment_entries(storage, segment)))
    drop = pc.fill_null(pc.is_in(table.column("id"), pa.array(sorted(gone), pa.string())), False)
    if not pc.any(drop).as_py():
        return False
    removed = [list(row) for row in record.get("removed") or []]
    first_rows = _first_generation_rows(table.num_rows, {int(row[0]) for row in removed})
    dropped = pc.indices_nonzero(drop).to_pylist()
    entries = table_to_entries(table.take(pa.array(dropped, pa.int64())))
    for i, entry in zip(dropped, entries, strict=True):
        removed.append([first_rows[i], entry.id, leaf_entry_hash(entry)])
    kept = table.filter(pc.invert(drop))
    sha256, size = sink.stage(segment.name, kept)
    rows = list(table_to_entries(kept))
    damaged = int(record.get("damaged_lines") or 0)
    new, _ = manifest_record(segment.name, str(record.get("source")), segment.day, rows, sha256,
                          size, damaged)  # fmt: skip
    new["foreign_ids"] = len(foreign_rows(rows))
    new["invalid_entries"] = [i for i in record.get("invalid_entries") or [] if i not in gone]
    new.update(
        pruned_from=record.get("sha256"),
        removed=sorted(removed),
        pruned_at=format_timestamp(utc_now()),
    )
    sink.record(new)
    sink.commit(segment.name)
    return True


def _first_generation_rows(count: int, removed: set[int]) -> list[int]:
    """Return, for each of a part's ``count`` rows, its row in the part's first generation."""
    rows: list[int] = []
    at = 0
    while len(rows) < count:
        if at not in removed:
            rows.append(at)
        at += 1
    return rows
