"""Shared fixtures: storages by backend name, and a controllable clock."""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from comply_lab.audit import FileStorage, MemoryStorage, Storage


class FakeClock:
    """A clock that stands still until moved; returns aware UTC datetimes."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 1, 29, 10, 30, tzinfo=UTC))


StorageFactory = Callable[[], Storage]


def storage_factory(backend: str) -> StorageFactory:
    """Return a function that makes a fresh, empty storage of ``backend``."""
    if backend == "memory":
        return MemoryStorage
    if backend in ("jsonl", "parquet"):
        return lambda: FileStorage(
            tempfile.mkdtemp(prefix="comply-lab-test-"), format=backend, fsync="never"
        )
    raise ValueError(backend)


def settle(storage: Storage) -> None:
    """Bring written data to its resting format: a Parquet store seals its segments."""
    if isinstance(storage, FileStorage) and storage.format == "parquet":
        storage.seal()


@pytest.fixture
def make_storage(request: pytest.FixtureRequest) -> StorageFactory:
    """Storage factory for the backend named by the test class's ``backend`` attribute."""
    return storage_factory(request.cls.backend)


def original_record(stamp: datetime, text: str) -> dict[str, object]:
    """Return a record as the original tool wrote it: uuid4 id, naive timestamp, no chain."""
    return {
        "id": str(uuid.uuid4()),
        "timestamp": stamp.replace(tzinfo=None).isoformat(),
        "input_hash": hashlib.sha256(text.encode()).hexdigest(),
        "output_hash": hashlib.sha256(b"").hexdigest(),
        "input_content": None,
        "output_content": None,
        "provider": "openai",
        "model": "gpt-4",
        "conversation_id": None,
        "safety_passed": True,
        "detectors_triggered": [],
        "block_reason": None,
        "alerts": [],
        "latency_ms": 150,
        "input_tokens": None,
        "output_tokens": None,
        "metadata": {"user_id": "u"},
    }
