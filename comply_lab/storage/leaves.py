"""The leaves of the log-wide Merkle tree, and what retention keeps of those it deletes.

The tree (see [`comply_lab.integrity.tlog`][comply_lab.integrity.tlog] and ``SPEC.md``) has
one leaf per sealed entry: the sealed parts in the order of their first manifest record, each
part's rows in stored order, each leaf the entry's ``entry_hash``. Deleting a partition must
not make the tree impossible to rebuild, so before retention deletes a sealed part it records,
in its retention record, the largest complete subtrees covering the part's leaves
([`kept_subtrees`][comply_lab.storage.leaves.kept_subtrees]): a few hashes per part, from
which every root and proof that does not look inside the deleted entries is still computed.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any, Protocol

from comply_lab.crypto.merkle import dyadic_blocks, leaf_hash
from comply_lab.errors import CorruptLineWarning, CorruptSegmentError
from comply_lab.model.entry import AuditEntry, entry_hash
from comply_lab.storage.arrow import table_to_entries
from comply_lab.storage.decode import SegmentSource, segment_entries
from comply_lab.storage.manifest import MANIFEST, Extend, parse_records
from comply_lab.storage.parts import PartSource, read_part
from comply_lab.storage.segments import Segment


def tree_parts(records: Iterable[dict[str, Any]]) -> list[Segment]:
    """Return the sealed parts the tree covers, in tree order, from manifest records."""
    seen: dict[str, Segment] = {}
    for record in records:
        name = record.get("segment")
        day = _date(record.get("date"))
        if isinstance(name, str) and name not in seen and day is not None:
            seen[name] = Segment(
                day=day,
                name=name,
                format="jsonl" if name.endswith(".jsonl") else "parquet",
                size=int(record.get("bytes") or 0),
                sealed=True,
                entries=int(record.get("entries") or 0),
            )
    return list(seen.values())


def removed_rows(records: Iterable[dict[str, Any]]) -> dict[str, list[tuple[int, str, str]]]:
    """Return, per part, the rows compaction removed after deletions on request.

    Each is ``(row in the part's first generation, entry id, entry hash)``, from the
    part's newest manifest record (see
    `prune_deleted`).
    """
    found: dict[str, list[tuple[int, str, str]]] = {}
    for record in records:
        name = record.get("segment")
        if isinstance(name, str) and "removed" in record:
            rows = record.get("removed")
            found[name] = [
                (row[0], row[1], row[2])
                for row in (rows if isinstance(rows, list) else [])
                if isinstance(row, list)
                and len(row) == 3
                and isinstance(row[0], int)
                and isinstance(row[1], str)
                and isinstance(row[2], str)
            ]
    return found


def leaf_entry_hash(entry: AuditEntry) -> str:
    """Return the hash an entry contributes to the tree: its ``entry_hash``.

    An entry written by another tool has none; it contributes the SHA-256 of its
    canonical serialization, the value ``entry_hash`` would have.
    """
    return entry.entry_hash or entry_hash(entry.record())


class Source(SegmentSource, PartSource, Protocol):
    """What reading a part's leaves needs of a store."""


def part_hashes(
    storage: Source, part: Segment, removed: Sequence[tuple[int, str, str]] = ()
) -> tuple[list[str], list[str]]:
    """Return the ids and entry hashes of a sealed part (Parquet or JSONL), in stored order.

    ``removed``: the rows compaction removed from the part (see
    [`removed_rows`][comply_lab.storage.leaves.removed_rows]); they are put back in their
    places, so the part gives the leaves it first gave.

    Raises:
        FileNotFoundError: the part is gone.
        CorruptSegmentError: it cannot be decoded, or a JSONL part has damaged lines.
    """
    ids, hashes = _stored_hashes(storage, part)
    for row, entry_id, digest in sorted(removed):
        ids.insert(row, entry_id)
        hashes.insert(row, digest)
    if part.format == "jsonl" and len(ids) != part.entries:
        raise CorruptSegmentError(
            f"{part.name} does not hold the {part.entries} entries its manifest record "
            "counts (damaged or removed lines): verify the log"
        )
    return ids, hashes


def _stored_hashes(storage: Source, part: Segment) -> tuple[list[str], list[str]]:
    if part.format == "jsonl":  # an S3 log may seal JSONL objects
        with warnings.catch_warnings(record=True) as damaged:
            warnings.simplefilter("always", CorruptLineWarning)
            entries = list(segment_entries(storage, part))
        if damaged:
            raise CorruptSegmentError(
                f"{part.name} has damaged lines its manifest record does not count: verify the log"
            )
        return [e.id for e in entries], [leaf_entry_hash(e) for e in entries]
    table = read_part(storage, part, columns=["id", "entry_hash"])
    if table.column("entry_hash").null_count:  # entries another tool wrote
        entries = list(table_to_entries(read_part(storage, part)))
        return [e.id for e in entries], [leaf_entry_hash(e) for e in entries]
    return table.column("id").to_pylist(), table.column("entry_hash").to_pylist()


def tree_place(record: Mapping[str, Any], leaves: Sequence[bytes]) -> Extend:
    """Return how a new part's manifest record is placed in the tree, once its place is known.

    Given the records before it in the manifest, it returns ``tree_start`` (the part's first
    leaf) and ``subtrees`` (the largest complete subtrees covering its leaves, as
    [`dyadic_blocks`][comply_lab.crypto.merkle.dyadic_blocks] gives them, ``[first leaf,
    leaves, hex hash]``): what retention keeps when it deletes the part, recorded while the
    hashes are at hand. A part already in the tree gets nothing.
    """
    name = record.get("segment")

    def place(previous: list[dict[str, Any]]) -> dict[str, Any]:
        parts = tree_parts(previous)
        if any(part.name == name for part in parts):
            return {}
        start = sum(int(part.entries or 0) for part in parts)
        blocks = dyadic_blocks(start, leaves)
        return {"tree_start": start, "subtrees": [[s, n, h.hex()] for s, n, h in blocks]}

    return place


def recorded_subtrees(record: Mapping[str, Any], start: int) -> list[list[Any]] | None:
    """Return the subtrees a part's first manifest record gives, if they are sound.

    Sound: placed at ``start`` (the part's first leaf, as the manifest orders the tree),
    and well formed: complete, aligned subtrees of hex hashes covering exactly its
    ``entries`` leaves from there. Anything else gives None (then they are computed).
    """
    blocks = record.get("subtrees")
    if record.get("tree_start") != start or not isinstance(blocks, list):
        return None
    position = start
    for block in blocks:
        if not (
            isinstance(block, list)
            and len(block) == 3
            and block[0] == position
            and isinstance(block[1], int)
            and block[1] > 0
            and block[1] & (block[1] - 1) == 0
            and position % block[1] == 0
            and isinstance(block[2], str)
            and len(block[2]) == 64
            and all(c in "0123456789abcdef" for c in block[2])
        ):
            return None
        position += block[1]
    return blocks if position == start + int(record.get("entries") or 0) else None


def kept_subtrees(storage: Source, segments: Sequence[Segment]) -> dict[str, list[list[Any]]]:
    """Return, per sealed part among ``segments``, the subtrees covering its leaves.

    Each is ``[first leaf, leaves, hex hash]``, as
    [`dyadic_blocks`][comply_lab.crypto.merkle.dyadic_blocks] gives them. A part with one
    manifest record (no later generation) that holds them, at its place in the tree, gives
    them from there (`tree_place` recorded them at sealing; verification checks them against
    the part's entries); the others are read and hashed. Parts no manifest record describes
    (unsealed JSONL) are not in the tree and are left out, as are parts that vanished or
    cannot be decoded (verification reports those).
    """
    records = [r for _, r in parse_records(storage.read_metadata(MANIFEST)) if r is not None]
    start, offsets = 0, {}
    removed = removed_rows(records)
    generations: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        generations.setdefault(str(record.get("segment")), []).append(record)
    for part in tree_parts(records):
        offsets[part.name] = (start, part)
        start += int(part.entries or 0)
    kept: dict[str, list[list[Any]]] = {}
    for segment in segments:
        if segment.name not in offsets:
            continue
        first, part = offsets[segment.name]
        held = generations[part.name]
        recorded = recorded_subtrees(held[0], first) if len(held) == 1 else None
        if recorded is not None:
            kept[segment.name] = recorded
            continue
        try:
            _, hashes = part_hashes(storage, part, removed.get(part.name, ()))
        except (FileNotFoundError, ValueError, OSError):
            continue
        leaves = [leaf_hash(bytes.fromhex(h)) for h in hashes]
        kept[segment.name] = [[s, n, h.hex()] for s, n, h in dyadic_blocks(first, leaves)]
    return kept


def _date(text: object) -> date | None:
    """Return a record's ``date``, or None if it holds none (a record nobody signed, say)."""
    try:
        return date.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None
