"""Files dataset readers would read that no manifest record vouches for.

pandas, pyarrow datasets, DuckDB and the SQL engines of ``comply-lab ddl`` read the files
of a log directly, without asking comply_lab which ones are vouched for. A file among
them that no manifest record names is reported ``inserted`` — a planted copy, a fake
generation, anything — with one exception: a sealed part written just before a crash
stopped its sealer, whose JSONL source is still there and holds exactly its entries.
That is ``incomplete`` (a warning: the next seal records it and removes the source),
though readers of the directory already see it.

The other way round, a JSONL source sealing recorded but had not removed yet when it was
stopped is ``incomplete`` too — only if its lines are exactly what its manifest records
vouch for (per day: as many entries, the same Merkle root of their hashes, the same
damaged lines, none altered). Anything else under a recorded source's name is
``inserted``.

A file holding exactly the bytes a retention record says it deleted (its ``digests``) is
``incomplete`` as well: a retention interrupted before it removed the file (running it
again finishes), or bytes restored by hand. comply_lab's readers leave it out (see
[`comply_lab.storage.listing`][comply_lab.storage.listing]); other readers of the files
see it until retention runs again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date
from typing import Any

from comply_lab.crypto.merkle import digest_bytes, merkle_root
from comply_lab.errors import CorruptSegmentError, StorageError
from comply_lab.integrity.lines import classify
from comply_lab.integrity.report import Problem
from comply_lab.model.entry import AuditEntry, entry_hash
from comply_lab.storage.arrow import table_to_entries
from comply_lab.storage.base import Storage
from comply_lab.storage.jsonl import split_lines
from comply_lab.storage.parts import decoding, read_part
from comply_lab.storage.segments import (
    Segment,
    parse_jsonl_name,
    parse_parquet_name,
    source_key,
)

_READERS = "pandas, pyarrow, DuckDB and the SQL engines of `comply-lab ddl`"


def classify_orphan(
    storage: Storage,
    name: str,
    day: date | None,
    hot: Sequence[Segment],
    manifest: Sequence[dict[str, Any]],
) -> Problem:
    """Return the finding for ``name``, a file no manifest record vouches for.

    Args:
        storage: The store.
        name: The file, relative to the root.
        day: Its ``date=`` partition, if it is in one.
        hot: The unsealed segments of the days verified.
        manifest: The authentic manifest records.
    """
    base = name.rsplit("/", 1)[-1]
    records = [r for r in manifest if r.get("source") == name]
    if records and _recorded_source(storage, name, records):
        return Problem(
            "incomplete",
            "sealing of this segment was interrupted after its parts were recorded: it "
            "holds exactly the entries they hold, but was not removed yet (readers skip "
            "it); seal again (comply-lab compact) to finish",
            day,
            name,
        )
    if day is not None and parse_parquet_name(base) is not None:
        source = next((s for s in hot if source_key(s.name) == source_key(name)), None)
        if source is not None and _holds_source(storage, name, day, source):
            return Problem(
                "incomplete",
                f"sealing of {source.name} was interrupted: this part holds exactly its "
                f"entries of {day}, but no manifest record vouches for it yet ({_READERS} "
                "already read it); seal again (comply-lab compact) to finish",
                day,
                name,
            )
    return Problem(
        "inserted",
        f"{_READERS} read this file, but no manifest record vouches for it: forged, "
        "copied in, or left by an operation that did not finish; move it out of the log",
        day,
        name,
    )


def _holds_source(storage: Storage, name: str, day: date, source: Segment) -> bool:
    """Whether part ``name`` holds exactly the entries of ``day`` in its JSONL source.

    The part is decoded only if it declares no more bytes than the source has: a part
    sealed from it does, however well it compressed; a bomb named after it does not.
    """
    try:
        data = storage.read_segment(source)
        part_segment = Segment(day, name, "parquet", 0, True)
        with decoding(storage, part_segment):
            part = list(table_to_entries(read_part(storage, part_segment, honest_size=len(data))))
        lines, _ = split_lines(data)
    except (FileNotFoundError, CorruptSegmentError):
        return False
    expected: list[AuditEntry] = [
        line.entry
        for line in classify(lines)
        if line.entry is not None and line.entry.timestamp.date() == day
    ]
    return part == expected


def _recorded_source(storage: Storage, name: str, records: list[dict[str, Any]]) -> bool:
    """Whether JSONL source ``name`` holds exactly what its manifest ``records`` vouch for."""
    found = parse_jsonl_name(name)
    if found is None:
        return False
    try:
        data = storage.read_segment(Segment(found[0], name, "jsonl", 0, False))
    except (FileNotFoundError, StorageError):
        return False
    lines, tail = split_lines(data)
    classified = list(classify(lines))
    if any(line.kind == "modified" for line in classified):
        return False
    damaged = sum(line.entry is None for line in classified) + bool(tail.strip())
    gone = {i for r in records for i in r.get("removed_on_request") or []}
    by_day: dict[str, list[AuditEntry]] = {}
    for line in classified:
        if line.entry is not None and line.entry.id not in gone:
            by_day.setdefault(line.entry.timestamp.date().isoformat(), []).append(line.entry)
    parts = [r for r in records if r.get("entries")]
    if {r.get("date") for r in parts} != set(by_day) or len(parts) != len(by_day):
        return False
    for record in parts:
        rows = by_day[str(record["date"])]
        leaves = [digest_bytes(e.entry_hash or entry_hash(e.record())) for e in rows]
        if (
            record.get("entries") != len(rows)
            or record.get("damaged_lines", 0) != damaged
            or merkle_root(leaves).hex() != record.get("merkle_root")
        ):
            return False
    return True


def restored_problem(
    segment: Segment, data: bytes, deleted: set[tuple[str, int]] | None
) -> Problem | None:
    """Return ``incomplete`` if ``data`` is exactly what a retention record deleted."""
    if not deleted or (hashlib.sha256(data).hexdigest(), len(data)) not in deleted:
        return None
    return Problem(
        "incomplete",
        "recorded retention deleted these very bytes, yet they are here again: a retention "
        "that was interrupted (run it again), or bytes restored by hand; readers leave the "
        "file out",
        segment.day,
        segment.name,
    )
