"""What vouches for an unsealed line in a signed log, and what retention retired for good.

Three kinds of signed record decide whether readers show an unsealed line and sealing
signs it in (see [`comply_lab.storage.admission`][comply_lab.storage.admission] and
[`comply_lab.storage.vetting`][comply_lab.storage.vetting]); verification reports the
same lines (``unregistered``, ``inserted``):

- a **registration** (``_writers``) of the line's writer;
- the root's **adoption** record (``_signers``), whose snapshot vouches for the first
  bytes an adopted log's unsealed segment held (lines of the original tool name no
  writer). A snapshot no longer stands once a retention record deleted a segment of
  that name after it: the name may hold other bytes since;
- a **retention** record, the other way round: an entry of a writer, at a seq and on a
  day a retention record says it deleted, was deleted. The same entry back (copied from
  a backup, or rewritten) is a stranger whoever's chain it names.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from comply_lab.storage.genesis import adoptions, registered
from comply_lab.storage.jsonl import parse_segment
from comply_lab.storage.manifest import RETENTION

if TYPE_CHECKING:
    from comply_lab.model.entry import AuditEntry

Snapshot = tuple[int, str, str]
"""The first N bytes of a segment a record vouched for, their SHA-256, and when."""
Retired = tuple[int, int, str]
"""Seqs ``first..last`` of one writer that retention deleted, and the day they were on."""


@dataclass(frozen=True)
class Vouchers:
    """What the trusted records of a signed log vouch for, and what they retired.

    Attributes:
        registered: The writer ids signed registrations name.
        adopted: Per unsealed segment, the adoption snapshot that still stands.
        retired: Per writer, the seq ranges (and days) retention deleted.
    """

    registered: frozenset[str] = frozenset()
    adopted: Mapping[str, Snapshot] = field(default_factory=dict)
    retired: Mapping[str, tuple[Retired, ...]] = field(default_factory=dict)

    def adopted_prefix(self, name: str, data: bytes) -> int:
        """Return how many first bytes of segment ``name`` the adoption vouched for, intact."""
        snapshot = self.adopted.get(name)
        if snapshot is None:
            return 0
        size, digest, _ = snapshot
        intact = size <= len(data) and hashlib.sha256(data[:size]).hexdigest() == digest
        return size if intact else 0

    def retires(self, entry: AuditEntry) -> bool:
        """Whether retention recorded ``entry``'s place in its chain as deleted."""
        spans = self.retired.get(entry.writer_id or "")
        if not spans or entry.seq is None:
            return False
        day = entry.timestamp.date().isoformat()
        return any(first <= entry.seq <= last and on == day for first, last, on in spans)


def vouchers(
    signers: list[dict[str, Any]],
    writers: list[dict[str, Any]],
    retention: list[dict[str, Any]],
    manifest: list[dict[str, Any]],
) -> Vouchers:
    """Return what the trusted records vouch for (each list: a trail's counted records)."""
    return Vouchers(
        frozenset(registered(writers)),
        standing_snapshots(adoptions(signers), retention),
        _retired(retention, manifest),
    )


def unvouched(vouched: Vouchers, source: str, data: bytes, entries: list[AuditEntry]) -> set[int]:
    """Return the positions of ``entries`` nothing vouches for, or that retention retired.

    ``entries`` were parsed from ``data``, the bytes of unsealed segment ``source``, in
    order. Positions, not ids: a planted line reusing an honest id takes nothing with it.
    """
    known = vouched.registered
    strangers = any(e.writer_id not in known for e in entries)
    if not strangers and not vouched.retired:
        return set()
    early = 0
    prefix = vouched.adopted_prefix(source, data) if strangers else 0
    if prefix:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # damaged lines are reported by the full parse
            early = sum(1 for _ in parse_segment(data[:prefix], source))
    return {
        i
        for i, e in enumerate(entries)
        if (e.writer_id not in known and i >= early) or vouched.retires(e)
    }


def standing_snapshots(
    records: list[dict[str, Any]], retention: list[dict[str, Any]]
) -> dict[str, Snapshot]:
    """Return, per unsealed segment, the largest prefix heartbeat or adoption records vouched for.

    A snapshot taken before a retention record deleted a segment of that name (its record
    saw fewer retention records than that one's position) no longer stands: a writer may
    have created the name again since, with other bytes.
    """
    deleted_at: dict[str, int] = {}
    for position, record in enumerate(retention, 1):
        for name in record.get("segments") or ():
            deleted_at[str(name)] = position
    found: dict[str, Snapshot] = {}
    for record in records:
        seen = (record.get("trails") or {}).get(RETENTION)
        count = seen[0] if isinstance(seen, list) and seen and isinstance(seen[0], int) else 0
        unsealed = record.get("unsealed")
        for name, pair in unsealed.items() if isinstance(unsealed, dict) else ():
            if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], int):
                continue
            if count < deleted_at.get(name, 0):
                continue
            if name not in found or pair[0] > found[name][0]:
                found[name] = (pair[0], str(pair[1]), str(record.get("at")))
    return found


def _retired(
    retention: list[dict[str, Any]], manifest: list[dict[str, Any]]
) -> dict[str, tuple[Retired, ...]]:
    """Return, per writer, the seq ranges and days retention records deleted."""
    by_segment = {str(r.get("segment")): r for r in manifest}
    found: dict[str, list[Retired]] = {}
    for record in retention:
        day = record.get("date")
        if not isinstance(day, str):
            continue
        spans = list((record.get("writers") or {}).items())
        for name in record.get("segments") or ():
            spans += ((by_segment.get(str(name)) or {}).get("writers") or {}).items()
        for writer, span in spans:
            if isinstance(span, list) and len(span) == 2:
                span = {"first_seq": span[0], "last_seq": span[1]}
            first, last = (
                (span.get("first_seq"), span.get("last_seq"))
                if isinstance(span, dict)
                else (None, None)
            )
            if isinstance(first, int) and isinstance(last, int):
                found.setdefault(str(writer), []).append((first, last, day))
    return {writer: tuple(spans) for writer, spans in found.items()}
