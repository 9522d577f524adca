"""What readers show of an unsealed JSONL segment: its lines that something vouches for.

A sealed segment is read only when a trusted manifest record names it (see
[`comply_lab.storage.listing`][comply_lab.storage.listing]). An unsealed JSONL segment has
no such record, so its lines are vetted one by one before any reader (`entries()`,
`sql()`, `dataset()`, `entry(id)`, `len()`, `partitions()`, the explorer, bundles)
shows them:

- a line whose values do not give its own ``entry_hash`` (an edited value, or a key given
  twice so that JSON readers keep another value than the hashed one) is left out;
- in a signed log — the store knows its root key (pinned with ``public_key=``, or its own
  signing key) and the log has a genesis record that root signed — a line of a writer no
  signed registration names is left out, unless it lies within the bytes the root
  vouched for when it adopted the log (lines of the original tool name no writer).

Each segment that loses lines gives one
[`IntegrityWarning`][comply_lab.errors.IntegrityWarning] saying how many and why, and
verification reports the same lines (``modified``, ``unregistered``). Lines of registered
writers written after the newest heartbeat are shown: they are a running writer's newest
entries, and verification calls them ``pending`` until its next beat.

Checking the hashes costs about 6 µs per unsealed entry (half again the cost of parsing
it); sealed parts are not re-hashed by readers, since their manifest record vouches for
their bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings

from comply_lab.crypto.signing import key_id
from comply_lab.errors import IntegrityWarning
from comply_lab.model.entry import AuditEntry, entry_hash
from comply_lab.storage.genesis import geneses
from comply_lab.storage.jsonl import Window, parse_segment
from comply_lab.storage.manifest import MANIFEST, RETENTION, SIGNERS, WRITERS
from comply_lab.storage.signers import MetadataSource, store_root, trail_records
from comply_lab.storage.vouchers import Vouchers, unvouched, vouchers


def writers(storage: MetadataSource) -> Vouchers | None:
    """Return what vouches for unsealed lines (kept on the store until its trails change).

    None when the log is not signed as far as the store knows (no root key, or no
    genesis it signed): every line is shown then.
    """
    root = store_root(storage)
    if root is None:
        return None
    data = b"\0".join(storage.read_metadata(t) for t in (SIGNERS, WRITERS, RETENTION, MANIFEST))
    stamp = (hashlib.sha256(data).digest(), key_id(root))
    cached = getattr(storage, "_vetting_writers", None)
    if cached is not None and cached[0] == stamp:
        found: Vouchers | None = cached[1]
        return found
    signers = trail_records(storage, SIGNERS)
    found = None
    if geneses(signers):
        found = vouchers(
            signers,
            trail_records(storage, WRITERS),
            trail_records(storage, RETENTION),
            trail_records(storage, MANIFEST),
        )
    with contextlib.suppress(AttributeError):  # a store without attributes: computed each time
        storage._vetting_writers = (stamp, found)  # type: ignore[attr-defined]
    return found


def vet(
    storage: object, name: str, data: bytes, within: Window | None, source: str
) -> list[AuditEntry]:
    """Return the entries of unsealed segment ``name`` (bytes ``data``) readers show.

    Args:
        storage: The store (its trails say which writers are registered).
        name: The segment's name, as adoption records name it.
        data: The segment's bytes.
        within: Only the entries in this time range (None: all).
        source: The file name or URL warnings give.
    """
    entries = list(parse_segment(data, source, within))
    shown = [e for e in entries if _own_hash(e)]
    left_out = []
    if len(shown) < len(entries):
        left_out.append(f"{len(entries) - len(shown):,} whose values do not give their own hash")
    view = writers(storage) if isinstance(storage, MetadataSource) else None
    if view is not None and any(
        e.writer_id not in view.registered or view.retires(e) for e in shown
    ):
        if within is not None:  # positions count every entry of the segment
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # reported by the parse above
                entries = list(parse_segment(data, source))
        held = unvouched(view, name, data, entries)
        shown = [
            e
            for i, e in enumerate(entries)
            if i not in held and _own_hash(e) and (within is None or not _outside(e, within))
        ]
        if held:
            left_out.append(
                f"{len(held):,} of writers no signed registration names (nor an adoption), "
                "or that retention deleted"
            )
    if left_out:
        warnings.warn(
            f"{source}: left out {' and '.join(left_out)}; verify the log "
            "(comply-lab verify LOG --public-key KEY) to see them",
            IntegrityWarning,
            stacklevel=3,
        )
    return shown


def _own_hash(entry: AuditEntry) -> bool:
    return entry.entry_hash is None or entry_hash(entry.record()) == entry.entry_hash


def _outside(entry: AuditEntry, within: Window) -> bool:
    lo, hi = within
    return (lo is not None and entry.timestamp < lo) or (hi is not None and entry.timestamp > hi)
