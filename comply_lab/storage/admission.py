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
import warnings
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from comply_lab.errors import IntegrityError, UnadoptedLogError
from comply_lab.storage.genesis import adoptions, geneses, registered
from comply_lab.storage.jsonl import parse_segment
from comply_lab.storage.manifest import HEARTBEAT, RETENTION, SIGNERS, WRITERS

if TYPE_CHECKING:
    from comply_lab.model.entry import AuditEntry
    from comply_lab.storage.sink import Sink


def vouched_prefix(records: list[dict[str, Any]], name: str, data: bytes) -> int:
    """Return how many first bytes of segment ``name`` a record's snapshot vouched for.

    ``records`` are heartbeat or adoption records; a snapshot counts only while the bytes
    it names are intact.
    """
    best = 0
    for record in records:
        pair = (record.get("unsealed") or {}).get(name)
        if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], int):
            continue
        size, digest = pair
        if best < size <= len(data) and hashlib.sha256(data[:size]).hexdigest() == digest:
            best = size
    return best


def strangers(sink: Sink, source: str, data: bytes, entries: list[AuditEntry]) -> set[int]:
    """Return the positions in ``entries`` sealing must not vouch for (see the module doc).

    Positions, not ids: a planted line reusing the id of an honest entry does not take
    the honest entry with it.

    Raises:
        UnadoptedLogError: the sink signs, and the log has no genesis record its root signed.
    """
    if not sink.signs():
        return set()
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
    _check_heads(signed_heads(beats), entries, source)
    return unvouched_strangers(registered(writers), adoptions(signers), source, data, entries)


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


def standing_snapshots(
    beats: list[dict[str, Any]], retention: list[dict[str, Any]]
) -> dict[str, tuple[int, str, str]]:
    """Return, per unsealed segment, the largest prefix a heartbeat vouched for, and when.

    A snapshot taken before a retention record deleted a segment of that name (the
    heartbeat saw fewer retention records than that one's position) no longer stands: a
    writer may have created the name again since, with other bytes.
    """
    deleted_at: dict[str, int] = {}
    for position, record in enumerate(retention, 1):
        for name in record.get("segments") or ():
            deleted_at[str(name)] = position
    found: dict[str, tuple[int, str, str]] = {}
    for beat in beats:
        seen = (beat.get("trails") or {}).get(RETENTION)
        count = seen[0] if isinstance(seen, list) and seen and isinstance(seen[0], int) else 0
        unsealed = beat.get("unsealed")
        for name, pair in unsealed.items() if isinstance(unsealed, dict) else ():
            if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], int):
                continue
            if count < deleted_at.get(name, 0):
                continue
            if name not in found or pair[0] > found[name][0]:
                found[name] = (pair[0], str(pair[1]), str(beat.get("at")))
    return found


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


def unvouched_strangers(
    known: Iterable[str],
    adopted: list[dict[str, Any]],
    source: str,
    data: bytes,
    entries: list[AuditEntry],
) -> set[int]:
    """Return the positions of ``entries`` whose writer is not ``known``, nor adopted.

    ``entries`` were parsed from ``data``, the bytes of unsealed segment ``source``, in
    order; ``adopted`` are the trusted adoption records. An entry is adopted when it is
    among the entries parsed from the bytes an adoption vouched for.
    """
    known = set(known)
    if all(e.writer_id in known for e in entries):
        return set()
    vouched = vouched_prefix(adopted, source, data)
    early = 0
    if vouched:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # damaged lines are reported by the full parse
            early = sum(1 for _ in parse_segment(data[:vouched], source))
    return {i for i, e in enumerate(entries) if i >= early and e.writer_id not in known}


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
