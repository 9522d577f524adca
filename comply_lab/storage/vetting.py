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
  signed registration names is left out, unless it lies within the bytes a signed
  heartbeat vouched for (what an adopted log's older writers wrote).

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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from comply_lab.crypto.signing import key_id
from comply_lab.errors import IntegrityWarning
from comply_lab.model.entry import AuditEntry, entry_hash
from comply_lab.storage.admission import unvouched_strangers
from comply_lab.storage.genesis import geneses, registered
from comply_lab.storage.manifest import HEARTBEAT, SIGNERS, WRITERS
from comply_lab.storage.signers import MetadataSource, store_root, trail_records


@dataclass(frozen=True)
class Writers:
    """Which writers' unsealed lines readers show.

    Attributes:
        registered: The writer ids signed registrations name; None when the log is not
            signed as far as the store knows (no root key, or no genesis it signed), so
            every writer's lines are shown.
        beats: The trusted heartbeat records, whose snapshots vouch for unsealed bytes.
    """

    registered: frozenset[str] | None
    beats: tuple[dict[str, Any], ...] = ()


def writers(storage: MetadataSource) -> Writers:
    """Return which writers' lines readers show; kept on the store until its trails change."""
    root = store_root(storage)
    if root is None:
        return Writers(None)
    data = b"\0".join(storage.read_metadata(t) for t in (SIGNERS, WRITERS, HEARTBEAT))
    stamp = (hashlib.sha256(data).digest(), key_id(root))
    cached = getattr(storage, "_vetting_writers", None)
    if cached is not None and cached[0] == stamp:
        found: Writers = cached[1]
        return found
    if geneses(trail_records(storage, SIGNERS)):
        known = frozenset(registered(trail_records(storage, WRITERS)))
        found = Writers(known, tuple(trail_records(storage, HEARTBEAT)))
    else:
        found = Writers(None)
    with contextlib.suppress(AttributeError):  # a store without attributes: computed each time
        storage._vetting_writers = (stamp, found)  # type: ignore[attr-defined]
    return found


def vet(
    storage: object, name: str, data: bytes, entries: Iterable[AuditEntry], *, warn: bool = True
) -> list[AuditEntry]:
    """Return the ``entries`` parsed from unsealed segment ``name`` (bytes ``data``) to show.

    Args:
        storage: The store (its trails say which writers are registered).
        name: The segment's name, as heartbeats record it.
        data: The segment's bytes.
        entries: What was parsed from them (all, or those of a time window).
        warn: Warn (`IntegrityWarning`) when lines are left out.
    """
    shown = []
    forged = 0
    for entry in entries:
        if entry.entry_hash is not None and entry_hash(entry.record()) != entry.entry_hash:
            forged += 1
        else:
            shown.append(entry)
    left_out = []
    if forged:
        left_out.append(f"{forged:,} whose values do not give their own hash")
    if isinstance(storage, MetadataSource):
        view = writers(storage)
        if view.registered is not None and any(e.writer_id not in view.registered for e in shown):
            strangers = unvouched_strangers(view.registered, list(view.beats), name, data, shown)
            if strangers:
                shown = [e for e in shown if e.id not in strangers]
                left_out.append(
                    f"{len(strangers):,} of writers no signed registration names, beyond "
                    "what a signed heartbeat vouched for"
                )
    if left_out and warn:
        warnings.warn(
            f"{name}: left out {' and '.join(left_out)}; verify the log "
            "(comply-lab verify LOG --public-key KEY) to see them",
            IntegrityWarning,
            stacklevel=2,
        )
    return shown
