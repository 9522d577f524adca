"""Deleting single entries on request: a signed record at once, the bytes in batches later.

The original tool's ``delete(id)`` rewrote a whole file to drop one line. Here a deletion
is first a record in the ``_deletions.jsonl`` trail, chained and (with the store's key)
signed like every trail: which entry, its day, its ``entry_hash`` and chain position
(``writer_id``, ``seq``, ``prev_hash``), who asked and why, and when. From that moment
every read of comply_lab leaves the entry out. Its bytes go later, many at a time:

- sealing leaves deleted entries out of the Parquet parts it writes (the manifest record
  names them in ``removed_on_request``);
- compaction rewrites each sealed part that still holds deleted entries once, as a new
  generation whose manifest record names the generation it replaces (``pruned_from``)
  and every row removed from the part's first generation with its hash (``removed``).

Verification puts the recorded chain position of a deleted entry where the entry was, so
the writer's chain still links across it and the entry is reported ``deleted_on_request``;
the log-wide Merkle tree keeps the removed rows' hashes as leaves, so checkpoints and
proofs issued before the deletion still verify. An entry removed by hand has no
authentic record and stays ``missing``.

Every store's ``delete`` first runs the checks registered with
[`guard_deletions`][comply_lab.storage.deletions.guard_deletions]: the retention layer registers
legal holds there (`comply_lab.retention.holds.refuse_held`), so a held entry is refused
whichever API deletes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from typing import Any, Protocol, TypeVar

from comply_lab._time import utc_now
from comply_lab.model.entry import AuditEntry, entry_hash, format_timestamp
from comply_lab.storage.manifest import DELETIONS, parse_records
from comply_lab.storage.signers import trail_records


class MetadataSource(Protocol):
    """What reading the deletion trail needs of a store."""

    def read_metadata(self, name: str) -> bytes:
        """Return a metadata file's bytes (empty if there is none)."""
        ...


DeletionGuard = Callable[[Any, AuditEntry], None]
"""A check run before an entry is deleted: raises to refuse (called with store, entry)."""

Guard = TypeVar("Guard", bound=DeletionGuard)

_GUARDS: list[DeletionGuard] = []


def guard_deletions(check: Guard) -> Guard:
    """Register ``check`` to run before every store deletes an entry; return it."""
    _GUARDS.append(check)
    return check


def check_deletion(storage: Any, entry: AuditEntry) -> None:
    """Run every registered deletion check on ``entry`` of ``storage``; they raise to refuse."""
    for check in _GUARDS:
        check(storage, entry)


def deletion_record(entry: AuditEntry, by: str | None, reason: str | None) -> dict[str, Any]:
    """Return the record of deleting ``entry`` (chain fields and signature are added on append)."""
    record: dict[str, Any] = {
        "kind": "deletion",
        "entry_id": entry.id,
        "date": entry.timestamp.date().isoformat(),
        "entry_hash": entry.entry_hash or entry_hash(entry.record()),
        "deleted_at": format_timestamp(utc_now()),
    }
    if entry.writer_id is not None and entry.seq is not None:
        record.update(writer_id=entry.writer_id, seq=entry.seq, prev_hash=entry.prev_hash)
    if by is not None:
        record["by"] = by
    if reason is not None:
        record["reason"] = reason
    return record


def deletion_records(data: bytes) -> list[dict[str, Any]]:
    """Return the deletion records a trail's bytes hold (not checked: see verification)."""
    return deletion_records_in(r for _, r in parse_records(data) if r is not None)


def deletion_records_in(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the records that delete an entry (they name it by ``entry_id``)."""
    return [record for record in records if isinstance(record.get("entry_id"), str)]


def deleted(storage: MetadataSource) -> Hidden:
    """Return what reads must leave out of ``storage``: every entry a record deletes.

    Only records that count (see [`trail_records`][comply_lab.storage.signers.trail_records]):
    a line added by hand, or signed by a key the store's root did not certify, hides
    nothing.
    """
    return Hidden.of(deletion_records_in(trail_records(storage, DELETIONS)))


class Hidden:
    """The entries deleted on request, by id, and the days they were logged on.

    Readers filter rows only on ``days``; other days are read as fast as ever.
    """

    __slots__ = ("days", "ids")

    def __init__(self, ids: frozenset[str] = frozenset(), days: frozenset[date] = frozenset()):
        self.ids = ids
        self.days = days

    @classmethod
    def of(cls, records: Iterable[dict[str, Any]]) -> Hidden:
        """Collect the ids and days of deletion records."""
        ids: set[str] = set()
        days: set[date] = set()
        for record in deletion_records_in(records):
            ids.add(record["entry_id"])
            try:
                days.add(date.fromisoformat(str(record.get("date"))))
            except ValueError:
                continue
        return cls(frozenset(ids), frozenset(days))

    def __bool__(self) -> bool:
        return bool(self.ids)

    def on(self, day: date) -> frozenset[str]:
        """Return the ids to leave out of ``day`` (none for a day without deletions)."""
        return self.ids if day in self.days else frozenset()
