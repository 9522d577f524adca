"""One clock for the package, one fixed "now" for the tests: green on any day.

The package reads the time only through ``comply_lab._time`` (so ``$COMPLY_LAB_CLOCK_SHIFT``
moves all of it, in every process); the tests never read today's date themselves (they
use the run's fixed clock, see ``tests/hermetic.py``). ``make timeless`` also runs a part
of the suite under Debian's ``faketime`` years ahead.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from comply_lab._time import CLOCK_SHIFT_VARIABLE, utc_now
from comply_lab.errors import ConfigurationError
from tests.conftest import NOW, ROOT
from tests.hermetic import HomeGuard, real_home

CLOCK_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "time_ns"),
}

SYSTEM_CLOCK_ALLOWED = {
    "comply_lab/_time.py": "the one clock",
    "tests/hermetic.py": "fixes the run's clock from the real one",
    "tests/conftest.py": "moves the run's clock",
    "tests/test_timeless.py": "checks the clocks",
    "tests/integrity/test_publish.py": "S3 Object Lock dates count on the server's clock",
    "tests/storage/test_storage_s3.py": "S3 Object Lock dates count on the server's clock",
}


def _clock_reads(path: Path) -> list[int]:
    """Return the lines of ``path`` that read the system clock directly (aliases too)."""
    tree = ast.parse(path.read_text())
    aliases = {
        name.asname: name.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for name in node.names
        if name.asname and name.name in ("time", "datetime")
    }
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and (aliases.get(node.func.value.id, node.func.value.id), node.func.attr) in CLOCK_CALLS
        ):
            found.append(node.lineno)
    return found


def test_nothing_reads_the_system_clock_but_the_one_clock():
    """The package and the tests read "now" only through comply_lab._time (or the run's)."""
    offenders = []
    for folder in ("comply_lab", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative not in SYSTEM_CLOCK_ALLOWED:
                offenders += [f"{relative}:{line}" for line in _clock_reads(path)]
    assert not offenders, f"read the time through comply_lab._time instead: {offenders}"


def test_the_run_sees_its_fixed_now():
    """Whatever today's date, comply_lab's clock reads the run's NOW, running on from it."""
    assert NOW <= utc_now() < NOW + timedelta(hours=2)


def test_the_shift_moves_every_process(monkeypatch: pytest.MonkeyPatch):
    """A process started with the variable sees its own system clock moved by the shift.

    The child reports both its system clock and comply_lab's clock, and the test compares
    the two: under ``faketime @<date>`` every process starts its own clock at that date, so
    the child's system clock need not agree with the parent's.
    """
    shift = timedelta(days=1000, hours=7)
    monkeypatch.setenv(CLOCK_SHIFT_VARIABLE, str(shift.total_seconds()))
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from comply_lab._time import utc_now; import datetime as d; "
            "print(d.datetime.now(d.UTC)); print(utc_now())",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    system, seen = (datetime.fromisoformat(line) for line in done.stdout.splitlines())
    assert shift <= seen - system < shift + timedelta(seconds=5)


@pytest.mark.parametrize("value", ["tomorrow", "nan", "inf", "1e20"])
def test_a_bad_shift_is_a_clear_error(value: str, monkeypatch: pytest.MonkeyPatch):
    """A shift that is not a number of seconds says so, naming the variable."""
    monkeypatch.setenv(CLOCK_SHIFT_VARIABLE, value)
    with pytest.raises(ConfigurationError, match=f"{CLOCK_SHIFT_VARIABLE}=.*not a number"):
        utc_now()


def test_the_run_has_a_home_of_its_own(tmp_path: Path):
    """HOME and the caches point into the run's folder, never the user's."""
    home = Path(os.environ["HOME"])
    assert home != real_home() and Path.home() == home
    assert Path(os.environ["XDG_CACHE_HOME"]).is_relative_to(home)
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"


def test_the_home_guard_sees_every_change(tmp_path: Path):
    """A file added, changed or removed under a watched home is named; ignored names are not."""
    (tmp_path / ".cache").mkdir()
    (tmp_path / "kept.txt").write_text("a")
    (tmp_path / "gone.txt").write_text("b")
    guard = HomeGuard(tmp_path, ignore=".noise*")
    guard.start()
    assert guard.changes() == []
    (tmp_path / ".cache" / "new").write_text("c")
    (tmp_path / "kept.txt").write_text("changed")
    (tmp_path / "gone.txt").unlink()
    (tmp_path / ".noise-1").write_text("ignored")
    assert guard.changes() == [".cache/new", "gone.txt", "kept.txt"]
