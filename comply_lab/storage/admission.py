"""What sealing may vouch for: entries of registered writers, and bytes a heartbeat vouched for.

Sealing with a key signs a manifest record for what it seals, so it must never sign in
lines that someone with write access planted in an unsealed segment. In a signed log
(see [`comply_lab.storage.genesis`][comply_lab.storage.genesis]) an entry of a source is
admitted when

- its writer is registered (a ``_writers`` record the root, or a key it certified for
  ``seal``, signed), or
- it lies within the first bytes of the source that the root vouched for when it
  adopted the log (an ``adoption`` record in ``_signers``): their size and SHA-256 still
  match. That is how lines of the original tool, which name no writer, are admitted.
  A heartbeat does not admit anything: it vouches for the bytes a file holds, whoever
  appended them.

The others are **quarantined**: left out of the parts, their source's bytes kept in
``_quarantine/``, and counted per writer in the manifest record (``quarantined``), which
verification reports. An unsigned store seals everything (its log proves nothing
anyway); a signing store refuses a log with no genesis record (written by an earlier
version, or the original tool): it must be adopted first, after it was verified.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from comply_lab.errors import IntegrityError, UnadoptedLogError
from comply_lab.storage.genesis import geneses
from comply_lab.storage.manifest import HEARTBEAT, MANIFEST, RETENTION, SIGNERS, WRITERS
from comply_lab.storage.vouchers import standing_snapshots, unvouched, vouchers

if TYPE_CHECKING:
    from comply_lab.model.entry import AuditEntry
    from comply_lab.storage.sink import Sink


def strangers(
    sink: Sink, source: str, data: bytes, entries: list[AuditEntry]
) -> tuple[set[int], set[int]]:
    """Return the positions in ``entries`` sealing must not vouch for (see the module doc).

    Two sets: those nothing vouches for (sealing quarantines them), and those a retention
    record deleted (what an interrupted retention left: sealing leaves them out for good,
    as the retention would have). Positions, not ids: a planted line reusing the id of an
    honest entry does not take the honest entry with it.

    Raises:
        UnadoptedLogError: the sink signs, and the log has no genesis record its root signed.
    """
    if not sink.signs():
        return set(), set()
    signers = sink.records(SIGNERS)
    if not geneses(signers):
        raise UnadoptedLogError(
            f"{source} was not sealed: this signed log has no genesis record signed by its "
            "root key (it was written by an earlier version, or by another tool), so "
            "sealing cannot tell its writers' entries from planted ones. Verify it, then adopt it "
            "with the root key (comply-lab adopt LOG --signing-key KEY); nothing was changed"
        )
    writers, beats = sink.records(WRITERS), sink.records(HEARTBEAT)
    _check_vouched(standing_snapshots(beats, sink.records(RETENTION)).get(source), source, data)
    _check_registrations(writers, beats, source)
    vouched = vouchers(signers, writers, sink.records(RETENTION), sink.records(MANIFEST))
    held = unvouched(vouched, source, data, entries)
    retired = {i for i in held if vouched.retires(entries[i])}
    _check_heads(
        signed_heads(beats), [e for i, e in enumerate(entries) if i not in retired], source
    )
    return held - retired, retired


def _check_registrations(
    writers: list[dict[str, Any]], beats: list[dict[str, Any]], source: str
) -> None:
    """Refuse to seal when registrations the newest heartbeat saw no longer count.

    A ``_writers`` trail hidden, cut or damaged while sealing runs would otherwise make
    honest writers look unregistered, and their entries would be quarantined.

    Raises:
        IntegrityError: the last registration the newest heartbeat saw does not count
            any more (a torn line it saw last is not asked for).
    """
    seen = (beats[-1].get("trails") or {}).get(WRITERS) if beats else None
    if not isinstance(seen, list) or len(seen) != 2 or not isinstance(seen[1], str):
        return
    if seen[1] not in {w.get("record_hash") for w in writers}:
        raise IntegrityError(
            f"{source} was not sealed: the {WRITERS} trail no longer holds the registration "
            f"the newest heartbeat saw last ({len(writers)} count now): it was cut, damaged "
            "or moved away, and sealing would take registered writers for strangers. "
            "Restore it (comply-lab verify names what changed); nothing was changed"
        )


def _check_heads(
    heads: Mapping[tuple[str, int], tuple[str, str]], entries: list[AuditEntry], source: str
) -> None:
    """Refuse to seal an entry that is not the one a heartbeat signed at its place.

    Raises:
        IntegrityError: an entry of ``source`` has another hash than the head a heartbeat
            signed for its writer and seq.
    """
    for entry in entries:
        if entry.writer_id is None or entry.seq is None:
            continue
        signed = heads.get((entry.writer_id, entry.seq))
        if signed is not None and signed[0] != entry.entry_hash:
            raise IntegrityError(
                f"{source} was not sealed: its entry {entry.id} (writer {entry.writer_id}, "
                f"seq {entry.seq}) is not the one the heartbeat of {signed[1]} signed there; "
                "the file was changed. Verify the log (comply-lab verify); nothing was changed"
            )


def _check_vouched(snapshot: tuple[int, str, str] | None, source: str, data: bytes) -> None:
    """Refuse to seal a source whose bytes a heartbeat vouched for were cut or changed.

    Raises:
        IntegrityError: the first bytes the newest standing snapshot names are not there.
    """
    if snapshot is None:
        return
    size, digest, at = snapshot
    if len(data) < size or hashlib.sha256(data[:size]).hexdigest() != digest:
        raise IntegrityError(
            f"{source} was not sealed: the heartbeat of {at} vouched for its first {size:,} "
            f"bytes, and they were cut or changed (it holds {len(data):,}). Verify the log "
            "(comply-lab verify names what changed); nothing was changed"
        )


def quarantined_counts(entries: list[AuditEntry], held: set[int]) -> dict[str, int]:
    """Return, per writer (``"none"`` for entries without one), how many entries are held."""
    counts: dict[str, int] = {}
    for position in held:
        writer = entries[position].writer_id or "none"
        counts[writer] = counts.get(writer, 0) + 1
    return counts


def signed_heads(beats: list[dict[str, Any]]) -> dict[tuple[str, int], tuple[str, str]]:
    """Return every chain head the heartbeats signed: ``(writer, seq)`` -> ``(hash, when)``."""
    found: dict[tuple[str, int], tuple[str, str]] = {}
    for beat in beats:
        heads = beat.get("heads")
        for writer, head in heads.items() if isinstance(heads, dict) else ():
            if isinstance(head, list) and len(head) == 2 and isinstance(head[0], int):
                found[(str(writer), head[0])] = (str(head[1]), str(beat.get("at")))
    return found
