"""Every flow of the original audit-logging tutorial that needs no network or LLM.

The code follows the tutorial line by line; only the package name, the log directory
(a temporary one instead of /var/log/ai-audit) and the clock differ: the tutorial's
``utcnow()`` is the test run's fixed "now" (``tests.conftest.utcnow``).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from comply_lab import AuditLogger, EncryptionManager
from comply_lab.audit import FileStorage, MemoryStorage
from tests.conftest import utcnow


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_simple_file_based_logging(tmp_path: Path):
    """Logging creates audit_YYYYMMDD.jsonl named by today's UTC date."""

    async def main() -> str:
        logger = AuditLogger(str(tmp_path))
        entry_id = await logger.log(
            input="What is the weather today?",
            output="I don't have access to real-time weather data.",
            provider="openai",
            model="gpt-4",
            safety_passed=True,
            latency_ms=150.0,
        )
        return entry_id

    entry_id = run(main())
    assert os.listdir(tmp_path) == [f"audit_{utcnow():%Y%m%d}.jsonl"]
    assert len(entry_id) == 36


def test_hash_only_mode(tmp_path: Path):
    """Only SHA-256 hashes are stored by default; content fields are null."""
    logger = AuditLogger(str(tmp_path))
    entry_id = run(logger.log(input="What is the weather today?", output="Sunny", provider="x"))
    entry = run(logger.get_entry(entry_id))
    assert entry.input_hash == hashlib.sha256(b"What is the weather today?").hexdigest()
    assert entry.output_hash == hashlib.sha256(b"Sunny").hexdigest()
    assert entry.input_content is None
    assert entry.output_content is None


def test_encrypted_audit_logging(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """Setting up encryption, logging, then retrieving and decrypting."""

    async def main() -> None:
        encryption = EncryptionManager()
        key = encryption.get_key()
        print(f"Save this key: {key.decode()}")
        logger = AuditLogger(
            storage=str(tmp_path),
            encryption=encryption,
            store_content=True,
        )
        entry_id = await logger.log(
            input="Tell me about patient records",
            output="Patient records are confidential...",
            provider="anthropic",
            model="claude-3-opus",
            safety_passed=True,
            latency_ms=200.0,
        )
        entry = await logger.get_entry(entry_id)
        if entry and entry.input_content:
            original_input = logger.decrypt_content(entry.input_content)
            print(f"Original: {original_input}")

    run(main())
    assert "Original: Tell me about patient records" in capsys.readouterr().out


def test_key_management_options(monkeypatch: pytest.MonkeyPatch):
    """Options 1 and 2: save the key to the environment and load it back."""
    monkeypatch.delenv("AUDIT_ENCRYPTION_KEY", raising=False)
    encryption = EncryptionManager()
    os.environ["AUDIT_ENCRYPTION_KEY"] = encryption.get_key().decode()
    secret = encryption.encrypt("kept")

    key = os.environ.get("AUDIT_ENCRYPTION_KEY")
    if key:
        encryption = EncryptionManager(key.encode())
    else:
        raise ValueError("Encryption key not configured")
    assert encryption.decrypt(secret) == "kept"
    monkeypatch.delenv("AUDIT_ENCRYPTION_KEY")


def test_file_storage_with_custom_rotation(tmp_path: Path):
    """A path string and an explicit FileStorage(rotation_size_mb=50) both work."""
    logger = AuditLogger(str(tmp_path))
    assert isinstance(logger.storage, FileStorage)
    storage = FileStorage(
        path=str(tmp_path),
        rotation_size_mb=50,
    )
    logger = AuditLogger(storage)
    run(logger.log(input="q", output="a"))
    assert storage.rotation_size_mb == 50


def test_memory_storage_with_count():
    """MemoryStorage(max_entries=1000) and await storage.count()."""

    async def main() -> int:
        storage = MemoryStorage(max_entries=1000)
        logger = AuditLogger(storage)
        await logger.log(
            input="Test",
            output="Test response",
            provider="test",
            model="test-model",
            safety_passed=True,
            latency_ms=10.0,
        )
        count = await storage.count()
        print(f"Stored entries: {count}")
        return count

    assert run(main()) == 1


def test_rich_metadata(tmp_path: Path):
    """Every field of the comprehensive-metadata example is stored."""
    logger = AuditLogger(str(tmp_path))
    entry_id = run(
        logger.log(
            input="Summarize the quarterly report",
            output="Q4 showed 15% revenue growth...",
            provider="openai",
            model="gpt-4-turbo",
            conversation_id="conv-abc-123",
            safety_passed=True,
            detectors_triggered=[],
            block_reason=None,
            alerts=[],
            latency_ms=450.5,
            input_tokens=150,
            output_tokens=200,
            metadata={
                "user_id": "user-123",
                "session_id": "session-456",
                "department": "finance",
                "use_case": "report_summarization",
                "sensitivity": "internal",
            },
        )
    )
    entry = run(logger.get_entry(entry_id))
    assert entry.conversation_id == "conv-abc-123"
    assert (entry.input_tokens, entry.output_tokens, entry.latency_ms) == (150, 200, 450.5)
    assert entry.metadata["department"] == "finance"


def test_safety_event_logging(tmp_path: Path):
    """A blocked request with detectors, block reason and alerts."""
    logger = AuditLogger(str(tmp_path))
    entry_id = run(
        logger.log(
            input="How to hack a bank?",
            output="",
            provider="openai",
            model="gpt-4",
            safety_passed=False,
            detectors_triggered=["harmful_content", "illegal_activity"],
            block_reason="Content violates safety policy",
            alerts=["Harmful request detected", "User warned"],
            latency_ms=50.0,
            metadata={"user_id": "user-789", "blocked_at": "input"},
        )
    )
    entry = run(logger.get_entry(entry_id))
    assert entry.safety_passed is False
    assert entry.detectors_triggered == ["harmful_content", "illegal_activity"]
    assert entry.block_reason == "Content violates safety policy"


def test_retrieve_single_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """get_entry then print provider, model, safety, latency and decrypted input."""
    logger = AuditLogger(str(tmp_path), encryption=EncryptionManager(), store_content=True)
    entry_id = run(
        logger.log(input="hi", output="yo", provider="openai", model="gpt-4", latency_ms=12.0)
    )
    entry = run(logger.get_entry(entry_id))
    if entry:
        print(f"Provider: {entry.provider}")
        print(f"Model: {entry.model}")
        print(f"Safety passed: {entry.safety_passed}")
        print(f"Latency: {entry.latency_ms}ms")
        if entry.input_content and logger.encryption:
            original = logger.decrypt_content(entry.input_content)
            print(f"Input: {original}")
    assert capsys.readouterr().out.splitlines() == [
        "Provider: openai",
        "Model: gpt-4",
        "Safety passed: True",
        "Latency: 12.0ms",
        "Input: hi",
    ]
    assert run(logger.get_entry("abc-123-def")) is None


def test_query_last_seven_days(tmp_path: Path):
    """get_entries(utcnow() - 7 days, utcnow()) and the tutorial's analysis."""
    logger = AuditLogger(str(tmp_path))
    run(logger.log(input="a", output="b", safety_passed=True, latency_ms=100.0))
    run(logger.log(input="c", output="", safety_passed=False, latency_ms=50.0))
    end = utcnow()
    start = end - timedelta(days=7)
    entries = run(logger.get_entries(start, end))
    safety_failures = sum(1 for e in entries if not e.safety_passed)
    avg_latency = sum(e.latency_ms for e in entries) / len(entries)
    assert len(entries) == 2
    assert safety_failures == 1
    assert avg_latency == 75.0


def test_retention_cleanup(tmp_path: Path):
    """cleanup_expired() returns the number of deleted entries (none are old here)."""
    logger = AuditLogger(
        storage=str(tmp_path),
        retention_days=365,
    )
    run(logger.log(input="q", output="a"))
    deleted_count = run(logger.cleanup_expired())
    assert deleted_count == 0
    old = tmp_path / "audit_20200101.jsonl"
    clock_logger = AuditLogger(str(tmp_path), clock=lambda: datetime(2020, 1, 1, 12))
    run(clock_logger.log(input="old", output=""))
    assert old.exists()
    assert run(logger.cleanup_expired()) == 1
    assert not old.exists()


def test_audit_health_metrics(tmp_path: Path):
    """The check_audit_health() metrics: total, hourly volume, safety failures."""
    storage = FileStorage(str(tmp_path))
    logger = AuditLogger(storage)
    for passed in (True, True, False):
        run(logger.log(input="q", output="a", safety_passed=passed))

    async def check_audit_health() -> dict[str, int]:
        count = await storage.count()
        entries = await logger.get_entries(
            utcnow() - timedelta(hours=1),
            utcnow(),
        )
        metrics = {
            "total_entries": count,
            "hourly_volume": len(entries),
            "safety_failures": sum(1 for e in entries if not e.safety_passed),
        }
        return metrics

    assert run(check_audit_health()) == {
        "total_entries": 3,
        "hourly_volume": 3,
        "safety_failures": 1,
    }
