"""UUIDv7 entry ids: format, time, order and uniqueness."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from comply_lab.model.ids import IdGenerator, id_time


class TestIdGenerator:
    def test_ids_are_rfc_9562_version_7(self):
        """Ids parse as UUIDs with version 7 and the RFC variant."""
        value = uuid.UUID(IdGenerator().new_id(1_700_000_000_000))
        assert value.version == 7
        assert value.variant == uuid.RFC_4122

    def test_time_is_recoverable(self):
        """The millisecond given is the time read back from the id."""
        stamp = datetime(2026, 1, 29, 23, 59, 59, 999000, tzinfo=UTC)
        entry_id = IdGenerator().new_id(int(stamp.timestamp() * 1000))
        assert id_time(entry_id) == stamp

    def test_strictly_increasing_within_a_millisecond(self):
        """Many ids in one millisecond sort in creation order and are unique."""
        gen = IdGenerator()
        ids = [gen.new_id(1_700_000_000_000) for _ in range(10_000)]
        assert ids == sorted(ids)
        assert len(set(ids)) == len(ids)

    def test_time_orders_ids(self):
        """Ids of later milliseconds sort after earlier ones."""
        gen = IdGenerator()
        assert gen.new_id(1000) < gen.new_id(1001) < gen.new_id(2**47)

    def test_independent_generators_do_not_collide(self):
        """Two writers in the same millisecond draw different random starts."""
        a = {IdGenerator().new_id(5) for _ in range(2000)}
        assert len(a) == 2000


class TestIdTime:
    def test_foreign_ids_have_no_time(self):
        """uuid4 ids and free text give None, so callers scan every day."""
        assert id_time(str(uuid.uuid4())) is None
        assert id_time("abc-123-def") is None
        assert id_time("0190b7a5-1f40-7000-0000-00000000000g") is None
        assert id_time("0190b7a5-1f40-7000-0000-000000000000") is None  # wrong variant
