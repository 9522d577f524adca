"""Faults from outside: a full or read-only disk, and a failing, flaky or slow S3."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from comply_lab import AuditLogger, StorageError, open_log
from comply_lab.audit import FileStorage
from comply_lab.integrity.verify import verify
from comply_lab.storage.s3 import S3Storage
from tests.conftest import FakeClock, new_bucket
from tests.fault_proxy import Faults, fault_proxy


class _Disk:
    """Makes ``os.write`` fail like a full or read-only disk while ``fault`` is set."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.fault: int | None = None
        self.short = False
        real_write = os.write

        def write(fd: int, data: Any) -> int:
            if self.fault is not None and fd > 2:
                if self.short:  # part of the line fits, then the disk is full
                    return real_write(fd, bytes(data)[: max(len(data) // 2, 1)])
                raise OSError(self.fault, os.strerror(self.fault))
            return real_write(fd, data)

        monkeypatch.setattr(os, "write", write)


@pytest.mark.parametrize(
    ("fault", "short"),
    [(errno.ENOSPC, False), (errno.ENOSPC, True), (errno.EROFS, False), (errno.EDQUOT, False)],
)
def test_full_or_read_only_disk(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, fault: int, short: bool
) -> None:
    """log() raises a typed error; nothing acknowledged is lost; logging resumes after."""
    disk = _Disk(monkeypatch)
    storage = FileStorage(tmp_path, fsync="never")
    logger = AuditLogger(storage, clock=clock)
    acked = [logger.log_sync(input=f"before {i}", output="") for i in range(5)]
    disk.fault, disk.short = fault, short
    for i in range(3):
        with pytest.raises(StorageError, match="not stored"):
            logger.log_sync(input=f"during {i}", output="")
    disk.fault = None  # space freed, or the disk remounted read-write
    acked += [logger.log_sync(input=f"after {i}", output="") for i in range(5)]
    logger.close()
    entries = list(FileStorage(tmp_path).read_day(clock.now.date())) if not short else None
    if short:
        with pytest.warns(Warning, match="not valid JSON"):
            entries = list(FileStorage(tmp_path).read_day(clock.now.date()))
    assert entries is not None and [e.id for e in entries] == acked
    assert [e.seq for e in entries] == list(range(10))  # the chain skipped nothing
    report = verify(FileStorage(tmp_path), progress=False, allow_unsigned=True)
    assert report.ok, str(report)
    fragments = [p for p in report.problems if "fragment" in p.explanation]
    assert len(fragments) == (3 if short else 0)
    assert all(p.status == "unsealed" for p in fragments)


def test_unwritable_directory_on_new_segment(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening a new day's segment on a read-only file system is a StorageError."""
    logger = AuditLogger(FileStorage(tmp_path, fsync="never"), clock=clock)
    logger.log_sync(input="day one", output="")
    real_open = os.open

    def read_only(path: Any, flags: int, *args: Any, **options: Any) -> int:
        if flags & os.O_CREAT:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real_open(path, flags, *args, **options)

    monkeypatch.setattr(os, "open", read_only)
    clock.advance(days=1)
    with pytest.raises(StorageError, match="cannot open log segment"):
        logger.log_sync(input="day two", output="")
    monkeypatch.undo()
    entry_id = logger.log_sync(input="day two, later", output="")
    assert logger.get_entry_sync(entry_id) is not None
    assert len(logger.get_entries_sync("2026-01-01", "2027-01-01")) == 2


def _s3(bucket: str, endpoint: str, spool: Path, **options: Any) -> S3Storage:
    return S3Storage(
        bucket,
        "audit/",
        endpoint_url=endpoint,
        spool_dir=spool,
        flush_interval_s=3600,
        flush_max_entries=10**9,
        fsync="never",
        **options,
    )


def _log(storage: S3Storage, clock: FakeClock, count: int) -> list[str]:
    logger = AuditLogger(storage, clock=clock)
    ids = []
    for i in range(count):
        clock.advance(hours=3)
        ids.append(logger.log_sync(input=f"q{i}", output="a"))
    return ids


_HEARTBEAT_WARNING = "ignore:could not write a heartbeat:comply_lab.errors.ComplyLabWarning"


@pytest.mark.slow
class TestS3Faults:
    @pytest.mark.filterwarnings(_HEARTBEAT_WARNING)
    def test_errors_drops_and_slowness_lose_and_duplicate_nothing(
        self, s3_endpoint: str, tmp_path: Path, clock: FakeClock
    ):
        """Through 500/503s, dropped connections and slow answers: each entry once."""
        faults = Faults(error_rate=0.25, drop_rate=0.15, slow_rate=0.1, slow_s=0.05, seed=3)
        bucket = new_bucket(s3_endpoint)
        with fault_proxy(s3_endpoint, faults) as proxy:
            storage = _s3(bucket, proxy, tmp_path / "spool")
            ids = _log(storage, clock, 40)
            for _ in range(4):  # several uploads, some interrupted
                storage.flush()
            storage.close()
        assert faults.injected["503"] + faults.injected["500"] > 5 and faults.injected["drop"] > 3
        log = open_log(f"s3://{bucket}/audit/", progress=False)
        found = list(log.entries(columns=["id"])["id"])
        assert sorted(found) == sorted(ids) and len(found) == len(set(found))
        assert log.verify(allow_unsigned=True).ok

    @pytest.mark.filterwarnings(_HEARTBEAT_WARNING)  # beats are retried, never raised
    def test_retry_budget_ends_in_a_clear_error_and_nothing_is_lost(
        self, s3_endpoint: str, tmp_path: Path, clock: FakeClock
    ):
        """When S3 keeps failing, flush raises StorageError; the spool keeps everything."""
        faults = Faults(fail_all=True)
        bucket = new_bucket(s3_endpoint)
        with fault_proxy(s3_endpoint, faults) as proxy:
            client = boto3.client(
                "s3",
                endpoint_url=proxy,
                config=Config(retries={"mode": "standard", "max_attempts": 3}),
            )
            storage = _s3(bucket, proxy, tmp_path / "spool", client=client)
            ids = _log(storage, clock, 10)
            with pytest.raises(StorageError, match=r"kept failing \(SlowDown\).*nothing was lost"):
                storage.flush()
            spool = FileStorage(tmp_path / "spool")
            assert sorted(e.id for d in spool.days() for e in spool.read_day(d)) == sorted(ids)
            faults.fail_all = False  # S3 is back
            storage.close()
        assert faults.injected["503"] >= 3
        log = open_log(f"s3://{bucket}/audit/", progress=False)
        assert sorted(log.entries(columns=["id"])["id"]) == sorted(ids)
        assert log.verify(
            allow_unsigned=True
        ).ok  # the final heartbeat, written once S3 was back, verifies
