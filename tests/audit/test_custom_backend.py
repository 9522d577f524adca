"""A backend written for the original StorageBackend protocol works as AuditLogger's storage."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rotalabs_comply.audit.storage import FileStorage as OriginalFileStorage
from rotalabs_comply.audit.storage import MemoryStorage as OriginalMemoryStorage

from comply_lab import AuditLogger, EncryptionManager
from comply_lab.errors import ConfigurationError, StorageError
from comply_lab.storage.backend import BackendAdapter, StorageBackend
from tests.conftest import FakeClock


class DictBackend:
    """Only the five methods of the original protocol, as a team would write them."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    async def write(self, entry: Any) -> str:
        self.rows[entry.id] = entry.to_dict()
        return entry.id

    async def read(self, entry_id: str) -> Any:
        return self.rows.get(entry_id)

    async def list_entries(self, start: datetime, end: datetime) -> list[Any]:
        return [r for r in self.rows.values()
                if start <= datetime.fromisoformat(r["timestamp"]) <= end]  # fmt: skip

    async def delete(self, entry_id: str) -> bool:
        return self.rows.pop(entry_id, None) is not None

    async def count(self) -> int:
        return len(self.rows)


BACKENDS = {
    "hand-written": lambda path: DictBackend(),
    "original MemoryStorage": lambda path: OriginalMemoryStorage(),
    "original FileStorage": lambda path: OriginalFileStorage(str(path / "orig")),
}


@pytest.mark.parametrize("kind", BACKENDS)
def test_the_tutorial_flows_run_on_a_custom_backend(tmp_path: Path, kind: str):
    """log, get_entry, get_entries, decrypt_content and cleanup_expired, async and sync."""
    backend = BACKENDS[kind](tmp_path)
    assert isinstance(backend, StorageBackend)
    clock = FakeClock(datetime(2026, 1, 10, 12, tzinfo=UTC))
    key = EncryptionManager()
    logger = AuditLogger(backend, key, store_content=True, retention_days=3, clock=clock)
    assert isinstance(logger.storage, BackendAdapter)

    async def flow() -> tuple[Any, list[Any]]:
        entry_id = await logger.log(input="q", output="a", provider="openai")
        entry = await logger.get_entry(entry_id)
        found = await logger.get_entries(clock.now - timedelta(hours=1), clock.now)
        return entry, found

    entry, found = asyncio.run(flow())
    assert entry.provider == "openai" and [e.id for e in found] == [entry.id]
    assert logger.decrypt_content(entry.input_content) == "q"
    clock.advance(days=5)
    young = logger.log_sync(input="later", output="b")
    assert asyncio.run(backend.count()) == 2
    assert logger.cleanup_expired_sync() == 1
    assert logger.get_entry_sync(entry.id) is None
    assert logger.get_entry_sync(young).input_content is not None
    assert logger.storage.count_sync() == 1
    logger.close()


def test_what_such_a_backend_cannot_do_is_said():
    """Trails (holds, access records) need a comply_lab store: a typed error says so."""
    adapter = BackendAdapter(DictBackend())
    with pytest.raises(ConfigurationError, match="original storage protocol"):
        adapter.append_metadata("_holds.jsonl", {})
    adapter.close()
    with pytest.raises(StorageError, match="closed"):
        adapter.count_sync()


def test_a_backend_returning_no_entries_gets_a_clear_error():
    """read() giving something that is not an entry: a StorageError naming the type."""

    class Broken(DictBackend):
        async def read(self, entry_id: str) -> Any:
            return 42

    logger = AuditLogger(Broken())
    with pytest.raises(StorageError, match="not an entry"):
        logger.get_entry_sync("x")
    logger.close()
