"""Many writers at once: processes x threads x asyncio tasks, local and on S3.

Sealing (or uploading), a reader and a retention run go on meanwhile.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from comply_lab import AuditLogger, KeyRing, open_log, rotate_keys
from comply_lab._time import utc_now
from comply_lab.audit import FileStorage, Storage
from comply_lab.errors import ConcurrentOperationError, CorruptLineWarning
from comply_lab.retention.policy import apply_retention, plan_retention
from comply_lab.storage.compaction import compact
from tests.conftest import FakeClock, new_bucket
from tests.tamper import KEY, build, write

pytestmark = pytest.mark.slow  # several processes at once

PROCESSES, THREADS, TASKS, PER_TASK = 3, 3, 4, 40
TOTAL = PROCESSES * THREADS * TASKS * PER_TASK
OLD_DAYS, PER_OLD_DAY = 4, 10


def _writer(make: Callable[[int], Storage], number: int) -> None:
    """One process: THREADS threads, each running TASKS asyncio tasks on one logger."""
    storage = make(number)
    logger = AuditLogger(storage)

    async def task(thread: int, task: int) -> None:
        for i in range(PER_TASK):
            await logger.log(
                input=f"p{number} t{thread} k{task} #{i}",
                output="ok",
                conversation_id=f"{number}-{thread}-{task}",
            )
            await asyncio.sleep(0.005)  # let the other tasks, the sealer and the reader in

    def thread_main(thread: int) -> None:
        async def tasks() -> None:
            await asyncio.gather(*(task(thread, k) for k in range(TASKS)))

        asyncio.run(tasks())

    threads = [threading.Thread(target=thread_main, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    logger.close()


def _run(make: Callable[[int], Storage], reader: Storage) -> list[int]:
    """Run the writer processes while reading and applying retention; return the counts."""
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(make, n)) for n in range(PROCESSES)]
    for p in procs:
        p.start()
    seen = []
    deadline = time.monotonic() + 120
    while any(p.is_alive() for p in procs) and time.monotonic() < deadline:
        with warnings.catch_warnings():  # a line being written right now is skipped
            warnings.simplefilter("ignore", CorruptLineWarning)
            ids = [e.id for day in reader.days() for e in reader.read_day(day)]
        assert len(ids) == len(set(ids)), "a reader saw an entry twice"
        seen.append(len(ids))
        if len(seen) == 2:  # retention runs while the writers write
            apply_retention(reader, plan_retention(reader, 2, utc_now()))
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return seen


def _old_days(storage: Storage) -> None:
    clock = FakeClock(utc_now() - timedelta(days=OLD_DAYS + 3))
    with AuditLogger(storage, clock=clock) as logger:
        for _ in range(OLD_DAYS):
            clock.advance(days=1)
            for i in range(PER_OLD_DAY):
                logger.log_sync(input=f"old {i}", output="")


def _check(storage: Storage) -> None:
    log = open_log(storage, progress=False)
    frame = log.entries(columns=["id", "writer_id", "seq", "timestamp"])
    assert frame["id"].is_unique
    recent = frame[frame["timestamp"] > utc_now() - timedelta(days=1)]
    assert len(recent) == TOTAL
    assert Counter(recent["writer_id"]) == Counter(
        {w: TOTAL // PROCESSES for w in set(recent["writer_id"])}
    )
    assert len(frame) == TOTAL  # every old day was older than 2 days: all expired
    report = log.verify(allow_unsigned=True)
    assert report.ok, str(report)
    assert len(log.retention_events().query("action == 'delete'")) == OLD_DAYS


@pytest.mark.slow
def test_local_store(tmp_path: Path) -> None:
    """Parquet store with tiny segments, so sealing runs all the time."""
    _old_days(FileStorage(tmp_path, format="parquet", fsync="never"))

    def make(_: int) -> Storage:
        return FileStorage(tmp_path, format="parquet", rotation_size_mb=0.02, fsync="never")

    seen = _run(make, FileStorage(tmp_path))
    assert len(seen) >= 2  # the reader read (and retention ran) while they wrote
    FileStorage(tmp_path, format="parquet").seal()
    _check(FileStorage(tmp_path))


@pytest.mark.slow
def test_s3_prefix(tmp_path: Path, s3_endpoint: str) -> None:
    """One S3 prefix, a spool per process, uploads every few entries."""
    from comply_lab.storage.s3 import S3Storage

    bucket = new_bucket(s3_endpoint)

    def make(number: int) -> Storage:
        return S3Storage(
            bucket,
            "shared/",
            endpoint_url=s3_endpoint,
            spool_dir=tmp_path / f"spool-{number}",
            flush_max_entries=50,
            flush_interval_s=0.5,
            fsync="never",
        )

    _old_days(make(99))
    _run(
        make, S3Storage(bucket, "shared/", endpoint_url=s3_endpoint, spool_dir=tmp_path / "reader")
    )
    _check(S3Storage(bucket, "shared/", endpoint_url=s3_endpoint, spool_dir=tmp_path / "reader"))


class TestMaintenanceTakesTurns:
    """Two key rotations, compactions or retentions on one log: one runs, the other waits not."""

    @staticmethod
    def _race(action: Callable[[], object], runners: int = 3) -> list[BaseException]:
        barrier = threading.Barrier(runners)
        failures: list[BaseException] = []

        def run() -> None:
            barrier.wait()
            try:
                action()
            except BaseException as err:  # collected for the assertion
                failures.append(err)

        threads = [threading.Thread(target=run) for _ in range(runners)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return failures

    @pytest.mark.parametrize("backend", ["parquet", "s3-parquet"])
    def test_racing_key_rotations(
        self, request: pytest.FixtureRequest, tmp_path: Path, backend: str
    ):
        """The losers get ConcurrentOperationError; the log verifies; a re-run finishes."""
        endpoint = request.getfixturevalue("s3_endpoint") if backend.startswith("s3-") else None
        case = build(backend, tmp_path, endpoint, days=0)
        old = KeyRing.generate("k1")
        write(case.storage(), days=4, per_day=50, encryption=old, store_content=True)
        ring = KeyRing.from_text(KeyRing.generate("k2").to_text() + "," + old.to_text())
        failures = self._race(lambda: rotate_keys(case.storage(), ring, signing_key=KEY))
        assert all(isinstance(f, ConcurrentOperationError) for f in failures), failures
        assert all("another maintenance operation is running" in str(f) for f in failures)
        assert case.verify().ok
        rotate_keys(case.storage(), ring, signing_key=KEY)
        report = case.verify()
        assert report.ok and not [p for p in report.problems if p.status != "unsealed"]

    def test_racing_compactions_and_retention(self, tmp_path: Path):
        """Compactions and a retention racing on a JSONL log: typed refusals, nothing lost."""
        path = tmp_path / "log"
        ids = write(FileStorage(path, signing_key=KEY, fsync="never"), days=4, per_day=100)
        storage = FileStorage(path, signing_key=KEY)
        plan = plan_retention(storage, 1, datetime(2026, 1, 31, 12, tzinfo=UTC))
        actions = [lambda: compact(path, KEY), lambda: apply_retention(storage, plan)] * 2
        index = iter(range(len(actions)))
        failures = self._race(lambda: actions[next(index)](), runners=len(actions))
        assert all(isinstance(f, ConcurrentOperationError) for f in failures), failures
        compact(path, KEY)
        apply_retention(FileStorage(path, signing_key=KEY), plan)
        left = open_log(path).entries(columns=["id", "timestamp"])
        assert set(left["id"]) <= set(ids) and len(left) == len(set(left["id"]))
        assert open_log(path).verify(public_key=KEY).ok
