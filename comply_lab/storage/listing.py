"""What readers read: unsealed segments, and the sealed ones a manifest record names.

A sealed segment (a Parquet part, or a sealed JSONL object) is part of the log only once
a manifest record names it: sealing records a part before publishing it, so an honest
part is never without one. Readers (`entries()`, `sql()`, `dataset()`, `entry(id)`,
`len()`, `partitions()`, the explorer, bundles) therefore read a sealed segment only when
a record of the manifest names it — a record that is chained and hash-valid, and, when
the store knows its root key, signed by the root or a key it certified for ``seal`` (see
[`trail_records`][comply_lab.storage.signers.trail_records]). Any other sealed file
(planted, or named only by a record nobody signed) is left out with one
[`IntegrityWarning`][comply_lab.errors.IntegrityWarning] naming it: it costs a listing
entry, not a read. Verification reports such files ``inserted``.

Retention records the digest and size of each segment it deletes (``digests``). A
segment present again with exactly those bytes — a retention that was interrupted
before it removed the file, or bytes someone restored — is left out too, with a warning:
what the trusted records say was deleted is not shown. Verification reports it
``incomplete`` (run retention again).

Unsealed JSONL segments are listed as they are; their lines are vetted one by one when
read (see [`comply_lab.storage.vetting`][comply_lab.storage.vetting]).
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from comply_lab.crypto.signing import key_id
from comply_lab.errors import IntegrityWarning
from comply_lab.storage.manifest import MANIFEST, RETENTION
from comply_lab.storage.segments import Segment
from comply_lab.storage.signers import MetadataSource, store_root, trail_records


@dataclass(frozen=True)
class Trusted:
    """What a store's trusted records say of its segments.

    Attributes:
        digests: Each segment a manifest record names -> the SHA-256 its newest record gives.
        deleted: Each segment retention deleted -> the ``(sha256, size)`` it had then.
    """

    digests: dict[str, str | None] = field(default_factory=dict)
    deleted: dict[str, set[tuple[str, int]]] = field(default_factory=dict)


def trusted(storage: MetadataSource) -> Trusted:
    """Return what the store's trusted manifest and retention records say of its segments.

    The answer is kept on the store until those trails (or its root key) change.
    """
    data = storage.read_metadata(MANIFEST) + b"\0" + storage.read_metadata(RETENTION)
    root = store_root(storage)
    stamp = (hashlib.sha256(data).digest(), None if root is None else key_id(root))
    cached = getattr(storage, "_trusted_segments", None)
    if cached is not None and cached[0] == stamp:
        found: Trusted = cached[1]
        return found
    digests: dict[str, str | None] = {}
    for record in trail_records(storage, MANIFEST):
        sha = record.get("sha256")
        digests[str(record.get("segment"))] = sha if isinstance(sha, str) else None
    found = Trusted(digests, deleted_digests(trail_records(storage, RETENTION)))
    with contextlib.suppress(AttributeError):  # a store without attributes: computed each time
        storage._trusted_segments = (stamp, found)  # type: ignore[attr-defined]
    return found


def deletion_digests(storage: MetadataSource, segments: Sequence[Segment]) -> dict[str, list[Any]]:
    """Return ``[sha256, size]`` of each segment retention is about to delete.

    Sealed segments take them from their newest trusted manifest record; unsealed JSONL
    ones are read and hashed. Segments of another tool's layout are left out.
    """
    digests = trusted(storage).digests
    found: dict[str, list[Any]] = {}
    for segment in segments:
        sha = digests.get(segment.name)
        if segment.sealed and sha is not None:
            found[segment.name] = [sha, segment.size]
        elif not segment.sealed and segment.format == "jsonl":
            with contextlib.suppress(FileNotFoundError):
                data = storage.read_segment(segment)  # type: ignore[attr-defined]
                found[segment.name] = [hashlib.sha256(data).hexdigest(), len(data)]
    return found


def deleted_digests(records: Iterable[dict[str, Any]]) -> dict[str, set[tuple[str, int]]]:
    """Return, from retention records, each deleted segment's ``(sha256, size)`` values."""
    deleted: dict[str, set[tuple[str, int]]] = {}
    for record in records:
        for name, pair in (record.get("digests") or {}).items():
            if isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], int):
                deleted.setdefault(str(name), set()).add((str(pair[0]), pair[1]))
    return deleted


def restored(storage: Any, segment: Segment, view: Trusted) -> bool:
    """Whether ``segment`` holds exactly the bytes a retention record says it deleted."""
    gone = view.deleted.get(segment.name)
    if not gone:
        return False
    if segment.sealed:
        current = view.digests.get(segment.name)
        return any(sha == current for sha, _ in gone)
    if all(size != segment.size for _, size in gone):
        return False
    try:
        data = storage.read_segment(segment)
    except FileNotFoundError:
        return False
    return (hashlib.sha256(data).hexdigest(), len(data)) in gone


def readable(storage: object, segments: Iterable[Segment]) -> list[Segment]:
    """Return the ``segments`` readers read (see the module documentation).

    Warns once (`IntegrityWarning`) when some segment is left out.
    """
    listed = list(segments)
    if not isinstance(storage, MetadataSource) or not listed:
        return listed
    view = trusted(storage)
    if not view.deleted and not any(s.sealed for s in listed):
        return listed
    planted = [s.name for s in listed if s.sealed and s.name not in view.digests]
    back = [s.name for s in listed if s.name not in planted and restored(storage, s, view)]
    if planted:
        _warn(
            planted,
            "sealed file(s) that no trusted manifest record names were not read",
            "planted, or recorded by a key the log's root did not certify",
        )
    if back:
        _warn(
            back,
            "file(s) that recorded retention deleted are present again, and were not read",
            "a retention that was interrupted (run it again), or restored bytes",
        )
    left_out = set(planted) | set(back)
    return [s for s in listed if s.name not in left_out]


def _warn(names: list[str], what: str, why: str) -> None:
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3:,} more" if len(names) > 3 else "")
    warnings.warn(
        f"{len(names):,} {what} ({shown}): {why}; verify the log (comply-lab verify "
        "--public-key ...)",
        IntegrityWarning,
        stacklevel=4,
    )
