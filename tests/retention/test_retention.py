"""Retention plans, legal holds, the minimum-retention floor, the trail, the schedule, the CLI."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from comply_lab import AuditLogger, InvalidQueryError, open_log
from comply_lab._time import utc_now
from comply_lab.audit import FileStorage, Storage
from comply_lab.audit.schedule import DailyCleanup, next_run
from comply_lab.crypto.signing import generate_signing_key, public_key_pem
from comply_lab.errors import RetentionFloorError
from comply_lab.storage.manifest import HOLDS, RETENTION, parse_records
from tests.conftest import FakeClock, new_bucket, settle, storage_factory

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=29, hours=2)  # 2026-01-30 12:00
PER_DAY = 10


def _month(storage: Storage, clock: FakeClock | None = None) -> AuditLogger:
    """Log 30 days of 10 entries; the conversation ``case-7`` is on 4 January."""
    clock = clock or FakeClock(T0)
    logger = AuditLogger(storage, clock=clock, retention_days=19)
    for day in range(30):
        clock.now = T0 + timedelta(days=day)
        for i in range(PER_DAY):
            conversation = "case-7" if day == 3 and i == 4 else f"c{day}-{i}"
            logger.log_sync(
                input=f"q{i}",
                output="a",
                conversation_id=conversation,
                metadata={"team": "search" if day == 8 else "ads"},
            )
    clock.now = NOW
    settle(storage)
    return logger


@pytest.fixture(params=["parquet", "jsonl", pytest.param("s3-parquet", marks=pytest.mark.slow)])
def storage(request: pytest.FixtureRequest) -> Storage:
    """Return a fresh store of each persistent backend."""
    endpoint = request.getfixturevalue("s3_endpoint") if request.param.startswith("s3") else None
    return storage_factory(request.param, endpoint)()


def _days(*numbers: int) -> list[date]:
    return [(T0 + timedelta(days=n)).date() for n in numbers]


class TestPlanAndApply:
    def test_month_with_holds_plan_apply_verify(self, storage: Storage):
        """Holds keep their days and the rest expires; verification then passes.

        Deleted days show as expired_by_policy; a day deleted by hand shows as missing.
        """
        _month(storage)
        log = open_log(storage, progress=False)
        log.hold("matter-7", conversation_id="case-7", reason="litigation hold 7", who="legal")
        log.hold(
            "audit-q1",
            start=T0 + timedelta(days=5, hours=3),
            end=T0 + timedelta(days=6),
            reason="regulator request",
            who="legal",
        )
        log.hold("team", metadata={"team": "search"}, reason="incident 12", who="sec")
        before = log.count()
        plan = log.retention_plan(days=19, now=NOW)
        assert log.count() == before  # planning changes nothing
        assert list(plan.columns) == ["partition", "entries", "bytes", "action", "reason", "holds"]
        assert len(plan) == 30 and (plan["entries"] == PER_DAY).all() and (plan["bytes"] > 0).all()
        by_day = plan.set_index("partition")
        assert list(plan.loc[plan.action == "delete", "partition"]) == _days(0, 1, 2, 4, 7, 9)
        assert by_day.loc[_days(3)[0], "reason"] == "under hold: matter-7"
        assert by_day.loc[_days(5)[0], "holds"] == ["audit-q1"]
        assert by_day.loc[_days(8)[0], "reason"] == "under hold: team"
        assert set(by_day.loc[_days(*range(10, 30)), "reason"]) == {"within retention"}

        result = log.apply_retention(plan, reason="policy R-7", who="ops")
        assert (result.partitions, result.entries, result.kept) == (_days(0, 1, 2, 4, 7, 9), 60, {})
        assert log.count() == before - 60
        assert sorted(set(log.entries()["timestamp"].dt.date))[:4] == _days(3, 5, 6, 8)

        report = log.verify(allow_unsigned=True)
        assert report.ok, str(report)
        expired = report.to_frame().query("status == 'expired_by_policy'")
        if isinstance(storage, FileStorage) and storage.format == "jsonl":
            assert expired.empty  # nothing was sealed: no manifest record to account for
        else:
            assert sorted(set(expired["partition"])) == _days(0, 1, 2, 4, 7, 9)

        events = log.retention_events()
        deletes = events.query("action == 'delete'")
        assert list(deletes["partition"]) == [d.isoformat() for d in _days(0, 1, 2, 4, 7, 9)]
        assert set(deletes["who"]) == {"ops"} and set(deletes["reason"]) == {"policy R-7"}
        assert set(deletes["days"]) == {19} and list(deletes["entries"]) == [PER_DAY] * 6
        assert list(events.query("action == 'hold'")["name"]) == ["matter-7", "audit-q1", "team"]

        _delete_by_hand(storage, _days(15)[0])
        problems = log.verify().to_frame()
        assert "missing" in set(problems["status"])
        assert _days(15)[0] in set(problems.query("status == 'missing'")["partition"]) or (
            isinstance(storage, FileStorage) and storage.format == "jsonl"
        )

    def test_a_hold_placed_after_planning_still_wins(self, tmp_path: Path):
        """apply_retention re-reads the holds: planning early cannot bypass a new hold."""
        log = open_log(_month(FileStorage(tmp_path, fsync="never")).storage, progress=False)
        plan = log.retention_plan(days=19, now=NOW)
        log.hold("late", start=_days(1)[0], end=_days(1)[0], reason="new matter")
        result = log.apply_retention(plan)
        assert _days(1)[0] in result.kept and "after planning: late" in result.kept[_days(1)[0]]
        assert _days(1)[0] in log.storage.days()

    def test_edited_plan_deletes_only_what_is_left(self, tmp_path: Path):
        """Removing rows keeps those days; marking a kept row 'delete' does not delete it."""
        log = open_log(_month(FileStorage(tmp_path, fsync="never")).storage, progress=False)
        plan = log.retention_plan(days=19, now=NOW)
        edited = plan[plan["partition"] != _days(0)[0]].copy()
        edited.loc[edited["partition"] == _days(20)[0], "action"] = "delete"
        result = log.apply_retention(edited)
        assert result.partitions == _days(1, 2, 3, 4, 5, 6, 7, 8, 9)
        assert _days(0)[0] in log.storage.days() and _days(20)[0] in log.storage.days()
        with pytest.raises(InvalidQueryError, match="retention_plan"):
            log.apply_retention(pd.DataFrame({"partition": [], "action": []}))

    def test_release_makes_days_deletable_again(self, tmp_path: Path):
        """A released hold no longer protects; holds() lists only active holds."""
        log = open_log(_month(FileStorage(tmp_path, fsync="never")).storage, progress=False)
        log.hold("all", reason="everything, for now")
        assert log.retention_plan(days=19, now=NOW)["action"].eq("keep").all()
        assert list(log.holds()["name"]) == ["all"]
        log.release("all", "review done")
        assert log.holds().empty
        assert (log.retention_plan(days=19, now=NOW)["action"] == "delete").sum() == 10
        events = log.retention_events()
        assert list(events["action"]) == ["hold", "release"]

    def test_hold_errors_are_typed_and_store_nothing(self, tmp_path: Path):
        """Missing reasons, duplicate names, unknown releases: clear errors, no record."""
        log = open_log(_month(FileStorage(tmp_path, fsync="never")).storage, progress=False)
        log.hold("h", reason="r")
        with pytest.raises(InvalidQueryError, match="already active"):
            log.hold("h", reason="r")
        with pytest.raises(InvalidQueryError, match="needs a reason"):
            log.hold("x", reason="")
        with pytest.raises(InvalidQueryError, match="needs a name"):
            log.hold(" ", reason="r")
        with pytest.raises(InvalidQueryError, match=r"no active hold named 'y' \(active: h\)"):
            log.release("y", "r")
        with pytest.raises(InvalidQueryError, match="is after end"):
            log.hold("z", start="2026-02-01", end="2026-01-01", reason="r")
        with pytest.raises(InvalidQueryError, match="days must be an int"):
            log.retention_plan(days=-1)
        assert len([r for _, r in parse_records(log.storage.read_metadata(HOLDS)) if r]) == 1


class TestFloor:
    def test_plans_below_the_floor_are_refused_unless_overridden(self, tmp_path: Path):
        """A recorded 183-day floor refuses shorter plans; an override is recorded."""
        logger = _month(FileStorage(tmp_path, fsync="never"))
        log = open_log(tmp_path, progress=False)
        log.set_retention_floor(183, "EU AI Act art. 26(6): six months", who="dpo")
        with pytest.raises(RetentionFloorError, match=r"below this log's minimum retention of 183"):
            log.retention_plan(days=19, now=NOW)
        with pytest.raises(RetentionFloorError, match="six months"):
            logger.cleanup_expired_sync()
        with pytest.raises(RetentionFloorError):
            log.retention_plan(days=200, floor_days=365, now=NOW)
        plan = log.retention_plan(days=19, now=NOW, override="court order 2026-17")
        assert plan["reason"].iloc[0].endswith("overridden: court order 2026-17")
        assert log.apply_retention(plan).entries == 100
        record = next(r for _, r in parse_records(log.storage.read_metadata(RETENTION)) if r)
        assert record["policy"]["override"] == "court order 2026-17"
        assert record["policy"]["floor_days"] == 183
        assert log.retention_events()["override"].iloc[-1] == "court order 2026-17"

    def test_a_floor_raised_after_planning_still_protects(self, tmp_path: Path):
        """apply_retention re-reads the floor too."""
        _month(FileStorage(tmp_path, fsync="never"))
        log = open_log(tmp_path, progress=False)
        plan = log.retention_plan(days=19, now=NOW)
        log.set_retention_floor(183, "policy")
        result = log.apply_retention(plan)
        assert result.entries == 0 and len(result.kept) == 10
        assert "minimum retention of 183 days" in next(iter(result.kept.values()))


def test_records_are_signed_and_verify(tmp_path: Path) -> None:
    """With a signing key, retention and hold records are signed and verify."""
    key = generate_signing_key()
    storage = FileStorage(tmp_path, format="parquet", signing_key=key, fsync="never")
    _month(storage)
    log = open_log(storage, progress=False)
    log.hold("h", conversation_id="case-7", reason="r")
    log.apply_retention(log.retention_plan(days=19, now=NOW))
    for name in (RETENTION, HOLDS):
        assert all("signature" in r for _, r in parse_records(storage.read_metadata(name)) if r)
    assert log.verify(public_key=public_key_pem(key)).ok
    lines = (tmp_path / HOLDS).read_bytes().replace(b"litigation", b"x").replace(b'"r"', b'"x"')
    (tmp_path / HOLDS).write_bytes(lines)  # an edited hold record is caught
    assert not log.verify(public_key=public_key_pem(key)).ok


def _delete_by_hand(storage: Storage, day: date) -> None:
    if isinstance(storage, FileStorage):
        shutil.rmtree(storage.path / f"date={day.isoformat()}", ignore_errors=True)
        for name in storage.path.glob(f"audit_{day:%Y%m%d}*.jsonl"):
            name.unlink()
        return
    from comply_lab.storage.s3 import S3Storage

    assert isinstance(storage, S3Storage)
    storage.objects.delete_under([f"date={day.isoformat()}/"])


class TestSchedule:
    @pytest.mark.parametrize(
        ("now", "expected"),
        [
            (datetime(2026, 3, 8, 1, 59), datetime(2026, 3, 8, 2, 0, tzinfo=UTC)),
            (datetime(2026, 3, 8, 2, 0, tzinfo=UTC), datetime(2026, 3, 9, 2, 0, tzinfo=UTC)),
            # 21:30 in New York on the night clocks spring forward is 02:30 UTC next day.
            (
                datetime(2026, 3, 7, 21, 30, tzinfo=ZoneInfo("America/New_York")),
                datetime(2026, 3, 9, 2, 0, tzinfo=UTC),
            ),
            (
                datetime(2026, 10, 25, 3, 30, tzinfo=timezone(timedelta(hours=2))),  # 01:30 UTC
                datetime(2026, 10, 25, 2, 0, tzinfo=UTC),
            ),
        ],
    )
    def test_next_run_is_utc_whatever_the_zone(self, now: datetime, expected: datetime):
        """The next run is the next 02:00 UTC, for naive, UTC and zoned clocks, across DST."""
        assert next_run(now, 2) == expected

    def test_runs_daily_survives_errors_and_stops(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ):
        """A failing run is logged and the next day's run happens; stop() ends the task."""
        clock = FakeClock(T0)
        logger = _month(FileStorage(tmp_path, fsync="never"), clock)
        clock.now = datetime(2026, 1, 30, 1, 0, tzinfo=UTC)
        log = open_log(tmp_path, progress=False)
        log.set_retention_floor(183, "policy")  # the first runs fail
        seen: list[datetime] = []

        async def sleep(seconds: float) -> None:
            clock.advance(seconds=seconds)
            seen.append(clock.now)
            if len(seen) == 3:
                log.set_retention_floor(0, "lifted")
            await asyncio.sleep(0)

        async def main() -> DailyCleanup:
            schedule = DailyCleanup(logger, hour=2, clock=clock, sleep=sleep).start()
            while schedule.runs < 2:
                await asyncio.sleep(0.01)
            await schedule.stop()
            assert not schedule.running
            return schedule

        with caplog.at_level(logging.INFO, logger="comply_lab.retention"):
            schedule = asyncio.run(main())
        start = datetime(2026, 1, 30, 2, tzinfo=UTC)
        assert seen[:4] == [start + timedelta(days=d) for d in range(4)]
        assert schedule.failures == 2 and isinstance(schedule.last_error, RetentionFloorError)
        assert schedule.runs >= 2 and logger.storage.days()[0] > date(2026, 1, 10)
        assert "retention run failed" in caplog.text and "deleted" in caplog.text

    def test_rejects_bad_times(self, tmp_path: Path):
        """Hours and minutes out of range are refused."""
        logger = AuditLogger(tmp_path)
        with pytest.raises(InvalidQueryError, match="hour"):
            DailyCleanup(logger, hour=24)
        with pytest.raises(InvalidQueryError, match="minute"):
            DailyCleanup(logger, minute=60)


@pytest.mark.slow
def test_cli_retention_dry_run_then_apply(tmp_path: Path, s3_endpoint: str) -> None:
    """`comply-lab retention` shows the plan, deletes only with --apply, exits 2 on a floor."""
    from comply_lab.storage.s3 import S3Storage

    bucket = new_bucket(s3_endpoint)
    store = S3Storage(bucket, "logs/", endpoint_url=s3_endpoint, spool_dir=tmp_path / "spool")
    clock = FakeClock(utc_now() - timedelta(days=40))
    with AuditLogger(store, clock=clock) as logger:
        for _ in range(40):
            logger.log_sync(input="q", output="a")
            clock.advance(days=1)
    url = f"s3://{bucket}/logs/"
    command = [sys.executable, "-m", "comply_lab.cli", "retention", url, "--days", "30"]
    shown = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "would delete 10 partition(s), 10 entries; run with --apply" in shown.stdout
    assert "within retention" in shown.stdout
    done = subprocess.run(
        [*command, "--apply", "--json", "--reason", "R-7"],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout)
    assert result["deleted"]["entries"] == 10 and len(result["deleted"]["partitions"]) == 10
    assert open_log(url).count() == 30
    open_log(url).set_retention_floor(183, "policy")
    refused = subprocess.run(command, capture_output=True, text=True)
    assert refused.returncode == 2
    assert (
        refused.stderr.startswith("error: 30 days is below") and "Traceback" not in refused.stderr
    )
