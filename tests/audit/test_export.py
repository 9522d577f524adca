"""Going back: what `comply-lab export --to original` writes, the original tool reads.

The reader is rotalabs-comply 1.1.0 itself: its FileStorage counts, lists, reads and
deletes the exported entries, its AuditLogger queries them with naive ``utcnow()`` bounds
and decrypts Fernet content, and every entry equals ours field by field.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from rotalabs_comply.audit import encryption as original_encryption
from rotalabs_comply.audit.logger import AuditLogger as OriginalLogger
from rotalabs_comply.audit.storage import FileStorage as OriginalStorage

from comply_lab import AuditLogger, EncryptionManager, KeyRing, open_log
from comply_lab.audit import FileStorage
from comply_lab.audit.export import export_original
from comply_lab.cli import main
from comply_lab.errors import ConfigurationError
from tests.conftest import FakeClock

T0 = datetime(2026, 1, 27, 22, 0, tzinfo=UTC)


@pytest.fixture
def log(tmp_path: Path) -> tuple[Path, bytes]:
    """Write three days of entries: plain, Fernet and key-ring content, sealed and not."""
    fernet = EncryptionManager()
    clock = FakeClock(T0)
    path = tmp_path / "log"
    kinds = [(fernet, "parquet"), (None, "jsonl"), (KeyRing.generate("k1"), "jsonl")]
    for keys, fmt in kinds:
        with AuditLogger(
            FileStorage(path, format=fmt), keys, store_content=True, clock=clock
        ) as logger:
            for i in range(6):
                clock.advance(hours=5)
                logger.log_sync(
                    input=f"question {i} \u00e9\U0001f600",
                    output=f"answer {i}",
                    provider="openai",
                    model="gpt-4o",
                    conversation_id=f"c{i % 2}",
                    safety_passed=i != 3,
                    detectors_triggered=["pii"] if i == 3 else [],
                    block_reason="pii" if i == 3 else None,
                    alerts=["a"] if i == 3 else [],
                    latency_ms=100.5 + i,
                    input_tokens=i,
                    metadata={"user_id": f"u{i}", "nested": {"n": i}},
                )
    return path, fernet.get_key()


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_the_original_tool_reads_every_exported_entry(log: tuple[Path, bytes], tmp_path: Path):
    """Count, list, read, query and decrypt with rotalabs-comply; every field equals ours."""
    path, key = log
    out = tmp_path / "original"
    result = CliRunner().invoke(main, ["export", str(path), "--to", "original", str(out)])
    assert result.exit_code == 0, result.output
    assert "exported 18 entries into 4 day file(s)" in result.output
    assert "6 entries hold content encrypted with a key ring" in result.output
    ours = {e.id: e for e in AuditLogger(path).get_entries_sync(T0, T0 + timedelta(days=9))}
    storage = OriginalStorage(str(out))
    assert _run(storage.count()) == 18
    start, end = (T0 - timedelta(days=1)).replace(tzinfo=None), datetime(2026, 2, 2)
    listed = _run(storage.list_entries(start, end))
    assert sorted(e.id for e in listed) == sorted(ours)
    for theirs in listed:
        mine = ours[theirs.id].to_dict()
        assert (
            datetime.fromisoformat(theirs.timestamp).replace(tzinfo=UTC)
            == ours[theirs.id].timestamp
        )
        assert {k: v for k, v in theirs.to_dict().items() if k != "timestamp"} == {
            k: v for k, v in mine.items() if k != "timestamp"
        }
    logger = OriginalLogger(storage, original_encryption.EncryptionManager(key), store_content=True)
    fernet = [e for e in listed if e.input_content and e.input_content.startswith("Z0FB")]
    assert len(fernet) == 6
    assert logger.decrypt_content(fernet[0].input_content).startswith("question ")
    found = _run(storage.read(listed[-1].id))
    assert found is not None and found.metadata == listed[-1].metadata
    window = _run(logger.get_entries(datetime(2026, 1, 29), datetime(2026, 1, 29, 23, 59)))
    assert window and all(e.timestamp.startswith("2026-01-29") for e in window)
    assert _run(storage.delete(listed[0].id)) and _run(storage.count()) == 17


def test_an_export_never_mixes_with_a_log(log: tuple[Path, bytes], tmp_path: Path):
    """A folder that already holds day files is refused; a range exports only its days."""
    path, _ = log
    report = export_original(open_log(path).storage, tmp_path / "a", "2026-01-28", "2026-01-28")
    assert report.files == ["audit_20260128.jsonl"] and report.entries == 5
    before = (tmp_path / "a" / "audit_20260128.jsonl").read_bytes()
    with pytest.raises(ConfigurationError, match="already holds day files"):
        export_original(open_log(path).storage, tmp_path / "a")
    assert (tmp_path / "a" / "audit_20260128.jsonl").read_bytes() == before
    line = json.loads(before.splitlines()[0])
    assert list(line) == list(json.loads(before.splitlines()[1]))
    assert "writer_id" not in line and "+00:00" not in line["timestamp"]


@pytest.mark.slow
def test_export_runs_as_a_command(log: tuple[Path, bytes], tmp_path: Path):
    """The command runs in its own process and says where the files went."""
    path, _ = log
    done = subprocess.run(
        [sys.executable, "-m", "comply_lab.cli", "export", str(path), "--to", "original",
         str(tmp_path / "o"), "--start", "2026-01-29"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "audit_20260129.jsonl",
        "audit_20260130.jsonl",
        "audit_20260131.jsonl",
    ]
