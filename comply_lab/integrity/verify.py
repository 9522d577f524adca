"""Verification: prove that nothing in a log was altered, removed, reordered or forged.

What is checked, segment by segment in day order (memory stays bounded by one segment):

- the manifest and retention files: each record's hash, the chain of records, and —
  given a public key — each record's Ed25519 signature;
- every sealed (Parquet) segment: listed in the manifest, same size and SHA-256 as when
  sealed. When the bytes differ, the segment is decoded and every entry's hash, the
  writers' positions, the entry count and the Merkle root are compared to find *what*
  changed. ``deep=True`` recomputes all of that even for intact segments;
- every JSONL segment (not yet sealed, reported as ``unsealed``): each line's
  ``entry_hash`` against its bytes;
- every writer's hash chain across all segments: seq 0, 1, 2, ... with each
  ``prev_hash`` equal to the previous ``entry_hash``;
- manifest records whose segment is gone: ``missing``, or ``expired_by_policy`` when the
  retention trail records the deletion;
- entries whose content key was destroyed by a recorded erasure (``_shredded`` trail, see
  :func:`comply_lab.shred_subject`): one ``shredded`` row each, for information;
- optionally, a saved checkpoint (see :mod:`comply_lab.integrity.checkpoint`).

A log that lost its newest sealed segments *and* their manifest records still verifies
locally — no local check can see what is no longer there; a checkpoint kept elsewhere
can.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import fields
from datetime import date
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from comply_lab._progress import progress_bar
from comply_lab._time import TimeLike, to_range
from comply_lab.audit.encryption import looks_encrypted
from comply_lab.audit.entry import (
    CONTENT_FIELDS,
    AuditEntry,
    entry_hash,
    line_verifies,
)
from comply_lab.audit.keyring import key_id_of
from comply_lab.errors import CorruptRecordError
from comply_lab.integrity.chains import ChainTracker, expired_ranges, group_starts, links_hold
from comply_lab.integrity.checkpoint import Checkpoint, check_checkpoint
from comply_lab.integrity.fingerprint import fingerprint
from comply_lab.integrity.merkle import MerkleBuilder, digest_bytes
from comply_lab.integrity.report import Problem, Status, VerificationReport
from comply_lab.integrity.signing import PublicKeyLike, load_public_key
from comply_lab.integrity.trails import check_trail
from comply_lab.storage.arrow import table_to_entries
from comply_lab.storage.base import Storage
from comply_lab.storage.jsonl import complete_record, cut_short
from comply_lab.storage.manifest import (
    ACCESS,
    HOLDS,
    KEYS,
    MANIFEST,
    RETENTION,
    SHREDDED,
)
from comply_lab.storage.segments import Segment

_FIELDS = [f.name for f in fields(AuditEntry)]
_FIELD_SET = frozenset(_FIELDS)
_CHAIN_COLUMNS = ["id", "writer_id", "seq", "prev_hash", "entry_hash"]
_SHRED_COLUMNS = ["id", "writer_id", "seq"]


def verify(
    storage: Storage,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    *,
    public_key: PublicKeyLike | None = None,
    checkpoint: Checkpoint | dict[str, Any] | str | None = None,
    deep: bool = False,
    progress: bool | None = None,
) -> VerificationReport:
    """Verify a store and return the report (see the module documentation for what is checked).

    Args:
        storage: The store.
        start: Verify only days from this one (chains may then start mid-way).
        end: Verify only days up to this one.
        public_key: Ed25519 public key of the writer; without it signatures are not checked.
        checkpoint: A checkpoint saved earlier, to detect truncation of the newest data.
        deep: Recompute every entry hash and Merkle root even where segment digests match.
        progress: Progress bar (None: on terminals and notebooks only).
    """
    return _Verifier(storage, public_key, deep).run(start, end, checkpoint, progress)


class _Verifier:
    def __init__(self, storage: Storage, public_key: PublicKeyLike | None, deep: bool) -> None:
        self.storage = storage
        self.key = None if public_key is None else load_public_key(public_key)
        self.deep = deep
        self.report = VerificationReport()
        self.add = self.report.problems.append
        self.shredded: dict[str, dict[str, Any]] = {}

    def run(
        self,
        start: TimeLike | None,
        end: TimeLike | None,
        checkpoint: Checkpoint | dict[str, Any] | str | None,
        progress: bool | None,
    ) -> VerificationReport:
        lo, hi = to_range(start, end)
        if lo is not None or hi is not None:
            self.report.scope = f"{lo.date() if lo else '...'} to {hi.date() if hi else '...'}"
        manifest = self._chain_file(MANIFEST)
        retention = self._chain_file(RETENTION)
        self._chain_file(ACCESS, require_signatures=False)
        self._chain_file(KEYS, require_signatures=False)
        self._chain_file(HOLDS, require_signatures=False)
        self.shredded = {
            str(r["key_id"]): r
            for r in self._chain_file(SHREDDED, require_signatures=False)
            if isinstance(r.get("key_id"), str)
        }
        self.report.manifest_records = len(manifest)
        signed = any("signature" in r for r in manifest + retention)
        if self.key is not None:
            self.report.signatures = "checked"
        elif signed:
            self.report.signatures = "not checked (no public key)"
        by_segment = self._index(manifest)
        replaced = {r.get("replaces") for r in manifest}  # superseded by key rotation
        if not manifest and self._has_sealed_segments():
            self.add(
                Problem(
                    "missing",
                    "the manifest is gone: no sealed segment can be tied to what was sealed",
                    segment=MANIFEST,
                )
            )
        deleted = {s for r in retention for s in r.get("segments", []) if isinstance(s, str)}
        self.tracker = ChainTracker(
            open_start=lo is not None or bool(retention),
            expired=expired_ranges(retention, by_segment),
        )
        days = set(self.storage.days()) | {_day(r) for r in manifest if _day(r) is not None}
        chosen = sorted(
            d
            for d in days
            if d is not None and (lo is None or d >= lo.date()) and (hi is None or d <= hi.date())
        )
        with progress_bar(len(chosen), "verifying days", enabled=progress) as bar:
            for day in chosen:
                listed = self.storage.segments(day)
                for segment in listed:
                    self._segment(segment, by_segment.get(segment.name))
                names = {s.name for s in listed}
                for name, record in by_segment.items():
                    if _day(record) == day and name not in names and name not in replaced:
                        self._gone(day, name, record, deleted)
                bar.update(1)
        self.report.problems.extend(self.tracker.finish())
        if checkpoint is not None:
            found = check_checkpoint(Checkpoint.load(checkpoint), manifest, self.key)
            self.report.problems.extend(found)
            self.report.checkpoint = "failed" if found else "matched"
        return self.report

    # -- metadata --------------------------------------------------------------------

    def _chain_file(self, name: str, *, require_signatures: bool = True) -> list[dict[str, Any]]:
        """Check a chained metadata file (see :func:`check_trail`); return its records."""
        records, problems = check_trail(
            self.storage.read_metadata(name), name, self.key, require_signatures
        )
        self.report.problems.extend(problems)
        return records

    def _index(self, manifest: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        by_segment: dict[str, dict[str, Any]] = {}
        for record in manifest:
            name = record.get("segment")
            if not isinstance(name, str) or name.startswith("_quarantine/"):
                continue
            if name in by_segment:
                self.add(
                    Problem(
                        "inserted",
                        "a second manifest record for the same segment",
                        _day(record),
                        name,
                    )
                )
            by_segment[name] = record
        return by_segment

    def _has_sealed_segments(self) -> bool:
        return any(
            s.format == "parquet" for day in self.storage.days() for s in self.storage.segments(day)
        )

    def _gone(self, day: date, name: str, record: dict[str, Any], deleted: set[str]) -> None:
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

    # -- segments --------------------------------------------------------------------

    def _segment(self, segment: Segment, record: dict[str, Any] | None) -> None:
        try:
            data = self.storage.read_segment(segment)
        except FileNotFoundError:
            return  # sealed or deleted meanwhile; the new listing is another run's business
        self.report.segments += 1
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
        self.report.entries += table.num_rows
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
                self.tracker.advance(first["writer_id"], last["seq"], last["entry_hash"])
            return
        for row in table.to_pylist():
            self._see(row, segment)

    def _follow(self, entry: AuditEntry, day: date, place: str) -> None:
        """Feed one decoded entry to the chain tracker."""
        if entry.writer_id is not None and entry.seq is not None:
            for problem in self.tracker.see(
                entry.writer_id, entry.seq, entry.prev_hash, entry.entry_hash, entry.id, day, place
            ):
                self.add(problem)

    def _see(self, row: dict[str, Any], segment: Segment) -> None:
        for problem in self.tracker.see(
            row["writer_id"],
            row["seq"],
            row["prev_hash"],
            row["entry_hash"],
            row["id"],
            segment.day,
            segment.name,
        ):
            self.add(problem)

    def _inspect_parquet(
        self, segment: Segment, data: bytes, record: dict[str, Any] | None, intact: bool
    ) -> None:
        """Decode the segment and find what differs from what was sealed."""
        before = len(self.report.problems)
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
        self.report.entries += len(entries)
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
        found = len(self.report.problems) > before
        if not found and leaves.root().hex() != record.get("merkle_root"):
            status: Status = "reordered" if len(entries) == sealed else "modified"
            self.add(
                Problem(
                    status,
                    "every entry verifies but the Merkle root differs from "
                    "the manifest: entries were reordered or replaced",
                    segment.day,
                    segment.name,
                )
            )
        elif not found and not intact:
            self.add(
                Problem(
                    "modified",
                    "the bytes differ from the manifest's SHA-256 though "
                    "every entry verifies: the file was rewritten",
                    segment.day,
                    segment.name,
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
        self.report.entries += checked
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


def _day(record: dict[str, Any]) -> date | None:
    text = record.get("date")
    try:
        return date.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None
