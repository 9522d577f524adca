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

Unsealed JSONL segments are read as they are; verification says whether a heartbeat
vouched for them (``unsealed``) or not (``pending``, in a signed log).
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from collections.abc import Iterable

from comply_lab.crypto.signing import key_id
from comply_lab.errors import IntegrityWarning
from comply_lab.storage.manifest import MANIFEST
from comply_lab.storage.segments import Segment
from comply_lab.storage.signers import MetadataSource, store_root, trail_records


def named_segments(storage: MetadataSource) -> frozenset[str]:
    """Return the segment names the store's trusted manifest records name.

    The answer is kept on the store until its manifest (or root key) changes.
    """
    data = storage.read_metadata(MANIFEST)
    root = store_root(storage)
    stamp = (hashlib.sha256(data).digest(), None if root is None else key_id(root))
    cached = getattr(storage, "_named_segments", None)
    if cached is not None and cached[0] == stamp:
        return frozenset(cached[1])
    names = frozenset(str(r.get("segment")) for r in trail_records(storage, MANIFEST))
    with contextlib.suppress(AttributeError):  # a store without attributes: computed each time
        storage._named_segments = (stamp, names)  # type: ignore[attr-defined]
    return names


def readable(storage: object, segments: Iterable[Segment]) -> list[Segment]:
    """Return the ``segments`` readers read: unsealed ones, and sealed ones a record names.

    Warns once (`IntegrityWarning`) when some sealed segment is left out.
    """
    listed = list(segments)
    if not isinstance(storage, MetadataSource) or not any(s.sealed for s in listed):
        return listed
    names = named_segments(storage)
    left_out = [s.name for s in listed if s.sealed and s.name not in names]
    if not left_out:
        return listed
    shown = ", ".join(left_out[:3]) + (
        f" and {len(left_out) - 3:,} more" if len(left_out) > 3 else ""
    )
    warnings.warn(
        f"{len(left_out):,} sealed file(s) that no trusted manifest record names were not "
        f"read ({shown}): planted, or recorded by a key the log's root did not certify; "
        "verify the log (comply-lab verify --public-key ...)",
        IntegrityWarning,
        stacklevel=3,
    )
    return [s for s in listed if not s.sealed or s.name in names]
