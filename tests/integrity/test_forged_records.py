"""Records nobody signed hide, release or show nothing, and honest crash leftovers block nothing.

The attacker writes the log's files but holds no key. A line added to a trail (with or
without a record hash, chained or not) must change no reader's answer and must make
verification fail; a line torn by a crash is a warning, and every operation goes on.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization

from comply_lab import AuditLogger, open_log
from comply_lab.audit import FileStorage
from comply_lab.cli import main
from comply_lab.crypto.signing import generate_signing_key, private_key_pem
from comply_lab.errors import IntegrityWarning
from comply_lab.storage.manifest import record_hash
from tests.conftest import NOW, FakeClock, utcnow

ROOT = generate_signing_key()


def _log(path: Path, key: object = ROOT) -> tuple[Path, list[str]]:
    clock = FakeClock(NOW - timedelta(days=3))
    with AuditLogger(FileStorage(path, format="parquet", signing_key=key), clock=clock) as log:
        ids = []
        for i in range(12):
            clock.advance(hours=5)
            ids.append(log.log_sync(input=f"q{i}", output="a", conversation_id=f"c{i % 3}"))
    return path, ids


def _append(path: Path, trail: str, record: dict[str, object]) -> None:
    with (path / trail).open("ab") as out:
        out.write(orjson.dumps(record, option=orjson.OPT_SORT_KEYS) + b"\n")


def _chained(path: Path, trail: str, record: dict[str, object]) -> dict[str, object]:
    """Return ``record`` linked to the trail's head with a valid hash, and no signature."""
    lines = (path / trail).read_bytes().splitlines() if (path / trail).exists() else []
    previous = json.loads(lines[-1])["record_hash"] if lines else None
    linked = dict(record, prev_hash=previous)
    return dict(linked, record_hash=record_hash(linked))


@pytest.mark.parametrize("chain", [False, True], ids=["hashless", "hashed-unsigned"])
def test_a_forged_deletion_hides_nothing(tmp_path: Path, chain: bool):
    """A deletion line nobody signed: every reader still shows the entry; verify fails."""
    path, ids = _log(tmp_path / "log")
    victim = ids[5]
    record: dict[str, object] = {"entry_id": victim, "date": str(utcnow().date())}
    _append(
        path, "_deletions.jsonl", _chained(path, "_deletions.jsonl", record) if chain else record
    )
    log = open_log(path, public_key=ROOT.public_key())
    assert len(log) == 12 and victim in set(log.entries(columns=["id"])["id"])
    assert log.entry(victim) is not None
    report = log.verify()
    assert not report.ok
    assert {p.status for p in report.errors} & {"inserted", "bad_signature", "modified"}


def test_forged_governance_lines_change_no_view(tmp_path: Path):
    """A fake decryption, a fake release and a fake retention deletion show in no view."""
    path, ids = _log(tmp_path / "log")
    open_log(path, signing_key=ROOT).hold("matter-7", reason="litigation")
    at = str(utcnow())
    access = {"at": at, "who": "alice", "action": "decrypt", "reason": "curiosity",
              "entries": ids[:5], "key_id": "k1"}  # fmt: skip
    release = {"kind": "release", "name": "matter-7", "reason": "closed", "who": "counsel",
               "at": at}  # fmt: skip
    retention = {"date": "2026-01-01", "segments": [], "entries": 5000, "deleted_at": at,
                 "who": "bob", "reason": "R-7"}  # fmt: skip
    _append(path, "_access.jsonl", access)
    _append(path, "_holds.jsonl", release)
    _append(path, "_retention.jsonl", retention)
    log = open_log(path, public_key=ROOT.public_key())
    assert "alice" not in set(log.access_events()["who"])
    assert list(log.holds()["name"]) == ["matter-7"]
    assert "bob" not in set(log.retention_events()["who"])
    assert not log.verify().ok


def test_a_crash_torn_hold_append_blocks_nothing(tmp_path: Path):
    """Half a line left by a crash in the holds trail: a warning; retention and deletion go on."""
    path, ids = _log(tmp_path / "log")
    writer = open_log(path, signing_key=ROOT)
    writer.hold("matter-7", reason="litigation", conversation_id="c2")
    with (path / "_holds.jsonl").open("ab") as out:
        out.write(b'{"at":"2026-01-31T10:00:00.000000+00:00","conversation_id":null,"end":nu')
    report = open_log(path).verify(public_key=ROOT)
    assert report.ok, report.summary()
    writer = open_log(path, signing_key=ROOT)
    writer.delete(ids[0], reason="erasure request")
    done = writer.apply_retention(writer.retention_plan(1), reason="policy")
    assert done.entries > 0
    kept = open_log(path).entries(columns=["conversation_id"])["conversation_id"]
    assert (kept == "c2").sum() == 4  # the held conversation stays whole
    assert open_log(path).verify(public_key=ROOT).ok


def test_a_raw_public_key_is_never_taken_for_a_verifier_key(tmp_path: Path):
    """A raw 32-byte key file whose bytes hold '+' signs is read as the raw key it is."""
    while True:
        key = generate_signing_key()
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        if raw.count(b"+") >= 2 and b"\n" not in raw:
            break
    path, _ = _log(tmp_path / "log", key)
    (tmp_path / "raw.pub").write_bytes(raw)
    (tmp_path / "key.pem").write_bytes(private_key_pem(key))
    done = CliRunner().invoke(
        main, ["verify", str(path), "--public-key", str(tmp_path / "raw.pub")]
    )
    assert done.exit_code == 0, done.output


def test_a_planted_part_is_not_read(tmp_path: Path):
    """A Parquet part no signed manifest record names: every reader leaves it out, once warned.

    It is a real part, written by the tool itself into another log (with a key of its own)
    and copied into a partition of the honest one.
    """
    path, ids = _log(tmp_path / "log")
    other, planted_ids = _log(tmp_path / "other", generate_signing_key())
    source = sorted(other.glob("date=*/*.parquet"))[-1]
    day = source.parent.name.removeprefix("date=").replace("-", "")
    target = path / source.parent.name / f"part-{day}-999.parquet"
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(source.read_bytes())
    log = open_log(path, public_key=ROOT.public_key())
    with pytest.warns(IntegrityWarning, match=r"-999\.parquet"):
        assert len(log) == 12
    with pytest.warns(IntegrityWarning):
        assert sorted(log.entries(columns=["id"])["id"]) == sorted(ids)
    with pytest.warns(IntegrityWarning):
        assert int(log.sql("select count(*) as n from entries")["n"][0]) == 12
    with pytest.warns(IntegrityWarning):
        assert log.partitions()["entries"].sum() == 12
    with pytest.warns(IntegrityWarning):
        assert log.entry(planted_ids[-1]) is None
    assert "inserted" in {p.status for p in log.verify().errors}


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_a_day_retention_deleted_stays_deleted(tmp_path: Path, fmt: str):
    """Bytes retention deleted, put back: no reader shows them; verification says so.

    That is also what a retention interrupted before it removed the files leaves: it is
    ``incomplete`` (a warning), and running retention again finishes it.
    """
    path = tmp_path / "log"
    clock = FakeClock(NOW - timedelta(days=4))
    with AuditLogger(FileStorage(path, format=fmt, signing_key=ROOT), clock=clock) as logger:
        for i in range(8):
            clock.advance(hours=9)
            logger.log_sync(input=f"q{i}", output="a")
    first = sorted(open_log(path).storage.days())[0]
    kept = {p.relative_to(path): p.read_bytes() for p in path.rglob("*") if p.is_file()}
    writer = open_log(path, signing_key=ROOT)
    writer.apply_retention(writer.retention_plan(3), reason="policy")
    assert first not in open_log(path).storage.days()
    honest = sorted(open_log(path).entries(columns=["id"])["id"])
    for name, data in kept.items():  # the deleted day's files, put back
        if not (path / name).exists() and first.isoformat().replace(
            "-", ""
        ) in name.as_posix().replace("-", ""):
            (path / name).parent.mkdir(exist_ok=True)
            (path / name).write_bytes(data)
    log = open_log(path, public_key=ROOT.public_key())
    with pytest.warns(IntegrityWarning, match="recorded retention deleted"):
        assert sorted(log.entries(columns=["id"])["id"]) == honest
    with pytest.warns(IntegrityWarning):
        assert len(log) == len(honest) and first not in set(log.partitions()["date"])
    report = log.verify()
    assert report.ok and "incomplete" in {p.status for p in report.problems}
    writer = open_log(path, signing_key=ROOT)
    writer.apply_retention(writer.retention_plan(3), reason="finish")
    assert "incomplete" not in {p.status for p in open_log(path).verify(public_key=ROOT).problems}
