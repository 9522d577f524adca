"""Crash safety: a writer killed at every kind of kill point loses nothing acknowledged.

Each path runs ``TRIALS`` trials (300 in CI; ``COMPLY_LAB_CRASH_TRIALS`` for more). In each
a forked child does the work and dies at one kill point (see ``tests/crash.py``); the
parent then checks what readers see, recovers as a restarted process would, and checks
again: every acknowledged entry is readable exactly once, no reader sees a partial file,
and verification passes or reports only the unacknowledged tail (``unsealed``).
"""

from __future__ import annotations

import json
import random
import shutil
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from comply_lab import AuditLogger, KeyRing, open_log, rotate_keys
from comply_lab._time import day_end
from comply_lab.audit import FileStorage, Storage
from comply_lab.errors import NoLogError
from comply_lab.integrity.verify import verify
from comply_lab.retention.holds import place_hold
from comply_lab.retention.policy import apply_retention, plan_retention
from comply_lab.storage.arrow import table_to_entries
from comply_lab.storage.compaction import compact
from comply_lab.storage.manifest import HOLDS, parse_records
from tests.conftest import FakeClock, new_bucket
from tests.crash import TRIALS, Ack, kill_points, run_child

pytestmark = pytest.mark.slow  # kills processes at every durable step

T0 = datetime(2026, 1, 29, 23, 59, 59, tzinfo=UTC)
RING = KeyRing.generate("old")
NEW_RING = KeyRing.from_text(KeyRing.generate("new").to_text() + "," + RING.to_text())


def _ids(storage: Storage) -> list[str]:
    return [e.id for day in storage.days() for e in storage.read_day(day)]


def _errors(storage: Storage) -> list[str]:
    try:
        report = verify(storage, progress=False, allow_unsigned=True)
    except NoLogError:
        return []  # killed before anything was written: nothing to verify
    return [p.line() for p in report.problems if p.severity == "error"]


def _run_path(
    name: str,
    prepare: Callable[[Path], Any],
    action: Callable[[Path, Ack], None],
    check: Callable[[Path, list[str], Any, bool], None],
    tmp_path: Path,
    trials: int = TRIALS,
) -> None:
    """Dry-run to count kill points, then kill a child at each of ``trials`` and check."""
    template = tmp_path / "template"
    context = prepare(template)
    dry = shutil.copytree(template, tmp_path / "dry")
    killed, _, total = run_child(lambda ack: action(dry, ack), None)
    assert not killed and total > 0
    points = kill_points(total, trials)
    assert len(set(points)) == min(total, len(points))  # every point, or spread over all
    for trial, point in enumerate(points):
        store = shutil.copytree(template, tmp_path / f"{name}-{trial}")
        killed, acked, _ = run_child(lambda ack, s=store: action(s, ack), point)
        assert killed, f"kill point {point} of {total} was never reached"
        check(store, acked, context, trial % 25 == 0)
        shutil.rmtree(store)


def _assert_once(ids: list[str], acked: list[str], extra: int = 1) -> None:
    counts = Counter(ids)
    assert not [i for i, n in counts.items() if n > 1], "an entry is read twice"
    missing = set(acked) - set(counts)
    assert not missing, f"acknowledged entries lost: {sorted(missing)[:3]}"
    assert len(counts) - len(set(acked) & set(counts)) <= extra


def _logging_action(rotation_mb: float, close: bool = False) -> Callable[[Path, Ack], None]:
    def action(store: Path, ack: Ack) -> None:
        rng = random.Random(store.name)
        clock = FakeClock(T0)
        # With close, the store's final heartbeat (a signed-trail append) is killed too.
        storage = FileStorage(
            store, rotation_size_mb=rotation_mb, fsync="never", heartbeat_s=None if close else 0
        )
        logger = AuditLogger(storage, clock=clock)
        for i in range(12):
            clock.advance(milliseconds=400)  # crosses midnight: a new day partition
            ack(logger.log_sync(input="x" * rng.randrange(1, 400), output=f"answer {i}"))
        if close:
            logger.close()

    return action


def _check_logging(store: Path, acked: list[str], _: Any, deep: bool) -> None:
    storage = FileStorage(store, fsync="never")
    _assert_once(_ids(storage), acked)
    if deep:
        assert _errors(storage) == []
    # A restarted writer carries on; everything still reads once.
    with AuditLogger(storage) as logger:
        again = logger.log_sync(input="after the crash", output="ok")
    _assert_once(_ids(FileStorage(store)), [*acked, again])


def _jsonl_store(template: Path, signing: bool = False) -> list[str]:
    clock = FakeClock(T0 - timedelta(days=3))
    storage = FileStorage(template, rotation_size_mb=0.004, fsync="never")
    ids = []
    with AuditLogger(storage, RING, store_content=True, clock=clock) as logger:
        for i in range(60):
            clock.advance(hours=1)
            ids.append(logger.log_sync(input=f"q{i}", output="a", conversation_id=f"c{i % 4}"))
    return ids


def _sealed_store(template: Path) -> list[str]:
    ids = _jsonl_store(template)
    compact(template)
    return ids


class TestCrashes:
    def test_append(self, tmp_path: Path):
        """Killed while appending: acknowledged entries stay, the torn tail is reported."""
        _run_path("append", lambda t: t.mkdir(), _logging_action(100), _check_logging, tmp_path)

    def test_rotation(self, tmp_path: Path):
        """Killed while rotating to new segments (tiny segments, a day change)."""
        _run_path("rotate", lambda t: t.mkdir(), _logging_action(0.001), _check_logging, tmp_path)

    def test_heartbeat(self, tmp_path: Path):
        """Killed while closing: the final heartbeat (segment snapshots) is torn or absent."""
        _run_path("beat", lambda t: t.mkdir(), _logging_action(100, True), _check_logging, tmp_path)

    def test_sealing(self, tmp_path: Path):
        """Killed while sealing JSONL into Parquet and writing the manifest."""

        def check(store: Path, _: list[str], ids: list[str], deep: bool) -> None:
            assert sorted(_ids(FileStorage(store))) == sorted(ids)  # before recovery
            if deep:
                assert _errors(FileStorage(store)) == []
            compact(store)
            assert sorted(_ids(FileStorage(store))) == sorted(ids)
            assert not list(store.glob("audit_*.jsonl")) and not list(store.rglob("*.tmp"))
            if deep:
                assert _errors(FileStorage(store)) == []

        _run_path("seal", _jsonl_store, lambda s, ack: compact(s), check, tmp_path)

    def test_manifest_and_trail_writing(self, tmp_path: Path):
        """Killed while appending chained records (legal holds): none torn, chain intact."""

        def action(store: Path, ack: Ack) -> None:
            storage = FileStorage(store)
            for i in range(10):
                place_hold(storage, f"hold-{i}", conversation_id=f"c{i}", reason="r")
                ack(f"hold-{i}")

        def check(store: Path, acked: list[str], _: Any, deep: bool) -> None:
            records = [r for _, r in parse_records(FileStorage(store).read_metadata(HOLDS)) if r]
            names = [r["name"] for r in records]
            assert names[: len(acked)] == acked and len(names) - len(acked) <= 1
            assert _errors(FileStorage(store)) == []

        _run_path("trail", _sealed_store, action, check, tmp_path)

    def test_retention(self, tmp_path: Path):
        """Killed while applying retention: kept days intact; a re-run finishes cleanly."""
        now = T0 + timedelta(days=1)

        def action(store: Path, ack: Ack) -> None:
            storage = FileStorage(store)
            apply_retention(storage, plan_retention(storage, 1, now))

        def check(store: Path, _: list[str], ids: list[str], deep: bool) -> None:
            storage = FileStorage(store)
            young = {
                e.id
                for day in storage.days()
                if day_end(day) >= now - timedelta(days=1)
                for e in storage.read_day(day)
            }
            apply_retention(storage, plan_retention(storage, 1, now))
            left = _ids(FileStorage(store))
            assert len(left) == len(set(left)) and set(left) == young
            assert _errors(FileStorage(store)) == []

        _run_path("retention", _sealed_store, action, check, tmp_path)

    def test_key_rotation(self, tmp_path: Path):
        """Killed while rotating keys: every entry reads once and decrypts; a re-run ends it."""

        def check(store: Path, _: list[str], ids: list[str], deep: bool) -> None:
            assert sorted(_ids(FileStorage(store))) == sorted(ids)
            if deep:
                plain = open_log(store, progress=False).decrypt(ids, NEW_RING, reason="t")
                assert plain["decrypted"].all()
            rotate_keys(FileStorage(store), NEW_RING)
            entries = [
                e for day in FileStorage(store).days() for e in FileStorage(store).read_day(day)
            ]
            assert sorted(e.id for e in entries) == sorted(ids)
            assert all(str(e.input_content).startswith("cl1:new:") for e in entries)
            assert _errors(FileStorage(store)) == []

        _run_path(
            "keys",
            _sealed_store,
            lambda s, ack: rotate_keys(FileStorage(s), NEW_RING),
            check,
            tmp_path,
        )

    def test_compaction_after_deletions(self, tmp_path: Path):
        """Killed while compaction rewrites parts without deleted entries: never read, then gone."""

        def prepare(template: Path) -> list[str]:
            ids = _sealed_store(template)
            victims = [ids[5], ids[6], ids[30], ids[59]]
            storage = FileStorage(template)
            assert all(storage.delete_sync(i, reason="erasure") for i in victims)
            return [i for i in ids if i not in victims]

        def check(store: Path, _: list[str], kept: list[str], deep: bool) -> None:
            assert sorted(_ids(FileStorage(store))) == sorted(kept)  # before recovery
            if deep:
                assert _errors(FileStorage(store)) == []
            compact(store)
            assert sorted(_ids(FileStorage(store))) == sorted(kept)
            stored = {
                e.id
                for part in store.glob("date=*/*.parquet")
                for e in table_to_entries(pq.read_table(part))
            }
            assert stored == set(kept)
            assert _errors(FileStorage(store)) == []

        # Every one of its 61 kill points is hit (a third of the other paths' trials).
        _run_path("prune", prepare, lambda s, ack: compact(s), check, tmp_path, TRIALS // 3)


def test_s3_upload(tmp_path: Path, s3_endpoint: str) -> None:
    """Killed while uploading the spool to S3: a restart uploads the rest exactly once."""
    from comply_lab.storage.s3 import S3Storage

    def storage(bucket: str, spool: Path) -> S3Storage:
        return S3Storage(
            bucket,
            "a/",
            endpoint_url=s3_endpoint,
            spool_dir=spool,
            flush_interval_s=3600,
            flush_max_entries=10**9,
            fsync="never",
            heartbeat_s=0,  # the template's bucket does not exist: nothing to beat to
        )

    clock = FakeClock(T0)
    template = tmp_path / "template"
    logger = AuditLogger(storage("unused-template", template), clock=clock)
    ids = []
    for i in range(8):
        clock.advance(hours=4)
        ids.append(logger.log_sync(input=f"q{i}", output="a"))
    logger.storage._spool.close()  # type: ignore[attr-defined]  # closed, not uploaded

    def trial(point: int | None, number: int) -> tuple[bool, int, str, Path]:
        bucket = new_bucket(s3_endpoint)
        spool = shutil.copytree(template, tmp_path / f"spool-{number}")
        # As if the writer that left this spool had been writing to this trial's bucket.
        place = {"bucket": bucket, "endpoint": s3_endpoint, "prefix": "a/"}
        (spool / "_destination.json").write_text(json.dumps(place))
        killed, _, total = run_child(lambda ack: storage(bucket, spool).close(), point)
        return killed, total, bucket, spool

    total = trial(None, -1)[1]
    trials = kill_points(total)
    for number, point in enumerate(trials):
        killed, _, bucket, spool = trial(point, number)
        assert killed
        restarted = storage(bucket, spool)
        seen = [e.id for day in restarted.days() for e in restarted.read_day(day)]
        assert sorted(seen) == sorted(ids)  # uploaded or still spooled: each once
        restarted.close()
        final = open_log(f"s3://{bucket}/a/", progress=False)
        assert sorted(final.entries(columns=["id"])["id"]) == sorted(ids)
        if number % 10 == 0:
            assert final.verify(allow_unsigned=True).ok
        shutil.rmtree(spool)
