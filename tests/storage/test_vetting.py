"""Readers show only the unsealed lines something vouches for, and warn about the rest."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from comply_lab import AuditLogger, open_log
from comply_lab.audit import FileStorage
from comply_lab.crypto.signing import generate_signing_key
from comply_lab.errors import IntegrityWarning
from tests.conftest import FakeClock, plant_writer

T0 = datetime(2026, 1, 29, 9, 0, tzinfo=UTC)
KEY = generate_signing_key()


def _log(path: Path, entries: int = 4, key=KEY) -> Path:
    clock = FakeClock(T0)
    logger = AuditLogger(FileStorage(path, format="jsonl", signing_key=key), clock=clock)
    for i in range(entries):
        clock.now = T0 + timedelta(minutes=i)
        logger.log_sync(input=f"q{i}", output="a", model="gpt-honest")
    logger.close()
    return path


def _plant(path: Path) -> None:
    """Someone with write access and no key logs with the tool itself and copies it in."""
    plant_writer(path, T0 + timedelta(hours=1), model="gpt-forged")


def _segment(path: Path) -> Path:
    (found,) = sorted(path.glob("audit_*.jsonl"))[:1]
    return found


def _models(path: Path, **opened) -> tuple[list[str], list[str]]:
    """Return the models every reader shows, and the warnings they gave."""
    log = open_log(path, **opened)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        models = sorted(log.entries()["model"])
        assert len(log) == len(models)
        assert sorted(log.sql("SELECT model FROM entries")["model"]) == models
        assert sum(p["entries"] for p in log.partitions().to_dict("records")) == len(models)
    return models, [str(w.message) for w in caught if w.category is IntegrityWarning]


def test_honest_lines_are_shown_without_a_warning(tmp_path: Path):
    path = _log(tmp_path / "log")
    models, warned = _models(path, public_key=KEY.public_key())
    assert models == ["gpt-honest"] * 4 and warned == []


def test_lines_of_an_unregistered_writer_are_left_out_with_a_warning(tmp_path: Path):
    path = _log(tmp_path / "log")
    _plant(path)
    models, warned = _models(path, public_key=KEY.public_key())
    assert models == ["gpt-honest"] * 4
    assert warned and "3 of writers no signed registration names" in warned[0]
    report = open_log(path).verify(public_key=KEY.public_key())
    assert {p.status for p in report.errors} == {"unregistered"}


def test_without_the_root_key_a_reader_cannot_tell_writers_apart(tmp_path: Path):
    """No key pinned and none held: nothing says who may write, so every chain is shown."""
    path = _log(tmp_path / "log")
    _plant(path)
    models, warned = _models(path)
    assert models.count("gpt-forged") == 3 and warned == []


def test_the_writers_own_key_is_enough_to_tell_them_apart(tmp_path: Path):
    path = _log(tmp_path / "log")
    _plant(path)
    storage = FileStorage(path, format="jsonl", signing_key=KEY)
    with pytest.warns(IntegrityWarning, match="no signed registration"):
        entries = storage.list_entries_sync(T0 - timedelta(days=1), T0 + timedelta(days=1))
    assert {e.model for e in entries} == {"gpt-honest"}


@pytest.mark.parametrize("pinned", [True, False])
def test_a_line_whose_values_do_not_give_its_hash_is_left_out(tmp_path: Path, pinned: bool):
    path = _log(tmp_path / "log")
    segment = _segment(path)
    lines = segment.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b"gpt-honest", b"gpt-edited")
    segment.write_bytes(b"".join(lines))
    models, warned = _models(path, **({"public_key": KEY.public_key()} if pinned else {}))
    assert models == ["gpt-honest"] * 3
    assert warned and "1 whose values do not give their own hash" in warned[0]


def test_a_key_given_twice_does_not_smuggle_a_value_past_the_hash(tmp_path: Path):
    """JSON readers keep the last of two equal keys; the hash covered the first."""
    path = _log(tmp_path / "log")
    segment = _segment(path)
    lines = segment.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].rstrip(b"}\n") + b',"model":"gpt-smuggled"}\n'
    segment.write_bytes(b"".join(lines))
    models, warned = _models(path, public_key=KEY.public_key())
    assert "gpt-smuggled" not in models and len(models) == 3 and warned
    report = open_log(path).verify(public_key=KEY.public_key())
    assert any(p.status == "modified" for p in report.errors)


def test_a_running_writers_newest_lines_are_shown_while_pending(tmp_path: Path):
    """Lines of a registered writer after its newest heartbeat are its newest entries."""
    clock = FakeClock(T0)
    storage = FileStorage(tmp_path / "log", format="jsonl", signing_key=KEY)
    logger = AuditLogger(storage, clock=clock)
    for i in range(3):
        logger.log_sync(input=f"q{i}", output="a", model="gpt-live")
    models, warned = _models(tmp_path / "log", public_key=KEY.public_key())
    assert models == ["gpt-live"] * 3 and warned == []
    logger.close()


def test_an_adopted_logs_older_lines_are_vouched_for_by_the_adoption(tmp_path: Path):
    """Lines the original tool wrote name no writer: the adoption's heartbeat vouches."""
    from comply_lab.integrity.adoption import adopt

    path = tmp_path / "log"
    path.mkdir()
    record = {
        "id": "6b1f0c2e-3f0a-4a57-9a43-0d2f6f3f3a11",
        "timestamp": "2026-01-29T09:00:00",
        "input_hash": "0" * 64,
        "output_hash": "1" * 64,
        "provider": "openai",
        "model": "gpt-original",
        "conversation_id": None,
        "input_content": None,
        "output_content": None,
        "safety_passed": True,
        "detected_issues": [],
        "latency_ms": 10.0,
        "input_tokens": None,
        "output_tokens": None,
        "metadata": {},
        "retention_days": 365,
    }
    (path / "audit_20260129.jsonl").write_text(json.dumps(record) + "\n")
    adopt(FileStorage(path, signing_key=KEY))
    models, warned = _models(path, public_key=KEY.public_key())
    assert models == ["gpt-original"] and warned == []
