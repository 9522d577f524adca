"""The genesis record and writer registrations: what a signed log is, and who writes it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from comply_lab import AuditLogger, open_log
from comply_lab._time import utc_now
from comply_lab.audit import FileStorage
from comply_lab.cli import main
from comply_lab.crypto.signing import generate_signing_key, private_key_pem
from comply_lab.errors import (
    IntegrityError,
    IntegrityWarning,
    SigningKeyRequiredError,
    UnadoptedLogError,
)
from comply_lab.integrity.adoption import adopt
from comply_lab.model.entry import format_timestamp
from comply_lab.storage.base import StorageBase
from comply_lab.storage.compaction import compact
from tests.conftest import FakeClock, plant_writer

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
    """Someone with write access and no key logs with the tool itself and copies it in."""
    plant_writer(path, T0 + timedelta(hours=2), entries)


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


def test_an_unsigned_log_is_signed_from_its_adoption_on(tmp_path: Path):
    """The migration path: an unsigned log (or the original tool's) is adopted explicitly.

    Writing or compacting it with a key is refused until then: whoever signs first must
    vouch for what it holds, not a key that happened to be passed to a command.
    """
    path = tmp_path / "log"
    logger = AuditLogger(FileStorage(path), clock=FakeClock(T0))
    for i in range(4):
        logger.log_sync(input=f"q{i}", output="a")
    logger.close()
    assert open_log(path).verify(public_key=KEY.public_key()).verdict == "UNSIGNED"
    before = sorted(p.name for p in path.iterdir())
    with pytest.raises(UnadoptedLogError, match="comply-lab adopt"):
        compact(path, KEY)
    with pytest.raises(UnadoptedLogError, match="comply-lab adopt"):
        AuditLogger(FileStorage(path, signing_key=KEY)).log_sync(input="q", output="a")
    after = sorted(p.name for p in path.iterdir() if p.name != "_maintenance.lock")
    assert after == before  # nothing was written
    adopt(FileStorage(path, signing_key=KEY))
    assert compact(path, KEY).entries == 4
    assert open_log(path).verify(public_key=KEY.public_key()).ok


def _forged_line(template: bytes, **changes: object) -> bytes:
    """Return a line with its own valid hash, as anyone can compute one without a key."""
    from comply_lab.model.entry import CONTENT_FIELDS, encode_line

    record = {k: v for k, v in json.loads(template).items() if k != "entry_hash"}
    for name in CONTENT_FIELDS:
        record.pop(name, None)
    record.update(changes)
    return encode_line(record, None, None)[1]


def _append_stranger(day_file: Path, **changes: object) -> None:
    template = day_file.read_bytes().splitlines()[0]
    fields = {"writer_id": "f" * 32, "seq": 0, "prev_hash": "0" * 64, "model": "planted"}
    with day_file.open("ab") as out:
        out.write(_forged_line(template, **{**fields, **changes}))


def test_a_heartbeat_admits_no_writer(tmp_path: Path):
    """A line planted in a running writer's own file, which its final heartbeat vouched for."""
    clock = FakeClock(T0)
    logger = AuditLogger(
        FileStorage(tmp_path / "log", format="jsonl", signing_key=KEY), clock=clock
    )
    logger.log_sync(input="q0", output="a")
    _append_stranger(next((tmp_path / "log").glob("audit_*.jsonl")))
    logger.log_sync(input="q1", output="a")
    logger.close()
    report = open_log(tmp_path / "log").verify(public_key=KEY.public_key())
    assert {p.status for p in report.errors} == {"unregistered"}
    with pytest.warns(IntegrityWarning, match="no signed registration"):
        shown = open_log(tmp_path / "log", public_key=KEY.public_key()).entries()
    assert "planted" not in list(shown["model"].dropna()) and len(shown) == 2
    assert compact(tmp_path / "log", KEY).entries == 2  # the planted line is quarantined
    assert "planted" not in list(open_log(tmp_path / "log").entries()["model"].dropna())


def test_a_planted_line_reusing_an_honest_id_takes_nothing_with_it(tmp_path: Path):
    clock = FakeClock(T0)
    logger = AuditLogger(
        FileStorage(tmp_path / "log", format="jsonl", signing_key=KEY), clock=clock
    )
    ids = [logger.log_sync(input=f"q{i}", output="a") for i in range(3)]
    _append_stranger(next((tmp_path / "log").glob("audit_*.jsonl")), id=ids[-1])
    logger.close()
    compact(tmp_path / "log", KEY)
    log = open_log(tmp_path / "log")
    assert sorted(log.entries()["id"]) == sorted(ids)
    assert "planted" not in list(log.entries()["model"].dropna())


def test_adopting_a_log_with_a_genesis_refuses_planted_writers(tmp_path: Path):
    path = _signed(tmp_path / "log", fmt="jsonl")
    _plant(path)
    with pytest.raises(IntegrityError, match="does not verify"):
        adopt(FileStorage(path, signing_key=KEY))
    assert open_log(path).verify(public_key=KEY.public_key()).verdict == "PENDING"


def test_a_writer_without_the_key_is_refused_by_a_signed_log(tmp_path: Path):
    path = _signed(tmp_path / "log")
    before = sorted(p.name for p in path.iterdir())
    with pytest.raises(SigningKeyRequiredError, match="signed log"):
        AuditLogger(FileStorage(path)).log_sync(input="q", output="a")
    assert sorted(p.name for p in path.iterdir()) == before


def test_a_new_signed_writer_refuses_a_folder_someone_planted_a_day_into(tmp_path: Path):
    path = tmp_path / "log"
    path.mkdir()
    _plant(path)
    with pytest.raises(UnadoptedLogError, match="comply-lab adopt"):
        AuditLogger(FileStorage(path, signing_key=KEY)).log_sync(input="q", output="a")
    assert not (path / "_signers.jsonl").exists()


def test_sealing_refuses_when_registrations_a_heartbeat_saw_are_gone(tmp_path: Path):
    path = _signed(tmp_path / "log", fmt="jsonl")
    hidden = path / "_writers.jsonl"
    saved = hidden.read_bytes()
    hidden.unlink()
    with pytest.raises(IntegrityError, match="newest heartbeat saw last"):
        compact(path, KEY)
    hidden.write_bytes(saved)
    assert compact(path, KEY).entries == 6  # nothing was quarantined meanwhile


def test_a_writer_killed_before_its_close_does_not_leave_the_log_stale(tmp_path: Path):
    """A killed process never beats again; a later writer's clean close closes the log."""
    clock = FakeClock(T0)
    killed = AuditLogger(
        FileStorage(tmp_path / "log", format="jsonl", signing_key=KEY), clock=clock
    )
    killed.log_sync(input="a", output="x")
    killed.storage._heartbeat.beat()  # its periodic beat; then it dies without closing
    restarted = AuditLogger(
        FileStorage(tmp_path / "log", format="jsonl", signing_key=KEY), clock=clock
    )
    restarted.log_sync(input="b", output="x")
    restarted.close()
    compact(tmp_path / "log", KEY)
    report = open_log(tmp_path / "log").verify(
        public_key=KEY.public_key(), as_of=utc_now() + timedelta(hours=3)
    )
    assert report.ok, str(report)


def test_a_heartbeat_promising_an_absurd_cadence_is_a_finding_not_a_crash(tmp_path: Path):
    from comply_lab.storage.manifest import append_record

    path = _signed(tmp_path / "log", fmt="jsonl")
    append_record(
        path,
        {
            "kind": "heartbeat",
            "at": format_timestamp(utc_now()),
            "every": 1e300,
            "final": False,
            "unsealed": {},
            "trails": {},
        },
        "_heartbeat.jsonl",
        KEY,
    )
    report = open_log(path).verify(public_key=KEY.public_key(), as_of=utc_now() + timedelta(days=3))
    assert "stale" in {p.status for p in report.errors}  # the genesis's hour still counts


def test_heartbeats_sign_chain_heads_so_the_newest_entry_cannot_be_rewritten(tmp_path: Path):
    """The newest line, rewritten with a valid hash before any heartbeat saw the file."""
    path = tmp_path / "log"
    clock = FakeClock(T0)
    storage = FileStorage(path, format="jsonl", signing_key=KEY, heartbeat_s=None)
    logger = AuditLogger(storage, clock=clock)  # it beats only when it closes
    for i in range(3):
        logger.log_sync(input=f"q{i}", output="a", safety_passed=False)
    day_file = next(path.glob("audit_*.jsonl"))
    lines = day_file.read_bytes().splitlines(keepends=True)
    lines[-1] = _forged_line(lines[-1], safety_passed=True)
    day_file.write_bytes(b"".join(lines))
    logger.close()  # its final heartbeat vouches for the file's bytes, and signs its head
    report = open_log(path).verify(public_key=KEY.public_key())
    assert any("signed entry 2" in p.explanation for p in report.errors), str(report)
    with pytest.raises(IntegrityError, match="not the one the heartbeat"):
        compact(path, KEY)
    assert day_file.read_bytes() == b"".join(lines)  # nothing was changed


def test_a_log_sealed_without_a_key_is_adopted_with_its_records(tmp_path: Path):
    """Its unsigned manifest and heartbeat records count once the root's adoption names them."""
    from comply_lab.storage.manifest import append_record

    path = tmp_path / "log"
    logger = AuditLogger(FileStorage(path, format="parquet"), clock=FakeClock(T0))
    for i in range(4):
        logger.log_sync(input=f"q{i}", output="a")
    logger.close()  # sealed: its manifest records are unsigned
    assert b"signature" not in (path / "_manifest.jsonl").read_bytes()
    adopt(FileStorage(path, signing_key=KEY))
    log = open_log(path, public_key=KEY.public_key())
    assert len(log.entries()) == 4 and len(log) == 4
    assert log.verify(public_key=KEY.public_key()).ok
    append_record(path, {"segment": "date=2026-01-29/forged.parquet"}, "_manifest.jsonl")
    report = open_log(path).verify(public_key=KEY.public_key())
    assert any(p.status == "bad_signature" for p in report.errors)  # after it, keys count
