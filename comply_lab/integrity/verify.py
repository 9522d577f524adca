"""Verification: prove that nothing in a log was altered, removed, reordered or forged.

What is checked (days one task each with an executor, see
[`comply_lab.integrity.days`][comply_lab.integrity.days]):

- every trail ([`TRAILS`][comply_lab.storage.manifest.TRAILS]): each record's canonical form,
  hash, link to the one before and, given the public key, Ed25519 signature. Only authentic
  records explain anything (a retention, a deletion on request, an erasure);
- every segment with a manifest record, Parquet or JSONL, local or in S3: its size and
  SHA-256, and when they differ every entry, the count, the writers' positions and the
  Merkle root (``deep=True`` recomputes those for intact segments too); every unsealed
  JSONL line (exactly the canonical line of its values), and what heartbeats vouched for;
- every writer's hash chain across all segments: seq 0, 1, 2, ..., each ``prev_hash``
  the previous ``entry_hash``, across recorded retention and deletions on request;
- every file a dataset reader (pandas, pyarrow, DuckDB, the SQL engines of
  ``comply-lab ddl``) would read: one no manifest record vouches for is ``inserted``;
  and every id index run in use;
- freshness (a log promising heartbeats with no record that recent is ``stale``), and
  optionally a saved checkpoint (the tree of entries and every trail's head).

A log that holds signatures verifies only with its public key: without one the verdict
is ``UNVERIFIED`` unless the caller accepts unsigned checking (``require_signatures``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import Executor
from datetime import date, datetime
from typing import Any

from comply_lab._progress import progress_bar
from comply_lab._tasks import run_tasks
from comply_lab._time import TimeLike, to_range
from comply_lab.crypto.signing import PublicKeyLike
from comply_lab.errors import CorruptSegmentError, IntegrityError, InvalidQueryError, NoLogError
from comply_lab.integrity.chains import ChainTracker, expired_ranges
from comply_lab.integrity.checkpoint import (
    Checkpoint,
    check_checkpoint,
    check_heads,
    pinned_verifier,
)
from comply_lab.integrity.days import check_day
from comply_lab.integrity.deletions import deletion_findings, ghosts, pruning_of
from comply_lab.integrity.events import replay
from comply_lab.integrity.freshness import stale
from comply_lab.integrity.genesis import genesis_problems, promised_cadence, quarantine_problems
from comply_lab.integrity.holds import broken_holds
from comply_lab.integrity.idindex import check_runs
from comply_lab.integrity.orphans import classify_orphan
from comply_lab.integrity.report import Problem, VerificationReport
from comply_lab.integrity.signatures import signature_status
from comply_lab.integrity.timestamp import check_timestamp
from comply_lab.integrity.tlog import LogTree
from comply_lab.integrity.trails import Trail, check_trail
from comply_lab.integrity.unsealed import Snapshot, admitted
from comply_lab.integrity.witness import check_witnesses, witness_verifiers
from comply_lab.storage.base import Storage
from comply_lab.storage.capabilities import DataFiles
from comply_lab.storage.deletions import deletion_records_in
from comply_lab.storage.jsonl import summarize_jsonl
from comply_lab.storage.listing import deleted_digests
from comply_lab.storage.location import BUNDLE_HINT
from comply_lab.storage.manifest import (
    DELETIONS,
    HEARTBEAT,
    IDS,
    MANIFEST,
    RETENTION,
    SHREDDED,
    SIGNERS,
    TRAILS,
)
from comply_lab.storage.segments import QUARANTINE, Segment, parse_jsonl_name
from comply_lab.storage.signers import authority
from comply_lab.storage.vouchers import standing_snapshots

_SAME_SEGMENT = (
    "segment",
    "source",
    "date",
    "entries",
    "first_timestamp",
    "last_timestamp",
    "first_entry_hash",
    "last_entry_hash",
    "merkle_root",
    "writers",
    "invalid_entries",
)


def verify(
    storage: Storage,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    *,
    public_key: PublicKeyLike | None = None,
    checkpoint: Checkpoint | dict[str, Any] | str | None = None,
    deep: bool = False,
    require_signatures: bool = True,
    as_of: TimeLike | None = None,
    progress: bool | None = None,
    executor: Executor | None = None,
    witness_keys: Sequence[str] = (),
    witnesses: int = 1,
    timestamp: bytes | str | os.PathLike[str] | None = None,
    tsa_certs: str | os.PathLike[str] | None = None,
    origin: str | None = None,
    allow_unsigned: bool = False,
) -> VerificationReport:
    """Verify a store and return the report (see the module documentation for what is checked).

    Args:
        storage: The store.
        start: Verify only days from this one (chains may then start mid-way).
        end: Verify only days up to this one.
        public_key: Ed25519 public key of the writer; every record must carry its signature.
        checkpoint: A checkpoint saved earlier, to detect truncation of the newest data.
        deep: Recompute every entry hash and Merkle root even where segment digests match.
        require_signatures: With False, a signed log verified without ``public_key`` can
            be OK (signatures are then not checked); by default it is ``UNVERIFIED``.
        as_of: The time to judge freshness at (default: now), for a copy of a log.
        progress: Progress bar (None: on terminals and notebooks only).
        executor: Check days in parallel, one task per day, on this
            ``concurrent.futures.Executor`` (a ``ProcessPoolExecutor``, or Dask's
            ``client.get_executor()``); the report is the same as without it (see
            [`comply_lab.integrity.events`][comply_lab.integrity.events]).
        witness_keys: Witness verifier keys (or files holding them): the checkpoint must
            carry at least ``witnesses`` valid cosignatures by them (see
            `comply_lab.integrity.witness`).
        witnesses: The quorum of witnesses.
        timestamp: An RFC 3161 timestamp of the checkpoint (its bytes, or its file), to
            check against the authority's root certificates ``tsa_certs`` (a PEM file);
            the report then states when the checkpoint is proven to have existed.
        tsa_certs: See ``timestamp``.
        origin: The log's origin, which ``checkpoint`` must name (default: the one a
            verifier key given as ``public_key`` carries, else the key's default origin,
            ``comply-lab/<fingerprint>``).
        allow_unsigned: Accept a log with no signature at all (the original tool's, or
            one written without a signing key) as OK, when no key is given; by default it
            is ``UNSIGNED``: consistent, which proves nothing against whoever can write it.

    Raises:
        NoLogError: the store holds no log at all (no segment, no trail).
        InvalidQueryError: witness keys or a timestamp without a checkpoint, a quorum
            out of range, or a timestamp without the authority's certificates.
        InvalidKeyError: a witness key is not one, or the certificates are unreadable.
    """
    pinned = None
    if public_key is not None:
        public_key, pinned = pinned_verifier(public_key, origin)
    verifier = _Verifier(storage, public_key, deep, require_signatures, pinned, allow_unsigned)
    if witness_keys and checkpoint is None:
        raise InvalidQueryError("witnesses cosign checkpoints: give the checkpoint they cosigned")
    report = verifier.run(start, end, checkpoint, as_of, progress, executor)
    if witness_keys and checkpoint is not None:
        found, report.witnessed = check_witnesses(
            Checkpoint.load(checkpoint), witness_verifiers(list(witness_keys)), witnesses
        )
        report.problems.extend(found)
    if timestamp is not None or tsa_certs is not None:
        if checkpoint is None or timestamp is None or tsa_certs is None:
            raise InvalidQueryError(
                "a timestamp is checked with its checkpoint and the authority's certificates: "
                "give all three"
            )
        found, report.timestamped = check_timestamp(
            Checkpoint.load(checkpoint), timestamp, tsa_certs
        )
        report.problems.extend(found)
    return report


class _Verifier:
    def __init__(
        self,
        storage: Storage,
        public_key: PublicKeyLike | None,
        deep: bool,
        require_signatures: bool,
        origin: str | None = None,
        allow_unsigned: bool = False,
    ) -> None:
        self.storage = storage
        self.public_key = public_key
        self.origin = origin
        self.allow_unsigned = allow_unsigned
        self.deep = deep
        self.require_signatures = require_signatures
        self.report = VerificationReport()
        self.add = self.report.problems.append
        self.sealed = 0  # sealed segments the days showed

    def run(
        self,
        start: TimeLike | None,
        end: TimeLike | None,
        checkpoint: Checkpoint | dict[str, Any] | str | None,
        as_of: TimeLike | None,
        progress: bool | None,
        executor: Executor | None,
    ) -> VerificationReport:
        lo, hi = to_range(start, end)
        if lo is not None or hi is not None:
            self.report.scope = f"{lo.date() if lo else '...'} to {hi.date() if hi else '...'}"
        data = {name: self.storage.read_metadata(name) for name in TRAILS}
        self.authority = authority(data[SIGNERS], self.public_key)
        pinned = self.public_key is not None
        trails = {
            name: check_trail(
                data[name],
                name,
                self.authority.keys_for(name) if pinned else None,
                self.authority if pinned else None,
            )
            for name in TRAILS
        }
        days = self.storage.days()
        files = self.storage.data_files() if isinstance(self.storage, DataFiles) else []
        if not days and not any(t.hashes for t in trails.values()):
            raise NoLogError(_no_log(self.storage, files))
        for trail in trails.values():
            self.report.problems.extend(trail.problems)
        self.report.signatures, found = signature_status(
            trails,
            self.storage.read_metadata(SIGNERS),
            public_key=self.public_key,
            require_signatures=self.require_signatures,
            allow_unsigned=self.allow_unsigned,
        )
        self.report.problems.extend(found)
        if self.report.signatures == "checked":  # with nothing signed, "unsigned" says it
            self.report.problems.extend(genesis_problems(trails, self.origin))
        manifest = trails[MANIFEST].records
        self.report.manifest_records = len(trails[MANIFEST].hashes)
        removals = deletion_records_in(trails[DELETIONS].records)
        by_segment, earlier = self._index(manifest, {r["entry_id"] for r in removals})
        retention = trails[RETENTION].records
        deleted = {s for r in retention for s in r.get("segments") or [] if isinstance(s, str)}
        snapshots = standing_snapshots(trails[HEARTBEAT].records, trails[RETENTION].records)
        gone = deleted_digests(retention)
        recorded = {d for d in map(_day, manifest) if d is not None}
        chosen = [d for d in sorted(set(days) | recorded) if _in_range(d, lo, hi)]
        explained = expired_ranges(retention, by_segment)
        if lo is not None or hi is not None:
            # A clock that stepped back puts a writer's entries in other days: in a limited
            # verification, those the manifest places in days outside the range are known.
            outside = [r for r in by_segment.values() if not _in_range(_day(r), lo, hi)]
            elsewhere = expired_ranges([{"segments": [r["segment"] for r in outside]}], by_segment)
            for chain, spans in elsewhere.items():
                explained.setdefault(chain, []).extend(spans)
        tracker = ChainTracker(
            open_start=lo is not None, expired=explained, deleted=ghosts(removals)
        )
        tasks = [
            (
                self.storage,
                day,
                {n: r for n, r in by_segment.items() if _day(r) == day},
                earlier,
                deleted,
                _shredded(trails[SHREDDED].records),
                {n: s for n, s in snapshots.items() if _jsonl_day(n) == day},
                self.deep,
                self.report.signatures == "checked",
                gone,
                admitted({name: trail.records for name, trail in trails.items()}),
            )
            for day in chosen
        ]
        listed = self._days(tasks, tracker, progress, executor)
        self.report.problems.extend(deletion_findings(removals, set(chosen)))
        self.report.problems.extend(quarantine_problems(manifest))
        self.report.problems.extend(check_runs(self.storage, trails[IDS].records))
        self.report.problems.extend(self._chains(tracker, days, set(chosen), lo, hi))
        if not trails[MANIFEST].hashes:
            self._manifest_gone()
        self._vanished(snapshots, listed, {r.get("source") for r in manifest} | deleted, lo, hi)
        self._unvouched(files, listed | set(by_segment), set(chosen), lo, hi, manifest)
        self.report.problems.extend(
            Problem("modified", f"the record gives no valid date ({r['date']!r})", segment=MANIFEST)
            for r in manifest
            if "date" in r and _day(r) is None
        )
        if isinstance(self.storage, DataFiles):
            self._foreign(self.storage.links())
        self._heads(trails)
        self.report.problems.extend(broken_holds(trails))
        if hi is None:
            self.report.problems.extend(stale(trails, as_of, promised_cadence(trails)))
        if checkpoint is not None:
            hashes = {name: trail.hashes for name, trail in trails.items()}
            saved = Checkpoint.load(checkpoint)
            tree = self._tree(manifest) if saved.size is not None else None
            signers = self.authority.keys_for("checkpoint") if pinned else None
            found = check_checkpoint(saved, manifest, signers, hashes, tree, self.origin)
            self.report.problems.extend(found)
            self.report.checkpoint = "failed" if found else "matched"
        return self.report

    def _tree(self, manifest: list[dict[str, Any]]) -> LogTree | None:
        """Return the log's tree of entry hashes, or None when a sealed part is gone.

        A part removed by retention (or by hand) leaves the tree unbuildable; the days'
        checks report a part removed without a retention record, and the checkpoint's
        manifest root still proves the records.
        """
        try:
            return LogTree.build(self.storage, manifest)
        except (IntegrityError, CorruptSegmentError):
            return None

    def _days(
        self,
        tasks: list[tuple[Any, ...]],
        tracker: ChainTracker,
        progress: bool | None,
        executor: Executor | None,
    ) -> set[str]:
        """Check the days, replaying their findings in day order; return what was listed."""
        listed: set[str] = set()
        self.sealed = 0
        with progress_bar(len(tasks), "verifying days", enabled=progress) as bar:
            # Results come in day order, so the chains are followed in order.
            for result in run_tasks(check_day, tasks, executor):
                replay(result, tracker, self.report.problems)
                self.report.entries += result.entries
                self.report.segments += result.segments
                listed |= result.names
                self.sealed += result.sealed
                bar.update(1)
        return listed

    def _chains(
        self,
        tracker: ChainTracker,
        days: list[date],
        chosen: set[date],
        lo: datetime | None,
        hi: datetime | None,
    ) -> list[Problem]:
        """Return what the chains show once every day was seen.

        In a verification limited in time, a gap may be entries a stepped-back clock put
        in days outside the range: the unsealed segments of those days are then read (seq
        ranges only) and gaps they hold are not reported.
        """
        found = tracker.finish()
        if (lo is None and hi is None) or not any(p.status == "missing" for p in found):
            return found
        for day in days:
            if day in chosen:
                continue
            for segment in self.storage.segments(day):
                if segment.sealed:
                    continue  # its manifest record's ranges are known already
                try:
                    spans = summarize_jsonl(self.storage.read_segment(segment))[1]
                except FileNotFoundError:
                    continue
                for writer, span in spans.items():
                    tracker.expired.setdefault(writer, []).append(
                        (span["first_seq"], span["last_seq"], None)
                    )
        return tracker.finish()

    def _manifest_gone(self) -> None:
        if self.sealed:
            self.add(
                Problem(
                    "missing",
                    "the manifest is gone: no sealed segment can be tied to what was sealed",
                    segment=MANIFEST,
                )
            )

    # -- trails ----------------------------------------------------------------------

    def _index(
        self, manifest: list[dict[str, Any]], deleted: set[str]
    ) -> tuple[dict[str, dict[str, Any]], dict[str, set[str]]]:
        """Return the current record of each segment, and the digests earlier ones gave it.

        A segment has one record, or a chain of them when key rotation or compaction gave
        it new generations: each later record must name the digest of the generation it
        replaces (``rotated_from``: the same entries; ``pruned_from``: without entries
        ``deleted`` on request).
        """
        by_segment: dict[str, dict[str, Any]] = {}
        earlier: dict[str, set[str]] = {}
        for record in manifest:
            name = record.get("segment")
            if not isinstance(name, str) or name.startswith(f"{QUARANTINE}/"):
                continue
            previous = by_segment.get(name)
            if previous is None:
                by_segment[name] = record
            elif _rotation_of(record, previous) or pruning_of(record, previous, deleted):
                earlier.setdefault(name, set()).add(str(previous.get("sha256")))
                by_segment[name] = record
            else:
                self.add(
                    Problem(
                        "inserted",
                        "a second manifest record for the same segment that is neither a key "
                        "rotation of it nor its compaction after recorded deletions",
                        _day(record),
                        name,
                    )
                )
        return by_segment, earlier

    # -- what the days did not show ----------------------------------------------------

    def _vanished(
        self,
        snapshots: dict[str, Snapshot],
        listed: set[str],
        explained: set[object],
        lo: datetime | None,
        hi: datetime | None,
    ) -> None:
        """Report unsealed segments a heartbeat vouched for that are gone unexplained."""
        for name, (size, _, at) in sorted(snapshots.items()):
            day = _jsonl_day(name)
            if name in listed or name in explained or not _in_range(day, lo, hi):
                continue
            self.add(
                Problem(
                    "missing",
                    f"the heartbeat of {at} vouched for {size:,} bytes of this unsealed "
                    "segment; it is gone, and no manifest or retention record explains it",
                    _jsonl_day(name),
                    name,
                )
            )

    def _unvouched(
        self,
        files: list[str],
        vouched: set[str],
        days: set[date],
        lo: datetime | None,
        hi: datetime | None,
        manifest: list[dict[str, Any]],
    ) -> None:
        """Report files dataset readers would read that no manifest record vouches for.

        In a verification limited in time, only the partitions in range are looked at.
        """
        hot: list[Segment] | None = None  # listed only when some file needs it
        for name in files:
            if name in vouched:
                continue
            if not _in_range(day := _partition_day(name), lo, hi):
                continue
            if hot is None:
                hot = [s for d in days for s in self.storage.segments(d) if not s.sealed]
            self.add(classify_orphan(self.storage, name, day, hot, manifest))

    def _foreign(self, links: list[str]) -> None:
        """Report the symbolic links inside the log, whatever the range verified."""
        for name in links:
            self.add(
                Problem(
                    "foreign",
                    "a symbolic link inside the log: comply_lab never reads, appends to, "
                    "copies or deletes through it, but other readers of the directory may "
                    "follow it; move it out of the log",
                    _partition_day(name),
                    name,
                )
            )

    def _heads(self, trails: dict[str, Trail]) -> None:
        """Report trails that no longer extend what a heartbeat saw of them.

        Each trail is reported once, against the newest heartbeat it contradicts.
        """
        hashes = {name: trail.hashes for name, trail in trails.items()}
        found: dict[str | None, Problem] = {}
        for beat in trails[HEARTBEAT].records:
            claims = beat.get("trails") or {}
            for problem in check_heads(claims, hashes, f"the heartbeat of {beat.get('at')}"):
                found[problem.segment] = problem
        self.report.problems.extend(found.values())


def _rotation_of(record: dict[str, Any], previous: dict[str, Any]) -> bool:
    return record.get("rotated_from") == previous.get("sha256") and all(
        record.get(k) == previous.get(k) for k in _SAME_SEGMENT
    )


def _shredded(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Return the authentic erasure records by the content key id they destroyed."""
    return {str(r["key_id"]): r for r in records if isinstance(r.get("key_id"), str)}


def _no_log(storage: Storage, files: list[str]) -> str:
    what = (
        f"{len(files)} file(s) that are not part of a log, such as {', '.join(files[:3])}"
        if files
        else "nothing at all"
    )
    if "SHA256SUMS" in files:
        return f"{storage} {BUNDLE_HINT}"
    return (
        f"{storage} holds no log: no segments (audit_*.jsonl, date=*/part-*.parquet) and no "
        f"manifest or other trail; found {what}. Check the path"
    )


def _day(record: dict[str, Any]) -> date | None:
    text = record.get("date")
    try:
        return date.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _in_range(day: date | None, lo: datetime | None, hi: datetime | None) -> bool:
    """Whether a finding about ``day`` (None: no day) belongs to the time range verified."""
    if day is None:
        return lo is None and hi is None
    return (lo is None or day >= lo.date()) and (hi is None or day <= hi.date())


def _jsonl_day(name: str) -> date | None:
    found = parse_jsonl_name(name)
    return None if found is None else found[0]


def _partition_day(name: str) -> date | None:
    head = name.split("/", 1)[0]
    if not head.startswith("date="):
        return None
    try:
        return date.fromisoformat(head.removeprefix("date="))
    except ValueError:
        return None
