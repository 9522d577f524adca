"""One root of trust: the key the verifier pins, and the operator keys it certified.

The attacker here can write every file of the log and runs comply_lab with keys of their
own; they never hold the root (writer) key. Nothing they write about the log's keys may
make their key count.
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from comply_lab import AuditLogger, open_log
from comply_lab._time import utc_now
from comply_lab.audit import FileStorage
from comply_lab.cli import main
from comply_lab.crypto.signing import generate_signing_key, private_key_pem, public_key_pem
from comply_lab.errors import InvalidQueryError, RetentionError, SigningKeyRequiredError
from tests.conftest import NOW, FakeClock, MoveClock

ROOT = generate_signing_key()
OPERATOR = generate_signing_key()
ATTACKER = generate_signing_key()


def _log(path: Path, key: object, days: int = 3) -> Path:
    clock = FakeClock(NOW - timedelta(days=days + 1))
    storage = FileStorage(path, format="parquet", signing_key=key)
    with AuditLogger(storage, clock=clock) as logger:
        for i in range(days * 4):
            clock.advance(hours=6)
            logger.log_sync(input=f"q{i}", output="a", conversation_id=f"c{i % 3}")
    return path


def _statuses(path: Path, key: object) -> set[str]:
    return {p.status for p in open_log(path).verify(public_key=key).problems}


def test_a_self_signed_declaration_makes_no_key_trusted(tmp_path: Path):
    """A log written under the attacker's key, 'declaring' the real key its operator, fails."""
    path = _log(tmp_path / "log", ATTACKER)
    open_log(path, signing_key=ATTACKER).add_operator(ROOT.public_key(), "real", reason="ruse")
    assert open_log(path).verify(public_key=ATTACKER).ok  # the attacker's own view
    report = open_log(path).verify(public_key=ROOT)
    assert not report.ok and "bad_signature" in {p.status for p in report.problems}
    (tmp_path / "root.pub").write_bytes(public_key_pem(ROOT))
    result = CliRunner().invoke(
        main, ["verify", str(path), "--public-key", str(tmp_path / "root.pub")]
    )
    assert result.exit_code == 1 and "BAD_SIGNATURE" in result.output
    minted = open_log(path).checkpoint(ATTACKER)
    assert not open_log(path).verify(public_key=ROOT, checkpoint=minted).ok


def test_an_attacker_release_lifts_no_hold(tmp_path: Path):
    """A release signed by a key the root never certified: retention refuses, verify fails."""
    path = _log(tmp_path / "log", ROOT)
    writer = open_log(path, signing_key=ROOT)
    writer.hold("matter-1", reason="litigation")
    open_log(path, signing_key=ATTACKER).release("matter-1", "lifted by a stranger")
    with pytest.raises(RetentionError, match="does not verify"):
        writer.apply_retention(writer.retention_plan(0), reason="policy")
    assert len(open_log(path).storage.days()) >= 3  # nothing deleted
    assert "bad_signature" in _statuses(path, ROOT)


def test_operator_keys_count_within_their_scopes(tmp_path: Path):
    """An operator certified for holds places holds; anything else it signs is refused.

    Refused before acting where the root is pinned, and refused when the operator key is
    used without pinning the root; a record signed by a key nobody certified is
    ``bad_signature``.
    """
    path = _log(tmp_path / "log", ROOT)
    open_log(path, signing_key=ROOT).add_operator(
        OPERATOR.public_key(), "legal", reason="holds only", scopes=["holds"]
    )
    legal = open_log(path, signing_key=OPERATOR, public_key=ROOT.public_key())
    legal.hold("matter-2", conversation_id="c1", reason="litigation")
    legal.release("matter-2", "settled")
    assert open_log(path).verify(public_key=ROOT).ok
    days = open_log(path).storage.days()
    with pytest.raises(SigningKeyRequiredError, match=r"not certified .* _retention.jsonl"):
        legal.apply_retention(legal.retention_plan(1), reason="out of scope")
    assert open_log(path).storage.days() == days and open_log(path).verify(public_key=ROOT).ok
    some = open_log(path).entries(columns=["id"])["id"].tolist()[:1]
    with pytest.raises(SigningKeyRequiredError, match="no root key is pinned"):
        open_log(path, signing_key=OPERATOR).decrypt(some, None, reason="unpinned")
    stranger = FileStorage(path, format="parquet", signing_key=ATTACKER)
    stranger.append_metadata("_access.jsonl", {"action": "decrypt", "entries": some, "who": "x"})
    report = open_log(path).verify(public_key=ROOT)
    assert {p.status for p in report.problems if p.severity == "error"} == {"bad_signature"}
    with pytest.raises(InvalidQueryError, match=r"unknown scope.*'retension'"):
        open_log(path, signing_key=ROOT).add_operator(
            ATTACKER.public_key(), "x", reason="r", scopes=["retension"]
        )


def test_an_operator_process_pins_the_root(tmp_path: Path):
    """With an operator key, checks before acting need the root key; with it, all verifies."""
    path = _log(tmp_path / "log", ROOT)
    writer = open_log(path, signing_key=ROOT)
    writer.add_operator(OPERATOR.public_key(), "ops", reason="retention job")
    writer.hold("matter-3", conversation_id="c2", reason="litigation")
    alone = open_log(path, signing_key=OPERATOR)
    with pytest.raises(RetentionError, match="pass public_key= / --public-key"):
        alone.apply_retention(alone.retention_plan(1), reason="nightly")
    pinned = open_log(path, signing_key=OPERATOR, public_key=ROOT.public_key())
    pinned.release("matter-3", "closed")
    result = pinned.apply_retention(pinned.retention_plan(1), reason="nightly")
    assert result.entries > 0
    assert pinned.verify().ok  # the pinned root is the default public key
    (tmp_path / "op.pem").write_bytes(private_key_pem(OPERATOR))
    (tmp_path / "root.pub").write_bytes(public_key_pem(ROOT))
    done = CliRunner().invoke(
        main,
        ["retention", str(path), "--days", "0", "--apply", "--signing-key",
         str(tmp_path / "op.pem"), "--public-key", str(tmp_path / "root.pub")],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert open_log(path).verify(public_key=ROOT).ok


def test_a_signed_jsonl_log_beats_so_a_cut_tail_is_found(tmp_path: Path):
    """A signed JSONL log has heartbeats by default: its newest lines cannot go unnoticed."""
    path = tmp_path / "log"
    clock = FakeClock(NOW - timedelta(hours=3))
    with AuditLogger(FileStorage(path, signing_key=ROOT), clock=clock) as logger:
        for i in range(6):
            clock.advance(minutes=10)
            logger.log_sync(input=f"q{i}", output="a")
    assert (path / "_heartbeat.jsonl").is_file()
    assert open_log(path).verify(public_key=ROOT).ok
    (day,) = sorted(path.glob("audit_*.jsonl"))
    day.write_bytes(b"".join(day.read_bytes().splitlines(keepends=True)[:-2]))
    assert "missing" in _statuses(path, ROOT)
    plain = tmp_path / "plain"
    with AuditLogger(FileStorage(plain)) as logger:  # unsigned: the original tool's files only
        logger.log_sync(input="q", output="a")
    assert sorted(p.name for p in plain.iterdir())[0].startswith("audit_")
    assert not (plain / "_heartbeat.jsonl").exists()


def test_sealing_rotation_and_checkpoints_need_the_seal_scope(tmp_path: Path):
    """Compaction, key rotation and checkpoints sign as the writer does: ``seal``, or nothing.

    An operator certified for other scopes is refused before anything is written, so the
    honest log still verifies; the CLI refuses the same way (exit 2).
    """
    from comply_lab import KeyRing, rotate_keys

    path = tmp_path / "log"
    ring = KeyRing.generate("k1")
    clock = FakeClock(NOW - timedelta(days=2))
    with AuditLogger(FileStorage(path, signing_key=ROOT), ring, clock=clock) as logger:
        for i in range(6):
            clock.advance(hours=3)
            logger.log_sync(input=f"q{i}", output="a")
    open_log(path, signing_key=ROOT).add_operator(
        OPERATOR.public_key(), "rotation", reason="keys only", scopes=["keys", "holds"]
    )
    before = sorted(p.name for p in path.rglob("*") if p.is_file())
    pinned = open_log(path, signing_key=OPERATOR, public_key=ROOT.public_key())
    with pytest.raises(SigningKeyRequiredError, match=r"_manifest.jsonl \(scope seal\)"):
        rotate_keys(
            pinned, KeyRing.from_text(f"{KeyRing.generate('k2').to_text()},{ring.to_text()}")
        )
    with pytest.raises(SigningKeyRequiredError, match=r"checkpoint \(scope seal\)"):
        pinned.checkpoint(OPERATOR)
    (tmp_path / "op.pem").write_bytes(private_key_pem(OPERATOR))
    (tmp_path / "root.pub").write_bytes(public_key_pem(ROOT))
    for extra in (["--public-key", str(tmp_path / "root.pub")], []):
        done = CliRunner().invoke(
            main, ["compact", str(path), "--signing-key", str(tmp_path / "op.pem"), *extra]
        )
        assert done.exit_code == 2 and "nothing was done" in done.output, done.output
    assert sorted(p.name for p in path.rglob("*") if p.is_file()) == before
    assert open_log(path).verify(public_key=ROOT).ok
    open_log(path, signing_key=ROOT).add_operator(
        OPERATOR.public_key(), "rotation", reason="and seal", scopes=["seal"]
    )
    done = CliRunner().invoke(
        main,
        ["compact", str(path), "--signing-key", str(tmp_path / "op.pem"), "--public-key",
         str(tmp_path / "root.pub")],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert open_log(path).verify(public_key=ROOT).ok


def test_a_log_with_no_signature_is_unsigned_never_ok(tmp_path: Path):
    """Nothing signed proves nothing: UNSIGNED (exit 1), unless accepted without a key.

    A signed log replaced wholesale by an unsigned one stays not OK under the real key,
    whatever the caller accepts.
    """
    plain = tmp_path / "plain"
    with AuditLogger(FileStorage(plain), clock=FakeClock(NOW - timedelta(hours=2))) as logger:
        for i in range(3):
            logger.log_sync(input=f"q{i}", output="a")
    report = open_log(plain).verify()
    assert (report.ok, report.verdict) == (False, "UNSIGNED")
    assert "not proof against anyone who can write the files" in str(report)
    assert [p.status for p in report.errors] == ["unsigned"]
    assert open_log(plain).verify(allow_unsigned=True).ok
    done = CliRunner().invoke(main, ["verify", str(plain)])
    assert done.exit_code == 1 and "UNSIGNED" in done.output
    assert CliRunner().invoke(main, ["verify", str(plain), "--allow-unsigned"]).exit_code == 0
    replaced = open_log(plain).verify(public_key=ROOT, allow_unsigned=True)
    assert replaced.verdict == "UNSIGNED" and "a public key was given" in str(replaced)
    (tmp_path / "root.pub").write_bytes(public_key_pem(ROOT))
    done = CliRunner().invoke(
        main, ["verify", str(plain), "--public-key", str(tmp_path / "root.pub"), "--allow-unsigned"]
    )
    assert done.exit_code == 1 and "signatures checked" not in done.output


def test_unsealed_entries_no_heartbeat_vouched_for_are_pending(tmp_path: Path):
    """In a signed log, unsealed lines beyond the newest heartbeat are never OK.

    A writer still running between beats, and a day file planted by someone without the
    key, look the same to a verifier: ``pending`` (verdict ``PENDING``), until a signed
    record vouches for them. A clean close vouches for everything written.
    """
    path = tmp_path / "log"
    clock = FakeClock(NOW - timedelta(hours=3))
    storage = FileStorage(path, signing_key=ROOT, heartbeat_s=None)  # beats when told, and at close
    logger = AuditLogger(storage, clock=clock)
    logger.log_sync(input="q0", output="a")
    storage._heartbeat.beat()  # a beat now, rather than waiting for the hourly one
    logger.log_sync(input="q1", output="a")  # after the newest beat
    report = open_log(path).verify(public_key=ROOT)
    assert report.verdict == "PENDING", str(report)
    (pending,) = report.errors
    assert pending.status == "pending" and "1 entries not yet signed" in pending.explanation
    logger.close()
    assert open_log(path).verify(public_key=ROOT).ok
    planted = b"".join(sorted(path.glob("audit_*.jsonl"))[0].read_bytes().splitlines(True)[:1])
    (path / "audit_20260103.jsonl").write_bytes(planted)  # a back-dated day of its own
    report = open_log(path).verify(public_key=ROOT)
    assert "pending" in {p.status for p in report.errors} and not report.ok


def test_retention_that_breaks_a_hold_is_found(tmp_path: Path, move_clock: MoveClock):
    """A retention key deleting a held day: ``violated_hold``, whatever state it claims.

    The record may claim the holds trail as it was before the hold, or no state at all;
    a hold placed well before the deletion (by time, or seen by a heartbeat) still counts.
    Honest retention around the hold verifies, and so does a hold released by a process
    whose clock is ahead, just before retention runs.
    """
    from datetime import date

    path = _log(tmp_path / "log", ROOT, days=4)
    writer = open_log(path, signing_key=ROOT)
    writer.add_operator(OPERATOR.public_key(), "nightly", reason="retention", scopes=["retention"])
    first = open_log(path).storage.days()[0]
    writer.hold("matter-9", start=first, end=first, reason="litigation")
    honest = open_log(path, signing_key=OPERATOR, public_key=ROOT.public_key())
    honest.apply_retention(honest.retention_plan(0), reason="policy")
    assert first in open_log(path).storage.days()  # kept: held
    assert open_log(path).verify(public_key=ROOT).ok
    holds = (path / "_holds.jsonl").read_bytes().splitlines()
    before = [len(holds) - 1, json.loads(holds[-2])["record_hash"]] if len(holds) > 1 else [0, None]
    move_clock(utc_now() + timedelta(hours=1))  # the rogue deletion, an hour later
    for claimed in (before, None):
        copy = tmp_path / f"copy-{claimed is None}"
        shutil.copytree(path, copy)
        rogue = FileStorage(copy, format="parquet", signing_key=OPERATOR)
        rogue.root_key = ROOT.public_key()
        policy = {"days": 0} if claimed is None else {"days": 0, "holds": claimed}
        assert rogue.drop_day(first, {"who": "rogue", "reason": "x", "policy": policy}) > 0
        report = open_log(copy).verify(public_key=ROOT)
        found = [p for p in report.errors if p.status == "violated_hold"]
        assert found and "matter-9" in found[0].explanation, str(report)
        assert isinstance(found[0].partition, date)

    skewed = tmp_path / "skewed"
    shutil.copytree(path, skewed)
    move_clock(utc_now() + timedelta(minutes=10))  # the releasing machine runs ahead
    open_log(skewed, signing_key=ROOT).release("matter-9", "settled")
    move_clock(utc_now() - timedelta(minutes=8))  # retention, on a right clock, just after
    writer = open_log(skewed, signing_key=ROOT)
    writer.apply_retention(writer.retention_plan(0), reason="policy")
    assert first not in open_log(skewed).storage.days()
    assert open_log(skewed).verify(public_key=ROOT).ok


def test_a_deletion_on_request_that_breaks_a_hold_is_found(tmp_path: Path, move_clock: MoveClock):
    """A deletions key recording the deletion of a held entry: ``violated_hold``.

    The tool refuses such a deletion; the rogue key runs its own code. An honest deletion
    of an entry outside the hold verifies.
    """
    from comply_lab.storage.deletions import deletion_record

    path = _log(tmp_path / "log", ROOT, days=2)
    writer = open_log(path, signing_key=ROOT)
    writer.add_operator(OPERATOR.public_key(), "dpo", reason="erasure", scopes=["deletions"])
    frame = open_log(path).entries(columns=["id", "timestamp"])
    held, free = frame.iloc[0], frame.iloc[-1]
    writer.hold("matter-4", start=held["timestamp"], end=held["timestamp"], reason="litigation")
    move_clock(utc_now() + timedelta(hours=1))
    dpo = open_log(path, signing_key=OPERATOR, public_key=ROOT.public_key())
    dpo.delete(free["id"], reason="erasure request")
    assert open_log(path).verify(public_key=ROOT).ok
    rogue = FileStorage(path, format="parquet", signing_key=OPERATOR)
    entry = open_log(path).entry(held["id"])
    rogue.append_metadata("_deletions.jsonl", deletion_record(entry, "rogue", "no reason"))
    report = open_log(path).verify(public_key=ROOT)
    (found,) = [p for p in report.errors if p.status == "violated_hold"]
    assert found.entry_id == held["id"] and "matter-4" in found.explanation
