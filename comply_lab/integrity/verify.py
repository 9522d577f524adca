"""Verification: prove that nothing in a log was altered, removed, reordered or forged.

What is checked, day by day (one task per day with an executor, see
:mod:`comply_lab.integrity.days`; serially, memory stays bounded by one day's findings):

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

from concurrent.futures import Executor
from datetime import date
from typing import Any

from comply_lab._progress import progress_bar
from comply_lab._tasks import run_tasks
from comply_lab._time import TimeLike, to_range
from comply_lab.integrity.chains import ChainTracker, expired_ranges
from comply_lab.integrity.checkpoint import Checkpoint, check_checkpoint
from comply_lab.integrity.days import check_day, replay
from comply_lab.integrity.report import Problem, VerificationReport
from comply_lab.integrity.signing import PublicKeyLike, load_public_key
from comply_lab.integrity.trails import check_trail
from comply_lab.storage.base import Storage
from comply_lab.storage.manifest import (
    ACCESS,
    HOLDS,
    KEYS,
    MANIFEST,
    RETENTION,
    SHREDDED,
)


def verify(
    storage: Storage,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    *,
    public_key: PublicKeyLike | None = None,
    checkpoint: Checkpoint | dict[str, Any] | str | None = None,
    deep: bool = False,
    progress: bool | None = None,
    executor: Executor | None = None,
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
        executor: Check days in parallel, one task per day, on this
            ``concurrent.futures.Executor`` (a ``ProcessPoolExecutor``, or Dask's
            ``client.get_executor()``); the report is the same as without it (see
            :mod:`comply_lab.integrity.days`).
    """
    return _Verifier(storage, public_key, deep).run(start, end, checkpoint, progress, executor)


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
        executor: Executor | None,
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
        # Segments superseded by key rotation: their absence is expected.
        replaced = {r["replaces"] for r in manifest if isinstance(r.get("replaces"), str)}
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
        tasks = [
            (
                self.storage,
                day,
                {n: r for n, r in by_segment.items() if _day(r) == day},
                replaced,
                deleted,
                self.shredded,
                self.deep,
            )
            for day in chosen
        ]
        with progress_bar(len(chosen), "verifying days", enabled=progress) as bar:
            # Results come in day order, so the chains are followed in order.
            for result in run_tasks(check_day, tasks, executor):
                replay(result, self.tracker, self.report.problems)
                self.report.entries += result.entries
                self.report.segments += result.segments
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


def _day(record: dict[str, Any]) -> date | None:
    text = record.get("date")
    try:
        return date.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None
