"""MemoryStorage: the conformance suite plus eviction."""

from __future__ import annotations

import pytest

from comply_lab import AuditLogger, InvalidQueryError
from comply_lab.audit import MemoryStorage
from tests.conftest import FakeClock
from tests.storage_contract import StorageContract


class TestMemoryContract(StorageContract):
    backend = "memory"


class TestEviction:
    def test_oldest_entries_go_first(self, clock: FakeClock):
        """With max_entries, the store keeps the newest entries only."""
        storage = MemoryStorage(max_entries=3)
        logger = AuditLogger(storage, clock=clock)
        ids = []
        for i in range(5):
            clock.advance(hours=12)
            ids.append(logger.log_sync(input=str(i), output=""))
        assert storage.count_sync() == 3
        assert logger.get_entry_sync(ids[1]) is None
        assert [logger.get_entry_sync(i) is not None for i in ids[2:]] == [True] * 3
        assert len(storage.days()) == 2

    @pytest.mark.parametrize("bad", [0, -1, True])
    def test_bad_limit(self, bad: int):
        """A limit that is not a positive int is refused with a clear error."""
        with pytest.raises(InvalidQueryError, match="max_entries"):
            MemoryStorage(max_entries=bad)
