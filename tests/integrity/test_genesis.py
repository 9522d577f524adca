"""The genesis record and writer registrations: what a signed log is, and who writes it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from comply_lab import AuditLogger, open_log
from comply_lab.audit import FileStorage
from comply_lab.cli import main
from comply_lab.crypto.signing import generate_signing_key, private_key_pem
from comply_lab.errors import UnadoptedLogError
from comply_lab.storage.base import StorageBase
from comply_lab.storage.compaction import compact
from tests.conftest import FakeClock

T0 = datetime(2026, 1, 29, 9, 0, tzinfo=UTC)
KEY = generate_signing_key()
ATTACKER = generate_signing_key()


def _signed(path: Path, entries: int = 6, key=KEY, fmt: str = "parquet") -> Path:
    clock = FakeClock(T0)
    logger = AuditLogger(FileStorage(path, format=fmt, signing_key=key), clock=clock)
    for i in range(entries):
        clock.now = T0 + timedelta(minutes=i)
        logger.log_sync(input=f"q{i}", output="a")
    logger.close()
    return path


def _records(path: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (path / name).read_text().splitlines()]


def _plant(path: Path, entries: int = 3) -> None:
    """Someone with write access and no key logs into the folder with the tool itself."""
    clock = FakeClock(T0 + timedelta(hours=2))
    logger = AuditLogger(FileStorage(path), clock=clock)
    for i in range(entries):
        logger.log_sync(input=f"forged {i}", output="x")
    logger.close()


def test_a_new_signed_log_has_a_genesis_and_registers_its_writers(tmp_path: Path):
    path = _signed(tmp_path / "log")
    (genesis,) = _records(path, "_signers.jsonl")
    assert genesis["kind"] == "genesis" and genesis["heartbeat_s"] == 3600
    assert genesis["origin"].startswith("comply-lab/") and "signature" in genesis
    writers = _records(path, "_writers.jsonl")
    assert [w["kind"] for w in writers] == ["writer"]
    assert open_log(path).verify(public_key=KEY.public_key()).verdict == "OK"


def test_a_genesis_signed_by_another_key_counts_for_nothing(tmp_path: Path):
    """The attacker's whole log, genesis included, under the attacker's key: never OK."""
    path = _signed(tmp_path / "log", key=ATTACKER)
    report = open_log(path).verify(public_key=KEY.public_key())
    assert not report.ok and report.verdict == "FAILED"
    assert any(p.status == "bad_signature" for p in report.errors)


def test_planted_lines_are_unregistered_and_sealing_quarantines_them(tmp_path: Path):
    path = _signed(tmp_path / "log")
    _plant(path)
    report = open_log(path).verify(public_key=KEY.public_key())
    assert {p.status for p in report.errors} == {"unregistered"}
    assert report.verdict == "PENDING" and "3 entries" in str(report)
    done = compact(path, KEY)
    assert done.entries == 0  # nothing of the planted file was sealed in
    log = open_log(path)
    assert len(log.entries()) == 6  # the honest entries only
    report = log.verify(public_key=KEY.public_key())
    assert report.ok and [p.status for p in report.problems] == ["quarantined"]
    assert "3 entries of 1 writer(s)" in report.problems[0].explanation
    assert list((path / "_quarantine").iterdir())  # nothing stored is lost


def test_a_log_of_an_earlier_version_is_pending_until_adopted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Written without genesis or registrations; sealing refuses it; adopt makes it OK."""
    with monkeypatch.context() as patched:
        patched.setattr(StorageBase, "register_writer", lambda self, writer_id: None)
        path = _signed(tmp_path / "log", fmt="jsonl")
    report = open_log(path).verify(public_key=KEY.public_key())
    assert report.verdict == "PENDING"
    assert any("no genesis record" in p.explanation for p in report.errors)
    with pytest.raises(UnadoptedLogError, match="comply-lab adopt"):
        compact(path, KEY)
    key_file = tmp_path / "writer.pem"
    key_file.write_bytes(private_key_pem(KEY))
    result = CliRunner().invoke(main, ["adopt", str(path), "--signing-key", str(key_file)])
    assert result.exit_code == 0, result.output
    assert "genesis written, 1 writer(s) registered" in result.output
    assert open_log(path).verify(public_key=KEY.public_key()).ok
    assert compact(path, KEY).entries == 6
    assert open_log(path).verify(public_key=KEY.public_key()).ok


def test_adoption_refuses_a_log_that_does_not_verify(tmp_path: Path, monkeypatch):
    with monkeypatch.context() as patched:
        patched.setattr(StorageBase, "register_writer", lambda self, writer_id: None)
        path = _signed(tmp_path / "log", fmt="jsonl")
    day_file = next(path.glob("audit_*.jsonl"))
    edited = day_file.read_bytes().replace(b"provider", b"provideR", 1)
    day_file.write_bytes(edited)
    key_file = tmp_path / "writer.pem"
    key_file.write_bytes(private_key_pem(KEY))
    before = sorted(p.name for p in path.iterdir())
    result = CliRunner().invoke(main, ["adopt", str(path), "--signing-key", str(key_file)])
    assert result.exit_code == 1 and "does not verify" in result.output
    assert sorted(p.name for p in path.iterdir()) == before  # nothing was written


def test_compacting_an_unsigned_log_with_a_key_starts_its_signed_life(tmp_path: Path):
    """The migration path: the original tool's (or an unsigned) log, compacted with a key."""
    path = tmp_path / "log"
    logger = AuditLogger(FileStorage(path), clock=FakeClock(T0))
    for i in range(4):
        logger.log_sync(input=f"q{i}", output="a")
    logger.close()
    assert open_log(path).verify(public_key=KEY.public_key()).verdict == "UNSIGNED"
    assert compact(path, KEY).entries == 4
    assert open_log(path).verify(public_key=KEY.public_key()).ok
