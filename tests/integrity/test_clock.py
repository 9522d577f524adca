"""An honest clock never raises an alarm: steps back across midnight, jumps and returns.

Writers take their timestamps (and the day partition each entry goes to) from the clock;
verification follows each writer's chain by sequence number across days, so a clock that
steps back only shows as ``clock_step`` information, with the size of the step.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from comply_lab import AuditLogger, open_log
from tests.tamper import BACKENDS, build, errors

MIDNIGHT = datetime(2026, 1, 30, tzinfo=UTC)


class SteppingClock:
    """Returns the times given, one per call, then keeps the last."""

    def __init__(self, times: list[datetime]) -> None:
        self.times = times

    def __call__(self) -> datetime:
        return self.times.pop(0) if len(self.times) > 1 else self.times[0]


def _log(case: object, times: list[datetime]) -> list[str]:
    storage = case.storage()  # type: ignore[attr-defined]
    logger = AuditLogger(storage, clock=SteppingClock(list(times)))
    ids = [logger.log_sync(input=f"q{i}", output="a") for i in range(len(times))]
    logger.close()
    return ids


BACK_ACROSS_MIDNIGHT = [
    MIDNIGHT - timedelta(seconds=20),
    MIDNIGHT - timedelta(seconds=10),
    MIDNIGHT + timedelta(seconds=5),  # the next day
    MIDNIGHT - timedelta(seconds=5),  # back to the day before (an NTP correction)
    MIDNIGHT + timedelta(seconds=10),
    MIDNIGHT + timedelta(seconds=15),
]
FAR_AND_BACK = [
    MIDNIGHT + timedelta(hours=1),
    datetime(2099, 6, 1, 12, tzinfo=UTC),  # a clock gone wild
    datetime(2099, 6, 1, 12, 0, 1, tzinfo=UTC),
    MIDNIGHT + timedelta(hours=1, seconds=2),  # and corrected
    MIDNIGHT + timedelta(hours=1, seconds=3),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("times", [BACK_ACROSS_MIDNIGHT, FAR_AND_BACK], ids=["midnight", "far"])
def test_an_honest_clock_step_is_information(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, times: list[datetime]
):
    """Every entry is read once, verification is OK, each step back is a clock_step."""
    endpoint = request.getfixturevalue("s3_endpoint") if backend.startswith("s3-") else None
    case = build(backend, tmp_path, endpoint, days=0)
    ids = _log(case, times)
    log = open_log(case.target, progress=False)
    assert sorted(log.entries(columns=["id"])["id"]) == sorted(ids)
    report = case.verify()
    assert report.ok, str(report)
    steps = [p for p in report.problems if p.status == "clock_step"]
    assert len(steps) == 1 and steps[0].severity == "info"
    expected = "10.000 seconds" if times is BACK_ACROSS_MIDNIGHT else "26.5 days"
    if times is FAR_AND_BACK:
        expected = f"{(times[2] - times[3]).total_seconds() / 86400:.1f} days"
    assert f"stepped back {expected}" in steps[0].explanation
    assert case.cli_verify() == 0
    for day in sorted({t.date() for t in times}):  # each day alone verifies too
        assert not errors(case.verify(start=day.isoformat(), end=day.isoformat()))


def test_a_forged_step_is_still_caught(tmp_path: Path):
    """Entries moved between days by hand still break their segments' chains or bytes."""
    case = build("jsonl", tmp_path, days=0)
    _log(case, BACK_ACROSS_MIDNIGHT)
    day_before = case.files.read("audit_20260129.jsonl").splitlines(keepends=True)
    day_after = case.files.read("audit_20260130.jsonl").splitlines(keepends=True)
    case.files.write("audit_20260129.jsonl", b"".join(day_before[:-1]))
    case.files.write("audit_20260130.jsonl", b"".join([day_before[-1], *day_after]))
    assert not case.verify().ok
