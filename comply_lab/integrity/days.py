"""Checking one day partition of a log (a task: plain values in, events out).

Every segment the day's listing shows is checked:

- a segment with a manifest record — Parquet or JSONL, local or in S3 — must have the
  recorded size and SHA-256. When it does, its chains are followed from the stored hashes
  (column-wise for Parquet). When it does not, it is decoded and every entry, the count,
  the writers' positions and the Merkle root are compared with the record to say *what*
  changed. ``deep`` decodes every segment that way;
- a segment that claims to be sealed but has no record is ``inserted``;
- a JSONL segment not sealed yet is checked line by line (each line must be exactly the
  canonical line of its own values, see
  [`comply_lab.integrity.lines`][comply_lab.integrity.lines]), against the newest heartbeat that
  vouched for its first bytes, and reported ``unsealed``.

Manifest records whose segment the listing no longer shows are ``missing``, or
``expired_by_policy`` when recorded retention deleted them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import fields
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from comply_lab.crypto.ciphertext import PREFIX
from comply_lab.crypto.fingerprint import content_problem
from comply_lab.crypto.merkle import MerkleBuilder, digest_bytes, dyadic_blocks, leaf_hash
from comply_lab.errors import CorruptSegmentError
from comply_lab.integrity import unsealed
from comply_lab.integrity.chains import group_starts, links_hold
from comply_lab.integrity.events import MARK, DayResult, Event, IfClean, See, Span
from comply_lab.integrity.lines import Line, classify
from comply_lab.integrity.orphans import restored_problem
from comply_lab.integrity.report import Problem, Status
from comply_lab.integrity.unsealed import Admitted, Snapshot, pending_problems, snapshot_problem
from comply_lab.keys.keyring import key_id_of
from comply_lab.model.entry import CONTENT_FIELDS, AuditEntry, entry_hash
from comply_lab.storage.arrow import table_to_entries
from comply_lab.storage.base import Storage
from comply_lab.storage.jsonl import split_lines, tail_kind
from comply_lab.storage.parts import decode_part, decoding
from comply_lab.storage.segments import STAGING, Segment

_FIELDS = [f.name for f in fields(AuditEntry)]
_KEY_OF_CIPHERTEXT = f"^{re.escape(PREFIX)}(?P<key>[^:]+):"
"""Where a key ring's ciphertext names its key (see `comply_lab.keys.keyring`)."""
_CHAIN_COLUMNS = ["id", "writer_id", "seq", "prev_hash", "entry_hash", "timestamp"]
_SHRED_COLUMNS = ["id", "writer_id", "seq"]


def check_day(
    storage: Storage,
    day: date,
    records: dict[str, dict[str, Any]],
    earlier: dict[str, set[str]],
    deleted: set[str],
    shredded: dict[str, dict[str, Any]],
    snapshots: dict[str, Snapshot],
    deep: bool,
    signed: bool = False,
    gone: dict[str, set[tuple[str, int]]] | None = None,
    registered: Admitted = unsealed.NOBODY,
) -> DayResult:
    """Check the segments of ``day``.

    Args:
        storage: The store (sent to other processes as a description).
        day: The day partition.
        records: The authentic manifest record of each of this day's sealed segments.
        earlier: SHA-256 digests earlier records gave a segment (before key rotation).
        deleted: Segments deleted by authentic retention records.
        shredded: Authentic records of destroyed content keys, by key id.
        snapshots: Heartbeat snapshots of unsealed segments, by segment name.
        deep: Decode and recompute every sealed segment even when its digest matches.
        signed: The log is signed and its signatures are checked: unsealed entries no
            heartbeat vouched for are ``pending``, not merely ``unsealed``.
        gone: The ``(sha256, size)`` authentic retention records gave the segments they
            deleted: one present again with those bytes is ``incomplete``.
        registered: Whose unsealed entries count; others' are ``unregistered``.
    """
    check = _DayCheck(storage, shredded, deep, signed, gone or {}, registered)
    listed = storage.segments(day)
    for segment in listed:
        name = segment.name
        check.segment(segment, records.get(name), earlier.get(name, set()), snapshots.get(name))
    names = {s.name for s in listed}
    for name, record in records.items():
        if name not in names:
            check.gone(day, name, record, deleted)
    sealed = sum(s.sealed for s in listed)
    return DayResult(check.events, check.entries, check.segments, names, sealed)


class _DayCheck:
    def __init__(
        self,
        storage: Storage,
        shredded: dict[str, dict[str, Any]],
        deep: bool,
        signed: bool,
        gone: dict[str, set[tuple[str, int]]],
        registered: Admitted,
    ) -> None:
        self.registered = registered
        self.storage = storage
        self.shredded = shredded
        self.deep = deep
        self.signed = signed
        self.deleted_bytes = gone
        self.events: list[Event] = []
        self.add = self.events.append
        self.entries = 0
        self.segments = 0

    def gone(self, day: date, name: str, record: dict[str, Any], deleted: set[str]) -> None:
        """Report a manifest-listed segment that is no longer stored (or not yet)."""
        if self._staged(Segment(day, name, "parquet", 0, True)) == record.get("sha256"):
            self.add(
                Problem(
                    "incomplete",
                    f"recorded, but still waiting in {STAGING}/ to be published: an upload in "
                    "progress, or one its writer was stopped in (its next flush finishes it)",
                    day,
                    name,
                )
            )
        elif name in deleted:
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

    def segment(
        self,
        segment: Segment,
        record: dict[str, Any] | None,
        earlier: set[str],
        snapshot: Snapshot | None,
    ) -> None:
        """Check one segment against its manifest record (None: it has none)."""
        try:
            data = self.storage.read_segment(segment)
        except FileNotFoundError:
            return  # sealed or deleted meanwhile; the new listing is another run's business
        self.segments += 1
        back = restored_problem(segment, data, self.deleted_bytes.get(segment.name))
        if back is not None:
            self.add(back)  # bytes retention deleted: no reader reads them
            return
        if segment.sealed or record is not None:
            try:
                self._sealed(segment, data, record, earlier)
            except CorruptSegmentError as err:  # bytes its record vouches for, yet damaged
                why = f"the file cannot be decoded any more ({err.__cause__ or err})"
                self.add(Problem("modified", why, segment.day, segment.name))
            return
        vouched: int | None = 0
        if snapshot is not None:
            changed = snapshot_problem(segment, data, snapshot)
            if changed is not None:
                self.add(changed)
            vouched = snapshot[0] if changed is None else None
        self._unsealed(segment, data, vouched)

    # -- sealed segments -----------------------------------------------------------

    def _sealed(
        self, segment: Segment, data: bytes, record: dict[str, Any] | None, earlier: set[str]
    ) -> None:
        if record is None:
            self.add(
                Problem(
                    "inserted",
                    "sealed segment has no manifest record (forged, or its record was removed)",
                    segment.day,
                    segment.name,
                )
            )
        digest = hashlib.sha256(data).hexdigest()
        intact = (
            record is not None
            and len(data) == record.get("bytes")
            and (digest == record.get("sha256"))
        )
        if not intact and record is not None and digest in earlier:
            if self._staged(segment) == record.get("sha256"):
                # Key rotation records the new generation before it replaces the file.
                self.add(
                    Problem(
                        "incomplete",
                        "a replacement of this segment was interrupted: it still holds the "
                        "generation an earlier record vouches for, and the new one waits in "
                        f"{STAGING}/; run the key rotation (rotate_keys) or compaction "
                        "(comply-lab compact) again to finish",
                        segment.day,
                        segment.name,
                    )
                )
            else:
                self.add(
                    Problem(
                        "modified",
                        "holds an earlier generation of this segment (content under keys it "
                        "was rotated away from, or entries deleted since), and no interrupted "
                        "rotation or compaction explains it",
                        segment.day,
                        segment.name,
                    )
                )
            intact = True
        if intact and not self.deep and record is not None:
            self._invalid_entries(segment, record)
            if segment.format == "parquet":
                self._intact_parquet(segment, data)
            else:
                self._decoded(segment, self._jsonl_entries(segment, data, sealed=True))
        else:
            self._inspect(segment, data, record, intact)

    def _staged(self, segment: Segment) -> str | None:
        """Return the digest of the segment's staged next generation, if one waits."""
        staged = Segment(segment.day, f"{STAGING}/{segment.name}", segment.format, 0, True)
        try:
            return hashlib.sha256(self.storage.read_segment(staged)).hexdigest()
        except FileNotFoundError:
            return None

    def _invalid_entries(self, segment: Segment, record: dict[str, Any]) -> None:
        for entry_id in record.get("invalid_entries") or []:
            self.add(
                Problem(
                    "modified",
                    "the entry did not match its hash or canonical form when it was sealed",
                    segment.day,
                    segment.name,
                    entry_id,
                )
            )

    def _intact_parquet(self, segment: Segment, data: bytes) -> None:
        """Bytes match the manifest: follow each writer's chain through the stored hashes.

        The links inside the segment are checked column-wise; only each writer's first
        entry goes through the tracker (against the end of its previous segment). A
        segment with any broken link is walked entry by entry to classify the problem.
        """
        table = decode_part(self.storage, segment, data, columns=_CHAIN_COLUMNS)
        self.entries += table.num_rows
        if self.shredded:
            self._shredded_rows(segment, data)
        table = table.filter(pc.is_valid(table.column("writer_id")))
        if table.num_rows == 0:
            return
        table = table.take(pc.sort_indices(table, sort_keys=[("writer_id", "ascending")]))
        starts = group_starts(table.column("writer_id"))
        if links_hold(table, starts):
            ends = [*(i - 1 for i in starts[1:]), table.num_rows - 1]
            firsts = table.take(starts).to_pylist()
            lasts = table.take(ends).select(["seq", "entry_hash", "timestamp"]).to_pylist()
            for first, last in zip(firsts, lasts, strict=True):
                self.add(
                    Span(
                        first["writer_id"],
                        first["seq"],
                        first["prev_hash"],
                        first["timestamp"],
                        last["seq"],
                        last["entry_hash"],
                        last["timestamp"],
                        first["id"],
                        segment.day,
                        segment.name,
                    )
                )
            return
        for row in table.to_pylist():
            self._see(row, segment)

    def _shredded_rows(self, segment: Segment, data: bytes) -> None:
        """Report, column-wise, the entries of an intact segment whose key was shredded."""
        columns = [*_SHRED_COLUMNS, *CONTENT_FIELDS]
        table = decode_part(self.storage, segment, data, columns=columns)
        wanted = pa.array(list(self.shredded), pa.string())
        hit = None
        for name in CONTENT_FIELDS:
            found = pc.struct_field(pc.extract_regex(table.column(name), _KEY_OF_CIPHERTEXT), "key")
            matches = pc.fill_null(pc.is_in(found, value_set=wanted), False)
            hit = matches if hit is None else pc.or_(hit, matches)
        for row in table.filter(hit).to_pylist():
            content = [row.get(n) for n in CONTENT_FIELDS]
            key_id = next(k for k in map(_key_of, content) if k in self.shredded)
            self._shred(key_id, row["id"], row["writer_id"], row["seq"], segment.day, segment.name)

    def _inspect(
        self, segment: Segment, data: bytes, record: dict[str, Any] | None, intact: bool
    ) -> None:
        """Decode the segment and find what differs from what was sealed."""
        self.add(MARK)
        if segment.format == "parquet":
            try:
                with decoding(self.storage, segment):
                    table = decode_part(self.storage, segment, data, count_rows=False)
                    entries = list(table_to_entries(table))
            except CorruptSegmentError as err:
                self.add(
                    Problem(
                        "modified",
                        f"the file cannot be decoded any more ({err.__cause__ or err})",
                        segment.day,
                        segment.name,
                    )
                )
                return
            digests = [self._parquet_entry(entry, segment) for entry in entries]
        else:
            entries = self._jsonl_entries(segment, data, sealed=True)
            digests = [entry.entry_hash or entry_hash(entry.record()) for entry in entries]
        self._decoded(segment, entries, follow=segment.format != "parquet")
        if record is None:
            return
        self._compare(segment, entries, digests, record, intact)

    def _compare(
        self,
        segment: Segment,
        entries: list[AuditEntry],
        digests: list[str],
        record: dict[str, Any],
        intact: bool,
    ) -> None:
        """Compare decoded entries with their manifest record: who, how many, which order."""
        leaves = MerkleBuilder()
        hashes = []
        writers = record.get("writers") or {}
        for entry, digest in zip(entries, digests, strict=True):
            hashes.append(leaf_hash(digest_bytes(digest)))
            leaves.add_leaf_hash(hashes[-1])
            chain = writers.get(entry.writer_id) if entry.writer_id else None
            if (
                entry.writer_id
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
        self._check_subtrees(segment, record, hashes)
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

    def _check_subtrees(
        self, segment: Segment, record: dict[str, Any], hashes: list[bytes]
    ) -> None:
        """Report a part whose record keeps subtrees (for retention) that are not its own.

        Checked where the part is decoded (``deep``, or a part that differs from its
        record): an intact part's subtrees are the writer's signed statement, as its
        Merkle root is.
        """
        if "subtrees" not in record:
            return
        start = record.get("tree_start")
        placed = dyadic_blocks(start, hashes) if isinstance(start, int) and start >= 0 else []
        if record["subtrees"] != [[s, n, h.hex()] for s, n, h in placed]:
            self.add(
                IfClean(
                    Problem(
                        "modified",
                        "the subtrees its manifest record keeps for retention do not match "
                        "its entries: retention would keep a tree that is not the log's",
                        segment.day,
                        segment.name,
                    )
                )
            )

    def _parquet_entry(self, entry: AuditEntry, segment: Segment) -> str:
        """Check one decoded entry's hash and chain; return its (recomputed) hash."""
        recomputed = entry_hash(entry.record())
        if entry.entry_hash is not None and entry.entry_hash != recomputed:
            self._modified(entry, segment.day, segment.name, "the entry does not match its hash")
        self._follow(entry, segment.day, segment.name)
        return entry.entry_hash or recomputed

    # -- JSONL -----------------------------------------------------------------------

    def _unsealed(self, segment: Segment, data: bytes, vouched: int | None) -> None:
        """Report an unsealed segment: ``unsealed``, and in a signed log ``pending``.

        In a signed log, entries beyond the first ``vouched`` bytes (what a heartbeat
        vouched for) are signed by nothing yet: ``pending``, an error, whoever wrote them.
        ``vouched`` is None when those bytes were changed (reported already).
        """
        entries = self._jsonl_entries(segment, data, sealed=False)
        self._decoded(segment, entries)
        legacy = sum(1 for e in entries if e.entry_hash is None)
        note = f"{len(entries):,} entries not sealed yet: no manifest covers them"
        if legacy:
            note += f"; {legacy:,} written by another tool carry no hash chain"
        self.add(Problem("unsealed", note, segment.day, segment.name))
        if self.signed and vouched is not None:
            for problem in pending_problems(segment, data, vouched, self.registered):
                self.add(problem)

    def _jsonl_entries(self, segment: Segment, data: bytes, *, sealed: bool) -> list[AuditEntry]:
        """Classify a JSONL segment's lines, report bad ones; return the decodable entries."""
        lines, tail = split_lines(data)
        entries = []
        for line in classify(lines):
            if line.entry is not None:
                entries.append(line.entry)
            if line.kind not in ("entry", "legacy"):
                self._bad_line(segment, line, sealed)
        kind = tail_kind(tail)
        if kind != "none":
            where = f"{segment.name} line {len(lines) + 1}"
            if kind == "edited" or sealed:
                what = "the last entry lost its line end" if kind == "edited" else "bytes"
                self.add(
                    Problem(
                        "modified",
                        f"{what} after the last line ({len(tail)} bytes): the file was edited",
                        segment.day,
                        where,
                    )
                )
            else:
                self.add(
                    Problem(
                        "unsealed",
                        f"incomplete last line ({len(tail)} bytes): a write "
                        "torn by a crash, never acknowledged",
                        segment.day,
                        segment.name,
                    )
                )
        return entries

    def _bad_line(self, segment: Segment, line: Line, sealed: bool) -> None:
        place = f"{segment.name} line {line.number}"
        if line.kind == "fragment" and not sealed:
            # What a write that did not complete leaves (never acknowledged). Removing a
            # real entry this way leaves a gap in its writer's chain, reported there.
            self.add(
                Problem(
                    "unsealed",
                    f"{line.reason} from a write that did not complete (disk full or a "
                    "crash); never acknowledged",
                    segment.day,
                    place,
                )
            )
        elif line.entry is not None:
            self._modified(line.entry, segment.day, place, f"the line is invalid: {line.reason}")
        else:
            self.add(
                Problem(
                    "modified",
                    f"the line is not an entry any more ({line.reason})",
                    segment.day,
                    place,
                )
            )

    # -- entries -----------------------------------------------------------------------

    def _decoded(self, segment: Segment, entries: list[AuditEntry], follow: bool = True) -> None:
        """Check decoded entries' content and, unless done already, follow their chains."""
        self.entries += len(entries)
        for entry in entries:
            self._content(entry, segment.day, segment.name)
            if follow:
                self._follow(entry, segment.day, segment.name)

    def _modified(self, entry: AuditEntry, day: date, place: str, why: str) -> None:
        self.add(Problem("modified", why, day, place, entry.id, entry.writer_id, entry.seq))

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
                    entry.timestamp,
                )
            )

    def _see(self, row: dict[str, Any], segment: Segment) -> None:
        chain = (row["writer_id"], row["seq"], row["prev_hash"], row["entry_hash"], row["id"])
        self.add(See(*chain, segment.day, segment.name, row["timestamp"]))

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

    def _content(self, entry: AuditEntry, day: date, place: str) -> None:
        """Report shredded content, and plain text that does not match its fingerprint."""
        if self.shredded:
            for text in (entry.input_content, entry.output_content):
                key_id = _key_of(text)
                if key_id in self.shredded:
                    self._shred(key_id, entry.id, entry.writer_id, entry.seq, day, place)
                    break
        problem = content_problem(entry)
        if problem is not None:
            self._modified(entry, day, place, problem)


def _key_of(text: object) -> str | None:
    return key_id_of(text) if isinstance(text, str) else None
