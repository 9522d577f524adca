"""What sealing may vouch for: entries of registered writers, and bytes a heartbeat vouched for.

Sealing with a key signs a manifest record for what it seals, so it must never sign in
lines that someone with write access planted in an unsealed segment. In a signed log
(see [`comply_lab.storage.genesis`][comply_lab.storage.genesis]) an entry of a source is
admitted when

- its writer is registered (a ``_writers`` record the root, or a key it certified for
  ``seal``, signed), or
- it lies within the first bytes of the source that a signed heartbeat (or the adoption
  of the log) vouched for: their size and SHA-256 still match.

The others are **quarantined**: left out of the parts, their source's bytes kept in
``_quarantine/``, and counted per writer in the manifest record (``quarantined``), which
verification reports. An unsigned store seals everything (its log proves nothing
anyway); a signing store refuses a log with no genesis record (written by an earlier
version, or the original tool): it must be adopted first, after it was verified.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from comply_lab.errors import UnadoptedLogError
from comply_lab.storage.genesis import geneses, registered
from comply_lab.storage.jsonl import parse_segment
from comply_lab.storage.manifest import HEARTBEAT, SIGNERS, WRITERS

if TYPE_CHECKING:
    from comply_lab.model.entry import AuditEntry
    from comply_lab.storage.sink import Sink


def vouched_prefix(beats: list[dict[str, Any]], name: str, data: bytes) -> int:
    """Return how many first bytes of segment ``name`` a heartbeat vouched for, still intact."""
    best = 0
    for beat in beats:
        pair = (beat.get("unsealed") or {}).get(name)
        if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], int):
            continue
        size, digest = pair
        if best < size <= len(data) and hashlib.sha256(data[:size]).hexdigest() == digest:
            best = size
    return best


def strangers(sink: Sink, source: str, data: bytes, entries: list[AuditEntry]) -> set[str]:
    """Return the ids of ``entries`` sealing must not vouch for (see the module documentation).

    Raises:
        UnadoptedLogError: the sink signs, and the log has no genesis record its root signed.
    """
    if not sink.signs():
        return set()
    if not geneses(sink.records(SIGNERS)):
        raise UnadoptedLogError(
            f"{source} was not sealed: this signed log has no genesis record signed by its "
            "root key (it was written by an earlier version, or by another tool), so sealing "
            "cannot tell its writers' entries from planted ones. Verify it, then adopt it "
            "with the root key (comply-lab adopt LOG --signing-key KEY); nothing was changed"
        )
    known = registered(sink.records(WRITERS))
    return unvouched_strangers(known, sink.records(HEARTBEAT), source, data, entries)


def unvouched_strangers(
    known: Iterable[str],
    beats: list[dict[str, Any]],
    source: str,
    data: bytes,
    entries: list[AuditEntry],
) -> set[str]:
    """Return the ids of ``entries`` whose writer is not ``known`` and no heartbeat vouched for.

    ``entries`` were parsed from ``data``, the bytes of unsealed segment ``source``;
    ``beats`` are the trusted heartbeat records.
    """
    known = set(known)
    if all(e.writer_id in known for e in entries):
        return set()
    vouched = vouched_prefix(beats, source, data)
    early: set[str] = set()
    if vouched:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # damaged lines are reported by the full parse
            early = {e.id for e in parse_segment(data[:vouched], source)}
    return {e.id for e in entries if e.writer_id not in known and e.id not in early}


def quarantined_counts(entries: list[AuditEntry], held: set[str]) -> dict[str, int]:
    """Return, per writer (``"none"`` for entries without one), how many entries are held."""
    counts: dict[str, int] = {}
    for entry in entries:
        if entry.id in held:
            writer = entry.writer_id or "none"
            counts[writer] = counts.get(writer, 0) + 1
    return counts
