"""Sealing never signs in bytes a heartbeat vouched for that were cut or changed since.

And the honest operations around heartbeats (retention, clock steps, writers beating at
other cadences) raise no false alarm; hostile records raise typed findings, not crashes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from comply_lab import AuditLogger, open_log
from comply_lab._time import utc_now
from comply_lab.audit import FileStorage
from comply_lab.crypto.signing import generate_signing_key
from comply_lab.errors import IntegrityError, IntegrityWarning
from comply_lab.retention.policy import apply_retention, plan_retention
from comply_lab.storage.compaction import compact
from comply_lab.storage.manifest import append_record, chain_record, record_line
from tests.conftest import MoveClock

KEY = generate_signing_key()
T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def _log(path: Path, entries: int, text: str = "q", **options: object) -> list[str]:
    storage = FileStorage(path, format="jsonl", signing_key=KEY, **options)
    with AuditLogger(storage) as logger:
        return [logger.log_sync(input=f"{text}{i}", output="a") for i in range(entries)]


def _day_file(path: Path) -> Path:
    return sorted(path.glob("audit_*.jsonl"))[0]


@pytest.mark.parametrize("cut", ["tail", "middle"])
def test_sealing_refuses_bytes_a_heartbeat_vouched_for_that_were_cut(tmp_path: Path, cut: str):
    path = tmp_path / "log"
    _log(path, 6)
    day_file = _day_file(path)
    lines = day_file.read_bytes().splitlines(keepends=True)
    kept = lines[:2] if cut == "tail" else lines[:2] + lines[3:]
    day_file.write_bytes(b"".join(kept))
    assert not open_log(path).verify(public_key=KEY.public_key()).ok
    with pytest.raises(IntegrityError, match="vouched for its first"):
        compact(path, KEY)
    assert day_file.read_bytes() == b"".join(kept)  # nothing was sealed or removed
    assert not open_log(path).verify(public_key=KEY.public_key()).ok


def test_a_day_deleted_by_retention_and_written_again_is_no_false_alarm(
    tmp_path: Path, move_clock: MoveClock
):
    """Retention deletes a day's file; a writer whose clock stepped back writes that day again."""
    path = tmp_path / "log"
    move_clock(T0)
    _log(path, 5, "old")
    move_clock(T0 + timedelta(days=3))
    _log(path, 2, "today")
    storage = FileStorage(path, format="jsonl", signing_key=KEY)
    assert apply_retention(storage, plan_retention(storage, days=1)).partitions
    move_clock(T0 + timedelta(minutes=10))  # the clock steps back to the deleted day
    _log(path, 2, "late")
    move_clock(T0 + timedelta(days=3, hours=1))
    report = open_log(path).verify(public_key=KEY.public_key())
    assert report.ok, str(report)
    compact(path, KEY)
    log = open_log(path)
    assert log.verify(public_key=KEY.public_key()).ok and len(log.entries()) == 4


def test_a_writer_beating_at_another_cadence_than_the_first_is_not_stale(tmp_path: Path):
    path = tmp_path / "log"
    _log(path, 1, heartbeat_s=60)  # the genesis promises a beat a minute
    storage = FileStorage(path, format="jsonl", signing_key=KEY)  # hourly, still running
    logger = AuditLogger(storage)
    logger.log_sync(input="q", output="a")
    storage._heartbeat.beat()
    try:
        report = open_log(path).verify(
            public_key=KEY.public_key(), as_of=utc_now() + timedelta(minutes=20)
        )
        assert "stale" not in {p.status for p in report.problems}, str(report)
    finally:
        logger.close()


def test_a_deletion_record_without_an_entry_id_is_a_finding_not_a_crash(tmp_path: Path):
    path = tmp_path / "log"
    _log(path, 3)
    with (path / "_deletions.jsonl").open("ab") as trail:  # no key: written by hand
        trail.write(record_line(chain_record({"kind": "deletion", "reason": "no id"}, None)))
        trail.write(b"\n")
    report = open_log(path).verify(public_key=KEY.public_key())
    assert not report.ok and "bad_signature" in {p.status for p in report.errors}
    assert len(open_log(path).entries()) == 3


def test_a_manifest_record_with_an_impossible_date_is_a_finding_not_a_crash(tmp_path: Path):
    path = tmp_path / "log"
    with AuditLogger(FileStorage(path, format="parquet")) as logger:
        logger.log_sync(input="q", output="a")
    record = {"segment": "date=2026-13-45/part.parquet", "date": "2026-13-45", "entries": 1}
    append_record(path, record, "_manifest.jsonl")
    log = open_log(path)
    report = log.verify(allow_unsigned=True)
    assert any("no valid date" in p.explanation for p in report.errors), str(report)
    log.checkpoint(KEY)  # taken over the real parts, no ValueError


def test_entries_retention_deleted_stay_deleted_even_rewritten(
    tmp_path: Path, move_clock: MoveClock
):
    """The deleted day's lines put back, one of them rewritten: never shown, never sealed."""
    from comply_lab.model.entry import CONTENT_FIELDS, encode_line

    path = tmp_path / "log"
    storage = FileStorage(path, format="jsonl", signing_key=KEY)
    logger = AuditLogger(storage)
    move_clock(T0)
    logger.log_sync(input="old0", output="a")
    logger.log_sync(input="old1", output="a", safety_passed=False)
    move_clock(T0 + timedelta(days=10))
    logger.log_sync(input="new", output="a")
    logger.close()
    old_file = _day_file(path)
    lines = old_file.read_bytes().splitlines(keepends=True)
    apply_retention(storage, plan_retention(storage, days=5))
    record = {k: v for k, v in json.loads(lines[1]).items() if k != "entry_hash"}
    for name in CONTENT_FIELDS:
        record.pop(name, None)
    record["safety_passed"] = True
    old_file.write_bytes(lines[0] + encode_line(record, None, None)[1] + b"\n")
    with pytest.warns(IntegrityWarning, match="retention deleted"):
        assert len(open_log(path, public_key=KEY.public_key()).entries()) == 1
    assert not open_log(path).verify(public_key=KEY.public_key()).ok
    compact(path, KEY)  # sealing leaves them out for good, as retention would have
    log = open_log(path)
    assert len(log.entries()) == 1 and not (path / "_quarantine").exists()
    assert log.verify(public_key=KEY.public_key()).ok
