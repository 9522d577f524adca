"""The id index: finding an entry whose id does not name its day without reading every day.

comply_lab's ids are UUIDv7: an id names its day, and a lookup reads only that day. The
original tool's ids (random UUIDv4), and others written through ``write(entry)``, do
not. For those, sealing writes an index *run*: a Parquet file under ``_idindex/`` (where no
dataset reader looks) holding each such id, the part it is in and its row group there,
sorted by id, 8K ids per row group. Its record in the chained, signed ``_ids.jsonl``
trail names the file, its SHA-256, the parts it covers and its *fences* (the first id of
each row group), so a lookup bisects the fences, decodes one row group of each live run
whose ids span its id, then one row group of the part: a few milliseconds whatever the
log's size. Compaction merges the runs into one, stored in files of 64K ids. A reader
without comply_lab can use the runs too, those the trail lists (a file dropped into
``_idindex/`` is no run): ``SELECT part FROM read_parquet([...]) WHERE id = ?``.

Each manifest record names how many of its part's ids do not name their day
(``foreign_ids``). A part whose record lacks it (sealed by an earlier version) and every
unsealed segment are read in full by a lookup, as before. Verification checks each live
run against its record's SHA-256.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from comply_lab.errors import CorruptSegmentError
from comply_lab.model.ids import id_time
from comply_lab.storage.listing import readable
from comply_lab.storage.manifest import IDS, MANIFEST, SIGNERS, parse_records
from comply_lab.storage.segments import ROW_GROUP_SIZE, Segment

if TYPE_CHECKING:
    import pyarrow as pa

    from comply_lab.model.entry import AuditEntry
    from comply_lab.storage.base import Storage
    from comply_lab.storage.sink import Sink

FOLDER = "_idindex"
"""Where index runs are stored, beside the partitions."""
COLUMNS = ("id", "part", "group")
SHARD_ROWS = 64 * 1024
"""Ids per file of a merged run: a lookup in S3 fetches one such file (about 1.5 MB)."""


def foreign_rows(rows: Sequence[AuditEntry]) -> list[tuple[str, int]]:
    """Return the ids among a part's ``rows`` that do not name their day, with their row group."""
    return [(e.id, i // ROW_GROUP_SIZE) for i, e in enumerate(rows) if id_time(e.id) is None]


def run_table(items: Iterable[tuple[str, str, int]]) -> pa.Table:
    """Return a run's table: ``(id, part, group)`` rows sorted by id."""
    import pyarrow as pa

    rows = sorted(items)
    return pa.table(
        {
            "id": pa.array([r[0] for r in rows], pa.string()),
            "part": pa.array([r[1] for r in rows], pa.string()),
            "group": pa.array([r[2] for r in rows], pa.int32()),
        }
    )


def run_bytes(table: pa.Table) -> bytes:
    """Return a run's Parquet bytes (zstd, 8K ids per row group)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", row_group_size=ROW_GROUP_SIZE)
    return bytes(sink.getvalue().to_pybytes())


def run_record(name: str, table: pa.Table, data: bytes, **extra: Any) -> dict[str, Any]:
    """Return the ``_ids.jsonl`` record of run ``name`` (chain fields are added on append)."""
    ids = table.column("id")
    return {
        "kind": "id-index",
        "file": name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "entries": table.num_rows,
        "parts": sorted(set(table.column("part").to_pylist())),
        "fences": [ids[i].as_py() for i in range(0, table.num_rows, ROW_GROUP_SIZE)],
        "last": ids[table.num_rows - 1].as_py() if table.num_rows else None,
        **extra,
    }


def live_runs(data: bytes) -> list[dict[str, Any]]:
    """Return the records of the runs in use, from the ``_ids.jsonl`` trail's bytes."""
    return live_runs_of(r for _, r in parse_records(data) if r is not None)


def live_runs_of(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the records of the runs in use: every run no later record says it merged."""
    runs = [
        r
        for r in records
        if isinstance(r.get("file"), str)
        and isinstance(r.get("fences"), list)
        and isinstance(r.get("parts"), list)
    ]
    merged = {name for r in runs for name in r.get("merges") or []}
    return [r for r in runs if r["file"] not in merged]


def run_segment(record: dict[str, Any]) -> Segment:
    """Return the run a record names, as a segment a store reads."""
    return Segment(date.min, str(record["file"]), "parquet", int(record.get("bytes") or 0), True)


def locate(storage: Storage, entry_id: str) -> tuple[dict[str, list[int]], set[str]]:
    """Return where the index places ``entry_id``, and the parts it vouches for.

    A run vouches for its parts (a lookup that does not find an id there reads none of
    them) only if its bytes are those its record names and, where the store knows its
    root key ([`store_root`][comply_lab.storage.signers.store_root]), its record is signed
    by a key that root certified for sealing. A run that is gone, damaged, rewritten or
    recorded by anyone else covers nothing: a lookup reads its parts in full
    (verification reports the run).

    Returns:
        The parts holding the id, each with its row groups there; and the parts the
        live, trusted runs cover.
    """
    import pyarrow.compute as pc

    from comply_lab.storage.parts import read_groups
    from comply_lab.storage.signers import authority, signed_by, store_root

    root = store_root(storage)
    keys = None if root is None else authority(storage.read_metadata(SIGNERS), root).keys_for(IDS)
    found: dict[str, list[int]] = {}
    covered: set[str] = set()
    broken: set[str] = set()
    for run in live_runs(storage.read_metadata(IDS)):
        parts = {str(p) for p in run["parts"]}
        if keys is not None and not signed_by(run, keys):
            broken |= parts
            continue
        at = bisect.bisect_right(run["fences"], entry_id) - 1
        last = run.get("last")
        if at < 0 or (isinstance(last, str) and entry_id > last):
            covered |= parts
            continue
        try:
            data = storage.read_segment(run_segment(run))
            if hashlib.sha256(data).hexdigest() != run.get("sha256"):
                raise CorruptSegmentError(f"{run['file']} differs from its record")
            table = read_groups(storage, run_segment(run), [at], COLUMNS, data)
        except (FileNotFoundError, CorruptSegmentError):
            broken |= parts
            continue
        covered |= parts
        rows = table.filter(pc.equal(table.column("id"), entry_id)).to_pydict()
        for part, group in zip(rows["part"], rows["group"], strict=True):
            found.setdefault(part, []).append(group)
    return found, covered - broken


def candidates(storage: Storage, entry_id: str) -> list[tuple[Segment, list[int] | None]]:
    """Return the segments that may hold ``entry_id``, with the row groups to read (None: all).

    A UUIDv7 id: the segments of its day. Another id: the parts the index places it in,
    every unsealed segment, and every sealed part that may hold such ids but no readable
    run covers (sealed by earlier versions, cut short before its run was recorded, or
    covered by a run that is gone or damaged). Only a part whose newest manifest record
    counts no such id (``foreign_ids`` 0) is passed over without a run.
    """
    when = id_time(entry_id)
    if when is not None:
        return [(segment, None) for segment in readable(storage, storage.segments(when.date()))]
    latest: dict[str, object] = {}
    for _, r in parse_records(storage.read_metadata(MANIFEST)):
        if r is not None:
            latest[str(r.get("segment"))] = r.get("foreign_ids")
    located, covered = locate(storage, entry_id)
    found: list[tuple[Segment, list[int] | None]] = []
    for day in storage.days():
        for segment in readable(storage, storage.segments(day)):
            name = segment.name
            if name in located:
                found.append((segment, located[name]))
            elif not segment.sealed or (latest.get(name) != 0 and name not in covered):
                found.append((segment, None))
    return found


def merge_runs(storage: Storage, sink: Sink) -> str | None:
    """Merge every live run into one (compaction does, under the maintenance lock).

    Rows of parts no longer listed (deleted by retention) and of ids deleted on request
    are dropped. The merged run is stored and recorded (naming the runs it replaces)
    before they are deleted, so a crash leaves only unused files behind.

    The merged run is split into files of [`SHARD_ROWS`][comply_lab.storage.idindex.SHARD_ROWS]
    ids, each recorded with its first and last id, so a lookup opens one of them.

    Returns:
        The merged run's files (a glob), or None when there was at most one run.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from comply_lab.storage.deletions import deleted
    from comply_lab.storage.parts import read_groups

    records = [r for _, r in parse_records(storage.read_metadata(IDS)) if r is not None]
    runs = live_runs_of(records)
    if len(runs) < 2:
        return None
    listed = {s.name for day in storage.days() for s in storage.segments(day) if s.sealed}
    table = pa.concat_tables(
        [read_groups(storage, run_segment(r), range(len(r["fences"])), COLUMNS) for r in runs]
    )
    kept = pc.is_in(table.column("part"), pa.array(sorted(listed), pa.string()))
    hidden = deleted(storage).ids
    if hidden:
        gone = pc.is_in(table.column("id"), pa.array(sorted(hidden), pa.string()))
        kept = pc.and_(kept, pc.invert(gone))
    table = table.filter(kept)
    table = table.take(pc.sort_indices(table, [("id", "ascending")]))
    replaced = [str(r["file"]) for r in runs]
    starts = range(0, max(table.num_rows, 1), SHARD_ROWS)
    for shard, start in enumerate(starts):
        name = f"{FOLDER}/merged-{len(records):06d}-{shard:04d}.parquet"
        part = table.slice(start, SHARD_ROWS)
        data = run_bytes(part)
        sink.store_index(name, data)
        # The last shard's record retires the runs merged: until then they stay in use.
        done = {"merges": replaced} if shard == len(starts) - 1 else {}
        sink.note(IDS, run_record(name, part, data, **done))
    sink.remove_index(replaced)
    return f"{FOLDER}/merged-{len(records):06d}-*.parquet"
