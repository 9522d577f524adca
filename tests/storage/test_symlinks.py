"""Nothing outside the log root: no operation follows a symbolic link out of a log.

Each test plants links inside a real log — to a folder and to a file outside it — runs
the real operation (logging, sealing, quarantine, reading, retention, key rotation,
decryption records, holds, compaction), and requires that the bytes outside are exactly
as they were, that nothing stored in the log is lost, that an operation which would have
to write through a link stops with :class:`ForeignFileError`, and that verification
names every link ``foreign``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from comply_lab import AuditLogger, KeyRing, open_log, rotate_keys
from comply_lab.audit import FileStorage
from comply_lab.errors import ForeignFileError
from comply_lab.storage.compaction import compact
from comply_lab.storage.folder import sweep_temporaries
from comply_lab.storage.segments import jsonl_name
from tests.conftest import FakeClock

T0 = datetime(2026, 1, 20, 9, tzinfo=UTC)
DAY = T0.date()
RING = KeyRing.generate("k1")


def _state(folder: Path) -> dict[str, bytes | str]:
    """Every name below ``folder`` with its bytes (files) or link target (links)."""
    found: dict[str, bytes | str] = {}
    for place, folders, files in os.walk(folder):
        for name in folders + files:
            path = Path(place) / name
            rel = path.relative_to(folder).as_posix()
            if path.is_symlink():
                found[rel] = f"-> {os.readlink(path)}"
            elif path.is_file():
                found[rel] = path.read_bytes()
            else:
                found[rel] = "folder"
    return found


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """Return a folder outside the log, with a file and a folder for links to point at."""
    out = tmp_path / "outside"
    (out / "folder").mkdir(parents=True)
    (out / "folder" / "part-20260101-000.parquet").write_bytes(b"not the log's part\n")
    (out / "folder" / "audit_20260120.jsonl").write_bytes(b'{"keep": "me"}\n')
    (out / "victim.jsonl").write_bytes(b'{"precious": true}\n')
    return out


def _log(path: Path, days: int = 3, fmt: str = "parquet", close: bool = True) -> FileStorage:
    """Log ``days`` days of 6 encrypted entries each; sealed (and closed) when ``close``."""
    storage = FileStorage(path, format=fmt, heartbeat_s=0)  # type: ignore[arg-type]
    clock = FakeClock(T0)
    logger = AuditLogger(storage, RING, store_content=True, clock=clock)
    for day in range(days):
        for i in range(6):
            clock.now = T0 + timedelta(days=day, hours=i)
            logger.log_sync(input=f"question {day}-{i}", output="answer")
    if close:
        storage.close()
    return storage


def _rotated(tmp_path: Path) -> tuple[Path, FileStorage]:
    """Return an open one-day log whose segment is rotated, ready to seal."""
    log = tmp_path / "log"
    storage = _log(log, days=1, close=False)
    storage.rotate()
    return log, storage


def _foreign(log: Path) -> set[str]:
    report = open_log(log, progress=False).verify()
    return {str(p.segment) for p in report.problems if p.status == "foreign"}


def _unchanged(outside: Path, action: Callable[[], object]) -> None:
    before = _state(outside)
    action()
    assert _state(outside) == before


class TestLogging:
    def test_appends_skip_a_linked_segment(self, tmp_path: Path, outside: Path):
        """The logger never appends to a link named like the day's segment; it takes the next."""
        log = tmp_path / "log"
        log.mkdir()
        (log / jsonl_name(DAY, 0)).symlink_to(outside / "victim.jsonl")
        _unchanged(outside, lambda: _log(log, days=1, fmt="jsonl"))
        assert (log / jsonl_name(DAY, 1)).read_bytes().count(b"\n") == 6
        assert open_log(log, progress=False).count() == 6
        assert _foreign(log) == {jsonl_name(DAY, 0)}

    def test_sealing_refuses_a_linked_partition(self, tmp_path: Path, outside: Path):
        """The JSONL source stays whole; once the link is gone, sealing finishes."""
        log, storage = _rotated(tmp_path)
        (log / f"date={DAY}").symlink_to(outside / "folder", target_is_directory=True)
        with pytest.raises(ForeignFileError, match="symbolic link"):
            _unchanged(outside, storage.seal)
        assert (log / jsonl_name(DAY, 0)).read_bytes().count(b"\n") == 6
        assert _foreign(log) == {f"date={DAY}"}
        (log / f"date={DAY}").unlink()
        storage.close()
        assert open_log(log, progress=False).verify(allow_unsigned=True).ok

    @pytest.mark.parametrize("link", ["_sealed", "_manifest.jsonl"])
    def test_sealing_never_writes_a_linked_marker_or_trail(
        self, tmp_path: Path, outside: Path, link: str
    ):
        log, storage = _rotated(tmp_path)
        target = outside / ("folder" if link == "_sealed" else "victim.jsonl")
        (log / link).symlink_to(target)
        with pytest.raises(ForeignFileError):
            _unchanged(outside, storage.seal)
        assert open_log(log, progress=False).count() == 6  # nothing lost
        assert link in _foreign(log)


@pytest.mark.filterwarnings("ignore::comply_lab.errors.CorruptLineWarning")
class TestQuarantine:
    @pytest.mark.parametrize("linked", ["folder", "file"])
    def test_damaged_lines_are_never_copied_through_a_link(
        self, tmp_path: Path, outside: Path, linked: str
    ):
        """The source with its damaged line is kept; the quarantine copy is owner-only."""
        log, storage = _rotated(tmp_path)
        with open(log / jsonl_name(DAY, 0), "ab") as f:
            f.write(b'{"torn": \n')
        if linked == "folder":
            (log / "_quarantine").symlink_to(outside / "folder", target_is_directory=True)
        else:
            (log / "_quarantine").mkdir()
            (log / "_quarantine" / jsonl_name(DAY, 0)).symlink_to(outside / "victim.jsonl")
        source = (log / jsonl_name(DAY, 0)).read_bytes()
        with pytest.raises(ForeignFileError):
            _unchanged(outside, storage.seal)
        assert (log / jsonl_name(DAY, 0)).read_bytes() == source
        for link in ["_quarantine", f"_quarantine/{jsonl_name(DAY, 0)}"]:
            if (log / link).is_symlink():
                (log / link).unlink()
        storage.close()
        copy = log / "_quarantine" / jsonl_name(DAY, 0)
        assert copy.read_bytes() == source
        assert copy.stat().st_mode & 0o777 == 0o600


class TestReadingAndRetention:
    def test_linked_partition_and_part_are_neither_read_nor_deleted(
        self, tmp_path: Path, outside: Path
    ):
        log = tmp_path / "log"
        _log(log)
        (log / "date=2026-01-10").symlink_to(outside / "folder", target_is_directory=True)
        (log / f"date={DAY}" / "part-20260120-009.parquet").symlink_to(
            outside / "folder" / "part-20260101-000.parquet"
        )
        opened = open_log(log, progress=False)
        assert opened.count() == 18
        assert len(opened.entries()) == 18
        assert _foreign(log) == {"date=2026-01-10", f"date={DAY}/part-20260120-009.parquet"}

        def expire() -> None:
            plan = opened.retention_plan(days=0, now=T0 + timedelta(days=30))
            opened.apply_retention(plan, reason="all of it")

        _unchanged(outside, expire)
        assert opened.count() == 0
        assert (log / "date=2026-01-10").is_symlink()
        assert (log / f"date={DAY}" / "part-20260120-009.parquet").is_symlink()
        report = open_log(log, progress=False).verify(allow_unsigned=True)
        assert {p.status for p in report.problems} == {"foreign", "expired_by_policy"}

    @pytest.mark.slow  # several CLI subprocesses
    def test_cli_retention_leaves_a_link_and_verify_names_it(self, tmp_path: Path, outside: Path):
        log = tmp_path / "log"
        _log(log)
        (log / "date=2026-01-10").symlink_to(outside / "folder", target_is_directory=True)
        before = _state(outside)
        run = [sys.executable, "-m", "comply_lab.cli"]
        env = {**os.environ, "COMPLY_LAB_PROGRESS": "0"}
        done = subprocess.run(
            [*run, "retention", str(log), "--days", "1", "--apply"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        verified = subprocess.run(
            [*run, "verify", str(log)], capture_output=True, text=True, env=env, timeout=120
        )
        assert verified.returncode == 1
        assert "FOREIGN" in verified.stdout and "date=2026-01-10" in verified.stdout
        assert _state(outside) == before


class TestMaintenance:
    def test_rotation_refuses_a_linked_staging_folder(self, tmp_path: Path, outside: Path):
        log = tmp_path / "log"
        _log(log)
        (log / "_staging").symlink_to(outside / "folder", target_is_directory=True)
        new = KeyRing.from_text(KeyRing.generate("k2").to_text() + "," + RING.to_text())
        with pytest.raises(ForeignFileError):
            _unchanged(outside, lambda: rotate_keys(open_log(log), new))
        (log / "_staging").unlink()
        assert rotate_keys(open_log(log), new).rotated
        assert open_log(log, progress=False).verify(allow_unsigned=True).ok

    @pytest.mark.parametrize(
        ("link", "operation"),
        [
            ("_access.jsonl", "decrypt"),
            ("_holds.jsonl", "hold"),
            ("_retention.jsonl", "retention"),
            ("_maintenance.lock", "compact"),
        ],
    )
    def test_trails_and_lock_are_never_written_through_a_link(
        self, tmp_path: Path, outside: Path, link: str, operation: str
    ):
        log = tmp_path / "log"
        _log(log)
        (log / link).symlink_to(outside / "victim.jsonl")
        opened = open_log(log, progress=False)
        ids = list(opened.entries(columns=["id"])["id"])
        actions: dict[str, Callable[[], object]] = {
            "decrypt": lambda: opened.decrypt(ids[:2], RING, reason="case 7"),
            "hold": lambda: opened.hold("matter-1", reason="litigation"),
            "retention": lambda: opened.apply_retention(
                opened.retention_plan(days=0, now=T0 + timedelta(days=30)), reason="all"
            ),
            "compact": lambda: compact(str(log)),
        }
        with pytest.raises(ForeignFileError, match="symbolic link"):
            _unchanged(outside, actions[operation])
        assert opened.count() == 18  # nothing deleted
        assert link in _foreign(log)


def test_sweeping_temporaries_never_removes_a_link(tmp_path: Path, outside: Path):
    """A link named like a dead process's temporary is left, and so is its target."""
    log = tmp_path / "log"
    log.mkdir()
    (log / ".audit.jsonl.999999999.ab12cd34.tmp").symlink_to(outside / "victim.jsonl")
    (log / "_staging").symlink_to(outside / "folder", target_is_directory=True)
    (outside / "folder" / ".x.999999999.ab12cd34.tmp").write_bytes(b"outside")
    _unchanged(outside, lambda: sweep_temporaries(log))
    assert (log / ".audit.jsonl.999999999.ab12cd34.tmp").is_symlink()
    with pytest.raises(ForeignFileError):
        sweep_temporaries(log, "_staging")
