"""The storage conformance suite: every backend subclasses StorageContract in one line.

Each test drives the backend through the public logger API and the Storage primitives,
so every backend is held to exactly the same contract.
"""

from __future__ import annotations

import asyncio
import os
import string
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comply_lab import AuditLogger, InvalidQueryError
from comply_lab import MemoryStorage as MemoryStorageType
from comply_lab.audit import AuditEntry, Storage
from comply_lab.errors import ConcurrentOperationError, EntryHeldError, InvalidEntryError
from comply_lab.model.entry import entry_hash
from comply_lab.retention.holds import place_hold, release_hold
from comply_lab.storage import capabilities as caps
from comply_lab.storage.capabilities import DataFiles
from comply_lab.storage.compaction import compact
from comply_lab.storage.decode import segment_entries
from comply_lab.storage.manifest import DELETIONS, RETENTION, parse_records
from comply_lab.storage.registry import open_storage
from comply_lab.storage.seal import SealReport
from tests.conftest import FakeClock, StorageFactory, settle

T0 = datetime(2026, 1, 29, 10, 30, tzinfo=UTC)
PROPERTY_EXAMPLES = int(os.environ.get("COMPLY_LAB_PROPERTY_EXAMPLES", "60"))
"""Examples of the round-trip property per backend (``make unit`` runs fewer)."""

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
entry_fields = st.fixed_dictionaries(
    {"input": st.text(), "output": st.text()},
    optional={
        "provider": st.none() | st.text(),
        "model": st.none() | st.text(),
        "conversation_id": st.none() | st.text(string.printable),
        "safety_passed": st.booleans(),
        "detectors_triggered": st.lists(st.text(), max_size=3),
        "block_reason": st.none() | st.text(),
        "alerts": st.lists(st.text(), max_size=3),
        "latency_ms": st.floats(min_value=0, max_value=1e9, allow_nan=False),
        "input_tokens": st.none() | st.integers(min_value=0, max_value=2**63 - 1),
        "output_tokens": st.none() | st.integers(min_value=0, max_value=2**63 - 1),
        "metadata": st.dictionaries(st.text(), json_values, max_size=5),
    },
)


def _logger(storage: Storage, clock: FakeClock, **options: object) -> AuditLogger:
    return AuditLogger(storage, clock=clock, **options)  # type: ignore[arg-type]


_FILES = {"DataFiles", "Maintained", "LocalFiles", "Located", "Sealing", "Compactable"}
_S3 = {"DataFiles", "Maintained", "Located", "SourceTracking", "ObjectLocked", "Sealing"}
CAPABILITIES = {
    "memory": {"Maintained"},
    "jsonl": _FILES,
    "parquet": _FILES,
    "s3-parquet": _S3 | {"Compactable"},
    "s3-jsonl": _S3 | {"Compactable"},
}
"""What each backend declares (see :mod:`comply_lab.storage.capabilities`)."""
ALL_CAPABILITIES = [
    caps.DataFiles,
    caps.Maintained,
    caps.LocalFiles,
    caps.Located,
    caps.SourceTracking,
    caps.ObjectLocked,
    caps.Sealing,
    caps.Compactable,
]


class StorageContract:
    """Behaviour every storage backend must have. Subclasses set ``backend``."""

    backend: str

    def test_declares_its_capabilities(self, make_storage: StorageFactory):
        """The backend has exactly the capabilities it is documented to have."""
        storage = make_storage()
        found = {c.__name__ for c in ALL_CAPABILITIES if isinstance(storage, c)}
        assert found == CAPABILITIES[self.backend]

    def test_each_capability_does_what_it_says(
        self, make_storage: StorageFactory, clock: FakeClock
    ):
        """Every declared capability works on this backend, on a log with two days."""
        storage = make_storage()
        logger = _logger(storage, clock)
        for day in range(2):
            clock.advance(days=day)
            for _ in range(3):
                logger.log_sync(input="q", output="a")
        settle(storage)
        segments = [s for day in storage.days() for s in storage.segments(day)]
        if isinstance(storage, caps.LocalFiles):
            for segment in segments:
                assert storage.local_path(segment).read_bytes() == storage.read_segment(segment)
        if isinstance(storage, caps.Located):
            url = storage.location()
            assert url.startswith(("file:///", "s3://")) and url.endswith("/")
            if url.startswith("file://"):
                assert open_storage(url).count_sync() == 6
        if isinstance(storage, caps.SourceTracking):
            sources = [storage.source_of(s) for s in segments]
            assert len(set(sources)) == len(sources)
        if isinstance(storage, caps.ObjectLocked):
            assert all(storage.locked_until(day) is None for day in storage.days())
        if isinstance(storage, caps.Maintained):
            with (
                storage.maintenance("first"),
                pytest.raises(ConcurrentOperationError),
                storage.maintenance("second"),
            ):
                pass
        if isinstance(storage, caps.Compactable):
            assert isinstance(compact(storage), SealReport)
            assert storage.count_sync() == 6
        if isinstance(storage, caps.Sealing):
            assert hasattr(storage.sink(None), "record")

    def test_entry_reads_back_as_logged(self, make_storage: StorageFactory, clock: FakeClock):
        """An entry read by id has every field as logged, with a valid entry hash."""
        storage = make_storage()
        logger = _logger(storage, clock)
        entry_id = logger.log_sync(
            input="What is the weather today?",
            output="I don't have access to real-time weather data.",
            provider="openai",
            model="gpt-4",
            conversation_id="conv-1",
            safety_passed=True,
            latency_ms=150,
            input_tokens=7,
            output_tokens=11,
            metadata={"user_id": "user-123", "nested": {"a": [1, 2.5, None]}},
        )
        settle(storage)
        entry = logger.get_entry_sync(entry_id)
        assert entry is not None
        assert entry.id == entry_id
        assert entry.timestamp == T0
        assert entry.latency_ms == 150.0
        assert isinstance(entry.latency_ms, float)
        assert entry.metadata == {"user_id": "user-123", "nested": {"a": [1, 2.5, None]}}
        assert entry.input_content is None
        assert entry.entry_hash == entry_hash(entry.record())
        assert (entry.writer_id, entry.seq) == (logger.writer_id, 0)

    def test_days_are_sorted_partitions(self, make_storage: StorageFactory, clock: FakeClock):
        """Entries land in the UTC day partition of their timestamp."""
        storage = make_storage()
        logger = _logger(storage, clock)
        for offset in (2, 0, 1):
            clock.now = T0 + timedelta(days=offset)
            logger.log_sync(input="q", output="a")
        assert storage.days() == [date(2026, 1, 29), date(2026, 1, 30), date(2026, 1, 31)]
        settle(storage)
        assert [e.timestamp.date() for e in storage.read_day(date(2026, 1, 30))] == [
            date(2026, 1, 30)
        ]

    def test_read_day_keeps_write_order(self, make_storage: StorageFactory, clock: FakeClock):
        """A writer's entries come back in chain order within a day."""
        storage = make_storage()
        logger = _logger(storage, clock)
        ids = [logger.log_sync(input=str(i), output="") for i in range(50)]
        settle(storage)
        entries = list(storage.read_day(T0.date()))
        assert [e.id for e in entries] == ids
        assert [e.seq for e in entries] == list(range(50))
        assert [e.prev_hash for e in entries[1:]] == [e.entry_hash for e in entries[:-1]]

    def test_range_is_inclusive_and_sorted(self, make_storage: StorageFactory, clock: FakeClock):
        """get_entries includes both ends, excludes the rest and sorts by time."""
        storage = make_storage()
        logger = _logger(storage, clock)
        stamps = [T0 + timedelta(hours=h) for h in (30, 0, 5, 29, 48)]
        for stamp in stamps:
            clock.now = stamp
            logger.log_sync(input=stamp.isoformat(), output="")
        settle(storage)
        got = logger.get_entries_sync(T0 + timedelta(hours=5), T0 + timedelta(hours=30))
        assert [e.timestamp for e in got] == [T0 + timedelta(hours=h) for h in (5, 29, 30)]

    def test_naive_and_aware_bounds_agree(self, make_storage: StorageFactory, clock: FakeClock):
        """Naive bounds are UTC; aware bounds in other zones are converted."""
        storage = make_storage()
        logger = _logger(storage, clock)
        logger.log_sync(input="q", output="a")
        naive = T0.replace(tzinfo=None)
        tokyo = timezone(timedelta(hours=9))
        settle(storage)
        assert len(logger.get_entries_sync(naive, naive)) == 1
        assert len(logger.get_entries_sync(T0.astimezone(tokyo), T0.astimezone(tokyo))) == 1
        assert len(logger.get_entries_sync(T0.isoformat(), "2026-01-29T10:30:00")) == 1
        after = naive + timedelta(microseconds=1)
        assert logger.get_entries_sync(after, after + timedelta(days=1)) == []

    def test_reversed_range_is_an_error(self, make_storage: StorageFactory, clock: FakeClock):
        """A range whose start is after its end raises instead of returning nothing."""
        storage = make_storage()
        logger = _logger(storage, clock)
        with pytest.raises(InvalidQueryError, match="is after end"):
            logger.get_entries_sync(T0, T0 - timedelta(seconds=1))

    def test_missing_and_foreign_ids(self, make_storage: StorageFactory, clock: FakeClock):
        """Unknown ids give None, whether UUIDv7 or not."""
        storage = make_storage()
        logger = _logger(storage, clock)
        logger.log_sync(input="q", output="a")
        settle(storage)
        assert logger.get_entry_sync("0190b7a5-1f40-7000-8000-000000000000") is None
        assert logger.get_entry_sync("abc-123-def") is None

    def test_drop_day_counts_and_removes(self, make_storage: StorageFactory, clock: FakeClock):
        """drop_day deletes one whole day and returns its entry count."""
        storage = make_storage()
        logger = _logger(storage, clock)
        for _ in range(3):
            logger.log_sync(input="q", output="a")
        clock.advance(days=1)
        logger.log_sync(input="q", output="a")
        settle(storage)
        assert storage.drop_day(T0.date()) == 3
        assert storage.days() == [T0.date() + timedelta(days=1)]
        assert storage.count_sync() == 1
        assert storage.drop_day(T0.date()) == 0

    def test_data_files_are_the_segments_readers_read(
        self, make_storage: StorageFactory, clock: FakeClock
    ):
        """What dataset readers would open is exactly the store's segments, once settled."""
        storage = make_storage()
        if not isinstance(storage, DataFiles):
            pytest.skip("this store has no files for dataset readers to open")
        logger = _logger(storage, clock)
        for day in range(2):
            clock.advance(days=day)
            logger.log_sync(input="q", output="a")
        settle(storage)
        listed = {s.name for day in storage.days() for s in storage.segments(day)}
        assert len(listed) == 2
        assert set(storage.data_files()) == listed

    def test_cleanup_expired_deletes_whole_old_days_only(
        self, make_storage: StorageFactory, clock: FakeClock
    ):
        """Only days wholly older than retention_days go; the count is exact."""
        storage = make_storage()
        logger = _logger(storage, clock, retention_days=7)
        for day in range(10):
            clock.now = T0 + timedelta(days=day)
            for _ in range(day + 1):
                logger.log_sync(input="q", output="a")
        # now = 2026-02-07 10:30; cutoff 2026-01-31 10:30: days 29 and 30 are wholly older.
        settle(storage)
        assert logger.cleanup_expired_sync() == 1 + 2
        assert storage.days()[0] == date(2026, 1, 31)
        assert storage.count_sync() == sum(range(3, 11))
        assert logger.cleanup_expired_sync() == 0

    def test_holds_keep_their_partitions_through_cleanup(
        self, make_storage: StorageFactory, clock: FakeClock
    ):
        """A conversation hold and a time-range hold keep exactly their days.

        Each deletion is recorded first, and releasing a hold lets the next cleanup go on.
        """
        storage = make_storage()
        logger = _logger(storage, clock, retention_days=3)
        for day in range(8):
            clock.now = T0 + timedelta(days=day)
            logger.log_sync(input="q", output="a", conversation_id=f"c{day}")
        settle(storage)
        place_hold(storage, "case-1", conversation_id="c1", reason="litigation 1")
        place_hold(
            storage,
            "range",
            start=T0 + timedelta(days=3),
            end=T0 + timedelta(days=3),
            reason="audit",
        )
        assert logger.cleanup_expired_sync() == 2  # days 0 and 2; 1 and 3 are held
        assert storage.days()[:2] == [date(2026, 1, 30), date(2026, 2, 1)]
        deleted = [r["date"] for _, r in parse_records(storage.read_metadata(RETENTION)) if r]
        assert deleted == ["2026-01-29", "2026-01-31"]
        release_hold(storage, "case-1", reason="settled")
        assert logger.cleanup_expired_sync() == 1
        assert date(2026, 1, 30) not in storage.days()

    def test_async_api(self, make_storage: StorageFactory, clock: FakeClock):
        """The async methods give the same results as their sync twins."""
        storage = make_storage()
        logger = _logger(storage, clock)

        async def flow() -> tuple[AuditEntry | None, int, int]:
            entry_id = await logger.log(input="q", output="a", provider="p")
            settle(storage)
            entry = await logger.get_entry(entry_id)
            found = await logger.get_entries(T0, T0)
            return entry, len(found), await storage.count()  # type: ignore[attr-defined]

        entry, found, count = asyncio.run(flow())
        assert entry is not None and entry.provider == "p"
        assert (found, count) == (1, 1)

    def test_the_original_storage_writes(self, make_storage: StorageFactory):
        """write(entry): ours or the original's entry, read back, and the log verifies."""
        from rotalabs_comply.audit.storage import AuditEntry as OriginalEntry

        from comply_lab.lab import open_log

        storage = make_storage()
        mine = AuditEntry(id="e-1", timestamp="2026-01-29T10:00:00", input_hash="i" * 64,
                          output_hash="o" * 64, provider="p", latency_ms=5.0)  # fmt: skip
        theirs = OriginalEntry(id="e-2", timestamp="2026-01-29T11:00:00", input_hash="a" * 64,
                               output_hash="b" * 64, model="m", metadata={"k": [1]})  # fmt: skip
        assert asyncio.run(storage.write(mine)) == "e-1"  # type: ignore[attr-defined]
        assert storage.write_sync(theirs) == "e-2"  # type: ignore[attr-defined]
        settle(storage)
        first, second = storage.read_sync("e-1"), storage.read_sync("e-2")  # type: ignore[attr-defined]
        assert first.provider == "p" and first.latency_ms == 5.0 and first.seq == 0
        assert second.metadata == {"k": [1]} and second.writer_id == first.writer_id
        assert second.timestamp == datetime(2026, 1, 29, 11, tzinfo=UTC)
        with pytest.raises(InvalidEntryError, match="latency_ms"):
            storage.write_sync(AuditEntry(id="e-3", timestamp="2026-01-29", input_hash="x",  # type: ignore[attr-defined]
                                          output_hash="y", latency_ms=-1.0))  # fmt: skip
        with pytest.raises(InvalidEntryError, match="entry"):
            storage.write_sync({"id": "e-4"})  # type: ignore[attr-defined]
        # A UUIDv7 id names its day: one that disagrees with the timestamp would be lost
        # to lookups by id, so it is refused.
        with pytest.raises(InvalidEntryError, match=r"id.*new id"):
            storage.write_sync(AuditEntry(id="019c2d3e-8d00-7000-8000-000000000000",  # type: ignore[attr-defined]
                                          timestamp="2026-01-29T10:00:00", input_hash="x",
                                          output_hash="y"))  # fmt: skip
        assert storage.count_sync() == 2  # type: ignore[attr-defined]
        if not isinstance(storage, MemoryStorageType):
            assert open_log(storage).verify(allow_unsigned=True).ok

    def test_the_original_storage_reads(self, make_storage: StorageFactory, clock: FakeClock):
        """read, list_entries and count, async and sync, as the original StorageBackend."""
        storage = make_storage()
        logger = _logger(storage, clock)
        ids = [logger.log_sync(input=f"q{i}", output="a", provider="p") for i in range(3)]
        settle(storage)

        async def flow() -> tuple[AuditEntry | None, AuditEntry | None, list[AuditEntry], int]:
            return (
                await storage.read(ids[1]),  # type: ignore[attr-defined]
                await storage.read("0190f1c2-7a3b-7c4d-8e5f-60718293a4b5"),  # type: ignore[attr-defined]
                await storage.list_entries(T0, T0),  # type: ignore[attr-defined]
                await storage.count(),  # type: ignore[attr-defined]
            )

        entry, missing, listed, count = asyncio.run(flow())
        assert entry == logger.get_entry_sync(ids[1]) and entry is not None
        assert missing is None and count == 3
        assert [e.id for e in listed] == ids == [e.id for e in storage.list_entries_sync(T0, T0)]  # type: ignore[attr-defined]
        assert storage.read_sync(ids[0]).id == ids[0]  # type: ignore[attr-defined]
        with pytest.raises(InvalidQueryError):
            storage.list_entries_sync(T0, T0 - timedelta(days=1))  # type: ignore[attr-defined]

    def test_delete_on_request(self, make_storage: StorageFactory, clock: FakeClock):
        """delete(id): out of every read at once, out of the files after compaction; verified."""
        from comply_lab.lab import open_log

        storage = make_storage()
        logger = _logger(storage, clock)
        ids = []
        for day in range(2):
            clock.advance(days=day)
            ids += [logger.log_sync(input=f"q{i}", output="a", provider="p") for i in range(3)]
        settle(storage)
        assert asyncio.run(storage.delete(ids[1])) is True  # type: ignore[attr-defined]
        assert storage.delete_sync(ids[1]) is False  # type: ignore[attr-defined]
        assert storage.delete_sync("0190f1c2-7a3b-7c4d-8e5f-60718293a4b5") is False  # type: ignore[attr-defined]
        with pytest.raises(InvalidQueryError):
            storage.delete_sync(7)  # type: ignore[attr-defined]
        kept = [i for i in ids if i != ids[1]]
        log = open_log(storage)
        assert storage.read_sync(ids[1]) is None and logger.get_entry_sync(ids[1]) is None  # type: ignore[attr-defined]
        assert [e.id for e in storage.list_entries_sync(T0, T0 + timedelta(days=2))] == kept  # type: ignore[attr-defined]
        assert storage.count_sync() == 5 == log.count() == len(log.entries())  # type: ignore[attr-defined]
        assert log.partitions()["entries"].sum() == 5
        assert sorted(log.entries()["id"]) == sorted(kept)
        assert log.entry(ids[1]) is None
        report = log.verify(allow_unsigned=True)
        assert report.ok, report.problems
        found = [(p.status, p.entry_id) for p in report.problems if p.severity != "warning"]
        assert found == [("deleted_on_request", ids[1])]
        if isinstance(storage, caps.Sealing):
            storage.delete_sync(ids[4])  # type: ignore[attr-defined]
            compact(storage)  # seals what is unsealed, rewrites sealed parts holding them
            assert compact(storage).pruned == []  # once is enough
            rows = [
                str(e.id)
                for day in storage.days()
                for segment in storage.segments(day)
                for e in segment_entries(storage, segment)
            ]
            assert sorted(rows) == sorted(i for i in kept if i != ids[4])
            report = open_log(storage).verify(allow_unsigned=True)
            assert report.ok, report.problems
            statuses = sorted(
                p.entry_id for p in report.problems if p.status == "deleted_on_request"
            )
            assert statuses == sorted([ids[1], ids[4]])

    def test_delete_refuses_an_entry_under_legal_hold(
        self, make_storage: StorageFactory, clock: FakeClock
    ):
        """The original API's delete(id) honours legal holds like the lab and the CLI."""
        storage = make_storage()
        logger = _logger(storage, clock)
        held = logger.log_sync(input="q", output="a", conversation_id="matter")
        free = logger.log_sync(input="q", output="a", conversation_id="other")
        settle(storage)
        place_hold(storage, "case-9", conversation_id="matter", reason="litigation")
        with pytest.raises(EntryHeldError, match="case-9"):
            asyncio.run(storage.delete(held))  # type: ignore[attr-defined]
        assert storage.read_sync(held) is not None  # type: ignore[attr-defined]
        assert storage.read_metadata(DELETIONS) == b""
        assert storage.delete_sync(free) is True  # type: ignore[attr-defined]
        release_hold(storage, "case-9", reason="settled")
        assert storage.delete_sync(held) is True  # type: ignore[attr-defined]

    # Each backend subclass is its own executor by design; the factory makes fresh stores.
    @settings(
        max_examples=PROPERTY_EXAMPLES,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(fields=entry_fields, offset_s=st.integers(0, 3 * 86400))
    def test_any_valid_entry_round_trips(
        self, make_storage: StorageFactory, fields: dict[str, object], offset_s: int
    ):
        """Whatever valid values are logged come back identical, on any day."""
        clock = FakeClock(T0 + timedelta(seconds=offset_s, microseconds=offset_s % 997))
        storage = make_storage()
        logger = _logger(storage, clock, store_content=True)
        entry_id = logger.log_sync(**fields)  # type: ignore[arg-type]
        settle(storage)
        entry = logger.get_entry_sync(entry_id)
        assert entry is not None
        expected = {
            "provider": None,
            "model": None,
            "conversation_id": None,
            "safety_passed": True,
            "detectors_triggered": [],
            "block_reason": None,
            "alerts": [],
            "latency_ms": 0.0,
            "input_tokens": None,
            "output_tokens": None,
            "metadata": {},
            **fields,
        }
        assert entry.input_content == expected.pop("input")
        assert entry.output_content == expected.pop("output")
        assert {k: getattr(entry, k) for k in expected} == expected
        assert entry.timestamp == clock.now
        assert entry.entry_hash == entry_hash(entry.record())
