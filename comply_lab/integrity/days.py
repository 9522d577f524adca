"""Checking one day partition of a log, as a list of events the verifier replays.

Verification walks the days in order, and each writer's hash chain runs across them, so
the chain can only be followed in that order. Everything else a day needs — reading its
segments, hashing them, decoding and checking entries — is independent of other days.
:func:`check_day` does that part and returns the day's findings as *events*, in the
order they arose: problems, the chain observations to feed the tracker, and findings
that hold only if nothing else was found since a mark. Replaying the events of the days
in day order (:func:`replay`) gives exactly the report a single pass gives, so days can
be checked in parallel (one task each) and replayed serially.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any, NamedTuple

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from comply_lab.audit.encryption import looks_encrypted
from comply_lab.audit.entry import CONTENT_FIELDS, AuditEntry, entry_hash, line_verifies
from comply_lab.audit.keyring import key_id_of
from comply_lab.errors import CorruptRecordError
from comply_lab.integrity.chains import ChainTracker, group_starts, links_hold
from comply_lab.integrity.fingerprint import fingerprint
from comply_lab.integrity.merkle import MerkleBuilder, digest_bytes
from comply_lab.integrity.report import Problem, Status
from comply_lab.storage.arrow import table_to_entries
from comply_lab.storage.base import Storage
from comply_lab.storage.jsonl import complete_record, cut_short
from comply_lab.storage.segments import Segment

_FIELDS = [f.name for f in fields(AuditEntry)]
_FIELD_SET = frozenset(_FIELDS)
_CHAIN_COLUMNS = ["id", "writer_id", "seq", "prev_hash", "entry_hash"]
_SHRED_COLUMNS = ["id", "writer_id", "seq"]


class See(NamedTuple):
    """Event: feed one entry's chain fields to the tracker."""

    writer: str
    seq: int
    prev_hash: str | None
    digest: str | None
    entry_id: str | None
    partition: date | None
    segment: str | None


class Advance(NamedTuple):
    """Event: a writer's entries up to ``seq`` were checked column-wise."""

    writer: str
    seq: int
    digest: str | None


class IfClean(NamedTuple):
    """Event: report ``problem`` only if nothing was found since the last mark."""

    problem: Problem


class Mark(NamedTuple):
    """Event: remember where the findings stand, for a later :class:`IfClean`."""


MARK = Mark()
Event = Problem | See | Advance | IfClean | Mark


@dataclass
class DayResult:
    """What checking one day found: events to replay and what was checked."""

    events: list[Event] = field(default_factory=list)
    entries: int = 0
    segments: int = 0


def check_day(
    storage: Storage,
    day: date,
    records: dict[str, dict[str, Any]],
    replaced: set[str],
    deleted: set[str],
    shredded: dict[str, dict[str, Any]],
    deep: bool,
) -> DayResult:
    """Check the segments of ``day`` (a task: plain values in, plain values out).

    Args:
        storage: The store (sent to other processes as a description).
        day: The day partition.
        records: Manifest records of this day's sealed segments, by segment name.
        replaced: Segments superseded by key rotation (their absence is expected).
        deleted: Segments deleted by recorded retention.
        shredded: Records of destroyed content keys, by key id.
        deep: Recompute every entry even where a segment's digest matches.
    """
    check = _DayCheck(storage, shredded, deep)
    listed = storage.segments(day)
    for segment in listed:
        check.segment(segment, records.get(segment.name))
    names = {s.name for s in listed}
    for name, record in records.items():
        if name not in names and name not in replaced:
            check.gone(day, name, record, deleted)
    return DayResult(check.events, check.entries, check.segments)


def replay(result: DayResult, tracker: ChainTracker, problems: list[Problem]) -> None:
    """Apply one day's events, in order, to the chain tracker and the findings."""
    mark = len(problems)
    for event in result.events:
        if isinstance(event, Problem):
            problems.append(event)
        elif isinstance(event, See):
            problems.extend(tracker.see(*event))
        elif isinstance(event, Advance):
            tracker.advance(*event)
        elif isinstance(event, Mark):
            mark = len(problems)
        elif len(problems) == mark:
            problems.append(event.problem)


class _DayCheck:
    def __init__(self, storage: Storage, shredded: dict[str, dict[str, Any]], deep: bool) -> None:
        self.storage = storage
        self.shredded = shredded
        self.deep = deep
        self.events: list[Event] = []
        self.add = self.events.append
        self.entries = 0
        self.segments = 0

    def gone(self, day: date, name: str, record: dict[str, Any], deleted: set[str]) -> None:
        """Report a manifest-listed segment that is no longer stored."""
        if name in deleted:
            self.add(
                Problem(
                    "expired_by_policy",
                    f"{record.get('entries')} entries deleted by recorded retention",
                    day,
                    name,
                )
            )
        else:
            self.add(
                Problem(
                    "missing",
                    f"sealed segment of {record.get('entries')} entries is "
                    "gone, and no retention record explains it",
                    day,
                    name,
                )
            )

    def segment(self, segment: Segment, record: dict[str, Any] | None) -> None:
        """Check one segment against its manifest record (None: it has none)."""
        try:
            data = self.storage.read_segment(segment)
        except FileNotFoundError:
            return  # sealed or deleted meanwhile; the new listing is another run's business
        self.segments += 1
        if segment.format == "jsonl":
            self._jsonl(segment, data)
            return
        if record is None:
            self.add(
                Problem(
                    "inserted",
                    "sealed segment has no manifest record (forged, or its record was removed)",
                    segment.day,
                    segment.name,
                )
            )
        intact = (
            record is not None
            and len(data) == record.get("bytes")
            and hashlib.sha256(data).hexdigest() == record.get("sha256")
        )
        if intact and not self.deep:
            self._intact_parquet(segment, data, record or {})
            if self.shredded:
                self._shredded_rows(segment, data)
        else:
            self._inspect_parquet(segment, data, record, intact)

    def _shred(
        self,
        key_id: str,
        entry_id: str,
        writer_id: str | None,
        seq: int | None,
        day: date,
        place: str,
    ) -> None:
        record = self.shredded[key_id]
        self.add(
            Problem(
                "shredded",
                f"content under key {key_id} is unreadable by design: its data subject was "
                f"shredded at {record.get('at')} by {record.get('who')} ({record.get('reason')})",
                day,
                place,
                entry_id,
                writer_id,
                seq,
            )
        )

    def _shredded_rows(self, segment: Segment, data: bytes) -> None:
        """Report, column-wise, the entries of an intact segment whose key was shredded."""
        table = pq.read_table(io.BytesIO(data), columns=[*_SHRED_COLUMNS, *CONTENT_FIELDS])
        wanted = pa.array(list(self.shredded), pa.string())
        hit = None
        for name in CONTENT_FIELDS:
            found = pc.struct_field(
                pc.extract_regex(table.column(name), r"^cl1:(?P<key>[^:]+):"), "key"
            )
            matches = pc.fill_null(pc.is_in(found, value_set=wanted), False)
            hit = matches if hit is None else pc.or_(hit, matches)
        for row in table.filter(hit).to_pylist():
            content = [row.get(n) for n in CONTENT_FIELDS]
            key_id = next(k for k in map(_key_of, content) if k in self.shredded)
            self._shred(key_id, row["id"], row["writer_id"], row["seq"], segment.day, segment.name)

    def _intact_parquet(self, segment: Segment, data: bytes, record: dict[str, Any]) -> None:
        """Bytes match the manifest: follow each writer's chain through the stored hashes.

        The links inside the segment are checked column-wise; only each writer's first
        entry goes through the tracker (against the end of its previous segment). A
        segment with any broken link is walked entry by entry to classify the problem.
        """
        table = pq.read_table(io.BytesIO(data), columns=_CHAIN_COLUMNS)
        self.entries += table.num_rows
        for entry_id in record.get("invalid_entries") or []:
            self.add(
                Problem(
                    "modified",
                    "the entry's hash did not match its content when it was sealed",
                    segment.day,
                    segment.name,
                    entry_id,
                )
            )
        table = table.filter(pc.is_valid(table.column("writer_id")))
        if table.num_rows == 0:
            return
        table = table.take(pc.sort_indices(table, sort_keys=[("writer_id", "ascending")]))
        starts = group_starts(table.column("writer_id"))
        if links_hold(table, starts):
            ends = [*(i - 1 for i in starts[1:]), table.num_rows - 1]
            firsts = table.take(starts).to_pylist()
            lasts = table.take(ends).select(["seq", "entry_hash"]).to_pylist()
            for first, last in zip(firsts, lasts, strict=True):
                self._see(first, segment)
                self.add(Advance(first["writer_id"], last["seq"], last["entry_hash"]))
            return
        for row in table.to_pylist():
            self._see(row, segment)

    def _follow(self, entry: AuditEntry, day: date, place: str) -> None:
        """Feed one decoded entry to the chain tracker."""
        if entry.writer_id is not None and entry.seq is not None:
            self.add(
                See(
                    entry.writer_id,
                    entry.seq,
                    entry.prev_hash,
                    entry.entry_hash,
                    entry.id,
                    day,
                    place,
                )
            )

    def _see(self, row: dict[str, Any], segment: Segment) -> None:
        chain = (row["writer_id"], row["seq"], row["prev_hash"], row["entry_hash"], row["id"])
        self.add(See(*chain, segment.day, segment.name))

    def _inspect_parquet(
        self, segment: Segment, data: bytes, record: dict[str, Any] | None, intact: bool
    ) -> None:
        """Decode the segment and find what differs from what was sealed."""
        self.add(MARK)
        try:
            entries = list(table_to_entries(pq.read_table(io.BytesIO(data))))
        except (
            pa.ArrowException,
            OSError,
            CorruptRecordError,
            KeyError,
            TypeError,
            ValueError,
            OverflowError,
        ) as err:
            self.add(
                Problem(
                    "modified",
                    f"the file cannot be decoded any more ({err})",
                    segment.day,
                    segment.name,
                )
            )
            return
        leaves = MerkleBuilder()
        writers = (record or {}).get("writers") or {}
        for entry in entries:
            digest = self._entry(entry, segment)
            leaves.add(digest_bytes(digest))
            chain = writers.get(entry.writer_id) if entry.writer_id else None
            if (
                record is not None
                and entry.writer_id
                and entry.seq is not None
                and (chain is None or not chain["first_seq"] <= entry.seq <= chain["last_seq"])
            ):
                self.add(
                    Problem(
                        "inserted",
                        "not among the entries this segment was sealed with",
                        segment.day,
                        segment.name,
                        entry.id,
                        entry.writer_id,
                        entry.seq,
                    )
                )
        self.entries += len(entries)
        if record is None:
            return
        sealed = int(record.get("entries") or 0)
        if len(entries) < sealed:
            self.add(
                Problem(
                    "missing",
                    f"holds {len(entries)} entries but was sealed with {sealed}",
                    segment.day,
                    segment.name,
                )
            )
        # Said only if nothing was found since MARK (chain findings included), which is
        # known when the events are replayed in order.
        if leaves.root().hex() != record.get("merkle_root"):
            status: Status = "reordered" if len(entries) == sealed else "modified"
            self.add(
                IfClean(
                    Problem(
                        status,
                        "every entry verifies but the Merkle root differs from "
                        "the manifest: entries were reordered or replaced",
                        segment.day,
                        segment.name,
                    ),
                )
            )
        elif not intact:
            self.add(
                IfClean(
                    Problem(
                        "modified",
                        "the bytes differ from the manifest's SHA-256 though "
                        "every entry verifies: the file was rewritten",
                        segment.day,
                        segment.name,
                    ),
                )
            )

    def _entry(self, entry: AuditEntry, segment: Segment) -> str:
        """Check one decoded entry's hash and chain; return its (recomputed) hash."""
        recomputed = entry_hash(entry.to_dict())
        if entry.entry_hash is not None and entry.entry_hash != recomputed:
            self.add(
                Problem(
                    "modified",
                    "the entry does not match its entry_hash",
                    segment.day,
                    segment.name,
                    entry.id,
                    entry.writer_id,
                    entry.seq,
                )
            )
        self._content(entry, segment.day, segment.name)
        self._follow(entry, segment.day, segment.name)
        return entry.entry_hash or recomputed

    def _content(self, entry: AuditEntry, day: date, place: str) -> None:
        """Check stored plain-text content against its fingerprint (ciphertext cannot be)."""
        if self.shredded:
            for text in (entry.input_content, entry.output_content):
                key_id = _key_of(text)
                if key_id in self.shredded:
                    self._shred(key_id, entry.id, entry.writer_id, entry.seq, day, place)
                    break
        if entry.hash_key_id is not None:
            return  # keyed fingerprints: only key holders can check (verify_content)
        for side, text, digest in (
            ("input", entry.input_content, entry.input_hash),
            ("output", entry.output_content, entry.output_hash),
        ):
            if isinstance(text, str) and not looks_encrypted(text) and fingerprint(text) != digest:
                self.add(
                    Problem(
                        "modified",
                        f"the stored {side} does not match its "
                        f"{side}_hash: the content was changed",
                        day,
                        place,
                        entry.id,
                        entry.writer_id,
                        entry.seq,
                    )
                )

    def _jsonl(self, segment: Segment, data: bytes) -> None:
        lines = data.split(b"\n")
        tail = lines.pop()
        checked = legacy = 0
        for number, line in enumerate(lines, 1):
            if not line:
                continue
            place = f"{segment.name} line {number}"
            try:
                record = orjson.loads(line)
                if not isinstance(record, dict):
                    raise CorruptRecordError("not an object")
                entry = AuditEntry.from_dict(record)
            except (orjson.JSONDecodeError, CorruptRecordError, TypeError) as err:
                if isinstance(err, orjson.JSONDecodeError) and cut_short(line):
                    # The start of one of our lines, cut short: a write that did not
                    # complete (disk full, a crash) and was never acknowledged. Removing a
                    # real entry this way would leave a gap its writer's chain reports.
                    self.add(
                        Problem(
                            "unsealed",
                            f"a fragment of {len(line)} bytes from a write that did not "
                            "complete (disk full or a crash); never acknowledged",
                            segment.day,
                            place,
                        )
                    )
                    continue
                self.add(
                    Problem(
                        "modified",
                        f"the line is not a valid entry any more ({err})",
                        segment.day,
                        place,
                    )
                )
                continue
            checked += 1
            if entry.entry_hash is None or record.keys() != _FIELD_SET:
                if "writer_id" in record or len(record) > len(_FIELDS) - 4:
                    self.add(
                        Problem(
                            "modified",
                            "the entry's fields were altered (its integrity fields are damaged)",
                            segment.day,
                            place,
                            entry.id,
                            entry.writer_id,
                            entry.seq,
                        )
                    )
                else:
                    legacy += 1
                continue
            if not line_verifies(line) and entry_hash(record) != entry.entry_hash:
                self.add(
                    Problem(
                        "modified",
                        "the entry does not match its entry_hash",
                        segment.day,
                        place,
                        entry.id,
                        entry.writer_id,
                        entry.seq,
                    )
                )
            self._content(entry, segment.day, place)
            self._follow(entry, segment.day, place)
        self.entries += checked
        note = f"{checked:,} entries not sealed yet: no manifest covers them"
        if legacy:
            note += f"; {legacy:,} written by another tool carry no hash chain"
        self.add(Problem("unsealed", note, segment.day, segment.name))
        if complete_record(tail):
            where = f"{segment.name} line {len(lines) + 1}"
            self.add(
                Problem(
                    "modified",
                    "the last entry lost its line end: the file was edited",
                    segment.day,
                    where,
                )
            )
        elif tail.strip():
            self.add(
                Problem(
                    "unsealed",
                    f"incomplete last line ({len(tail)} bytes): a write "
                    "torn by a crash, never acknowledged",
                    segment.day,
                    segment.name,
                )
            )


def _key_of(text: object) -> str | None:
    return key_id_of(text) if isinstance(text, str) else None
