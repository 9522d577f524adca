"""FileStorage: the conformance suite plus layout, rotation, crashes and concurrency."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import threading
import warnings
from datetime import date, timedelta
from pathlib import Path

import orjson
import pytest

from comply_lab import AuditLogger, CorruptLineWarning, InvalidQueryError, StorageError
from comply_lab.audit import FileStorage
from comply_lab.model.entry import entry_hash
from tests.conftest import FakeClock, original_record
from tests.storage_contract import T0, StorageContract


class TestJsonlContract(StorageContract):
    backend = "jsonl"


class TestParquetContract(StorageContract):
    backend = "parquet"


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


class TestLayout:
    def test_day_files_named_like_the_original(self, tmp_path: Path, clock: FakeClock):
        """Entries go to audit_YYYYMMDD.jsonl by UTC day."""
        logger = AuditLogger(str(tmp_path), clock=clock)
        logger.log_sync(input="q", output="a")
        clock.advance(days=1)
        logger.log_sync(input="q", output="a")
        logger.close()
        assert sorted(os.listdir(tmp_path)) == ["audit_20260129.jsonl", "audit_20260130.jsonl"]

    def test_hash_only_line(self, tmp_path: Path, clock: FakeClock):
        """By default a stored line holds hashes and no content."""
        logger = AuditLogger(tmp_path, clock=clock)
        logger.log_sync(input="What is the weather today?", output="Sunny.")
        (record,) = _lines(tmp_path / "audit_20260129.jsonl")
        assert record["input_content"] is None and record["output_content"] is None
        assert record["input_hash"] == hashlib.sha256(b"What is the weather today?").hexdigest()
        assert record["timestamp"] == "2026-01-29T10:30:00.000000+00:00"
        assert record["entry_hash"] == entry_hash(record)

    def test_rotation_by_size_keeps_files_in_place(self, tmp_path: Path, clock: FakeClock):
        """A full segment stays; the next write goes to _001, then _002, never renaming."""
        storage = FileStorage(tmp_path, rotation_size_mb=2000 / 1024 / 1024)
        logger = AuditLogger(storage, clock=clock)
        ids = [logger.log_sync(input="q" * 100, output="a") for _ in range(12)]
        logger.close()
        names = sorted(os.listdir(tmp_path))
        assert names[0] == "audit_20260129.jsonl"
        assert names[1:3] == ["audit_20260129_001.jsonl", "audit_20260129_002.jsonl"]
        assert all((tmp_path / n).stat().st_size < 2000 + 1000 for n in names)
        assert [e.id for e in storage.read_day(T0.date())] == ids

    def test_reopen_appends_to_latest_segment(self, tmp_path: Path, clock: FakeClock):
        """A new writer continues in the day's newest segment, not the first."""
        small = 1500 / 1024 / 1024
        first = AuditLogger(FileStorage(tmp_path, rotation_size_mb=small), clock=clock)
        for _ in range(8):
            first.log_sync(input="q" * 100, output="a")
        first.close()
        before = sorted(os.listdir(tmp_path))
        second = AuditLogger(FileStorage(tmp_path, rotation_size_mb=small), clock=clock)
        second.log_sync(input="q", output="a")
        second.close()
        assert sorted(os.listdir(tmp_path)) == before
        assert _lines(tmp_path / before[-1])[-1]["writer_id"] == second.writer_id

    def test_bad_rotation_size(self, tmp_path: Path):
        """A non-positive rotation size is refused."""
        with pytest.raises(InvalidQueryError, match="rotation_size_mb"):
            FileStorage(tmp_path, rotation_size_mb=0)

    def test_unwritable_location_is_a_storage_error(self, tmp_path: Path):
        """A log directory that cannot be created raises StorageError naming it."""
        blocker = tmp_path / "file"
        blocker.write_text("")
        with pytest.raises(StorageError, match="cannot create log directory"):
            FileStorage(blocker / "log")


class TestDamagedFiles:
    def _write_three(self, path: Path, clock: FakeClock) -> list[str]:
        logger = AuditLogger(FileStorage(path), clock=clock)
        ids = [logger.log_sync(input=str(i), output="") for i in range(3)]
        logger.close()
        return ids

    def test_torn_last_line_is_reported_and_skipped(self, tmp_path: Path, clock: FakeClock):
        """A crash mid-write leaves a torn line: reads warn with file and line, keep the rest."""
        ids = self._write_three(tmp_path, clock)
        path = tmp_path / "audit_20260129.jsonl"
        with path.open("ab") as f:
            f.write(b'{"id": "torn", "timest')
        logger = AuditLogger(FileStorage(tmp_path), clock=clock)
        with pytest.warns(CorruptLineWarning, match=r"audit_20260129.jsonl line 4: incomplete"):
            assert [e.id for e in logger.get_entries_sync(T0, T0)] == ids

    def test_next_writer_starts_a_fresh_line(self, tmp_path: Path, clock: FakeClock):
        """After a torn line, the next entry is on its own line and readable."""
        self._write_three(tmp_path, clock)
        path = tmp_path / "audit_20260129.jsonl"
        with path.open("ab") as f:
            f.write(b'{"id": "torn"')
        logger = AuditLogger(FileStorage(tmp_path), clock=clock)
        clock.advance(seconds=1)
        new_id = logger.log_sync(input="after", output="")
        with pytest.warns(CorruptLineWarning, match="line 4: not valid JSON") as caught:
            entries = logger.get_entries_sync(T0, clock.now)
        assert len(caught) == 1
        assert entries[-1].id == new_id and len(entries) == 4

    def test_garbage_in_the_middle_hides_nothing_else(self, tmp_path: Path, clock: FakeClock):
        """A damaged middle line is skipped with a warning; lines after it are still read."""
        ids = self._write_three(tmp_path, clock)
        path = tmp_path / "audit_20260129.jsonl"
        lines = path.read_bytes().splitlines(keepends=True)
        lines[1] = b"\x00\xff garbage\n"
        path.write_bytes(b"".join(lines))
        storage = FileStorage(tmp_path)
        with pytest.warns(CorruptLineWarning, match="line 2: not valid JSON"):
            assert [e.id for e in storage.read_day(T0.date())] == [ids[0], ids[2]]

    @pytest.mark.parametrize(
        ("line", "reason"),
        [
            (b"[1, 2]", "not an object"),
            (b'{"id": "x"}', "lacks required field"),
            (b'{"id": "x", "timestamp": "yesterday", "input_hash": "", "output_hash": ""}', "ISO"),
        ],
    )
    def test_records_that_are_not_entries(self, tmp_path: Path, line: bytes, reason: str):
        """JSON that is not an audit entry is reported with the reason."""
        (tmp_path / "audit_20260129.jsonl").write_bytes(line + b"\n")
        with pytest.warns(CorruptLineWarning, match=reason):
            assert list(FileStorage(tmp_path).read_day(date(2026, 1, 29))) == []

    def test_original_tool_records_are_read(self, tmp_path: Path):
        """Lines written by the original tool (naive timestamps, uuid4 ids) are read as UTC."""
        record = original_record(T0, "q")
        (tmp_path / "audit_20260129.jsonl").write_text(json.dumps(record) + "\n")
        logger = AuditLogger(tmp_path)
        entry = logger.get_entry_sync(record["id"])
        assert entry is not None
        assert entry.timestamp == T0
        assert entry.latency_ms == 150.0
        assert entry.writer_id is None
        assert len(logger.get_entries_sync("2026-01-29T10:30:00", "2026-01-29T10:30:00")) == 1

    def test_failed_write_raises_and_stores_nothing(self, tmp_path: Path, clock: FakeClock):
        """A write error is a StorageError; the next log() reopens the file and the chain holds."""
        storage = FileStorage(tmp_path)
        logger = AuditLogger(storage, clock=clock)
        logger.log_sync(input="ok", output="")
        seg = storage._open
        assert seg is not None
        readonly = os.open(seg.path, os.O_RDONLY)
        os.dup2(readonly, seg.fd)
        os.close(readonly)
        with pytest.raises(StorageError, match="was not stored"):
            logger.log_sync(input="lost", output="")
        logger.log_sync(input="ok again", output="")
        entries = list(storage.read_day(T0.date()))
        assert [e.seq for e in entries] == [0, 1]
        assert entries[1].prev_hash == entries[0].entry_hash


class TestPruning:
    def test_queries_open_only_the_days_they_need(self, tmp_path: Path, clock: FakeClock):
        """Other days' files are never read: garbage in them raises no warning."""
        logger = AuditLogger(FileStorage(tmp_path), clock=clock)
        wanted = logger.log_sync(input="q", output="a")
        for day in (3, 4):
            (tmp_path / f"audit_202602{day:02d}.jsonl").write_bytes(b"garbage\n")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert logger.get_entry_sync(wanted) is not None
            assert len(logger.get_entries_sync(T0 - timedelta(days=1), T0)) == 1
        with pytest.warns(CorruptLineWarning):
            logger.get_entries_sync(T0, T0 + timedelta(days=6))

    def test_unrelated_files_are_ignored(self, tmp_path: Path, clock: FakeClock):
        """Files that are not day segments (notes, other tools) do not count as data."""
        (tmp_path / "README.txt").write_text("hello")
        (tmp_path / "audit_2026.jsonl").write_text("x")
        (tmp_path / "audit_20261399.jsonl").write_text("x")
        assert FileStorage(tmp_path).days() == []


class TestDurability:
    @pytest.mark.parametrize("policy", ["never", "interval", "always"])
    def test_policies_write_the_same_data(self, tmp_path: Path, clock: FakeClock, policy: str):
        """Every fsync policy stores every acknowledged entry."""
        logger = AuditLogger(FileStorage(tmp_path, fsync=policy), clock=clock)  # type: ignore[arg-type]
        for i in range(20):
            logger.log_sync(input=str(i), output="")
        logger.close()
        assert FileStorage(tmp_path).count_sync() == 20

    def test_unknown_policy(self, tmp_path: Path):
        """A misspelled policy is refused with the valid choices."""
        with pytest.raises(InvalidQueryError, match="never, interval, always"):
            FileStorage(tmp_path, fsync="sometimes")  # type: ignore[arg-type]

    def test_group_commit_shares_fsyncs(
        self, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
    ):
        """Under "always", concurrent log() calls share fsyncs: fewer fsyncs than entries."""
        calls = []
        real_fsync = os.fsync

        def counting_fsync(fd: int) -> None:
            calls.append(fd)
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", counting_fsync)
        logger = AuditLogger(FileStorage(tmp_path, fsync="always"), clock=clock)
        threads = [
            threading.Thread(
                target=lambda: [logger.log_sync(input="q", output="a") for _ in range(50)]
            )
            for _ in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        logger.close()
        assert FileStorage(tmp_path).count_sync() == 400
        assert 0 < len(calls) < 400

    def test_interval_thread_syncs_in_the_background(self, tmp_path: Path, clock: FakeClock):
        """Under "interval", data written is fsynced without waiting for close()."""
        storage = FileStorage(tmp_path, fsync="interval", fsync_interval_s=0.01)
        logger = AuditLogger(storage, clock=clock)
        logger.log_sync(input="q", output="a")
        commit = storage._commit
        for _ in range(500):
            if commit._durable == commit._written:
                break
            threading.Event().wait(0.01)
        assert commit._durable == commit._written == 1
        logger.close()


def _child_writes(path: str, count: int, tag: int) -> None:
    logger = AuditLogger(FileStorage(path, rotation_size_mb=0.5, fsync="never"))
    for i in range(count):
        logger.log_sync(input=f"{tag}-{i}", output="x" * (i % 300), metadata={"tag": tag})
    logger.close()


@pytest.mark.slow
class TestConcurrency:
    @pytest.mark.slow
    def test_four_processes_lose_nothing(self, tmp_path: Path):
        """4 processes x 5,000 entries into one directory: all 20,000 lines intact."""
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_child_writes, args=(str(tmp_path), 5000, n)) for n in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=300)
            assert p.exitcode == 0
        lines = [
            line
            for path in sorted(tmp_path.iterdir())
            for line in path.read_bytes().split(b"\n")
            if line
        ]
        assert len(lines) == 20_000
        records = [orjson.loads(line) for line in lines]
        by_writer: dict[str, list[int]] = {}
        for record in records:
            by_writer.setdefault(record["writer_id"], []).append(record["seq"])
        assert len(by_writer) == 4
        assert all(sorted(seqs) == list(range(5000)) for seqs in by_writer.values())
        assert FileStorage(tmp_path).count_sync() == 20_000

    def test_forked_child_is_a_new_writer(self, tmp_path: Path, clock: FakeClock):
        """A logger inherited through fork gets its own writer id and chain."""
        logger = AuditLogger(FileStorage(tmp_path, fsync="never"), clock=clock)
        logger.log_sync(input="parent", output="")
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                logger.log_sync(input="child", output="")
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        logger.log_sync(input="parent again", output="")
        records = _lines(tmp_path / "audit_20260129.jsonl")
        writers = {r["writer_id"] for r in records}
        assert len(writers) == 2
        child = next(r for r in records if r["writer_id"] != logger.writer_id)
        assert (child["seq"], child["prev_hash"]) == (0, "0" * 64)
        assert [r["seq"] for r in records if r["writer_id"] == logger.writer_id] == [0, 1]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_partial_day_windows_build_only_what_is_inside(tmp_path: Path, fmt: str) -> None:
    """Entries outside a window are skipped before they are built; the answer is unchanged."""
    clock = FakeClock(T0)
    storage = FileStorage(tmp_path, format=fmt, fsync="never")
    with AuditLogger(storage, clock=clock) as logger:
        for i in range(48):
            logger.log_sync(input=f"q{i}", output="a")
            clock.advance(minutes=30)
    # The original tool's lines (naive timestamps) sit beside ours, plus a damaged one.
    legacy = tmp_path / f"audit_{T0:%Y%m%d}_900.jsonl"
    stamps = [T0 + timedelta(hours=h, minutes=10) for h in (1, 5, 12)]
    lines = [json.dumps(original_record(s, "old")) for s in stamps]
    legacy.write_text("\n".join([*lines, '{"id": "x", "timestamp": "not a time"}']) + "\n")
    with pytest.warns(CorruptLineWarning, match="line 4"):
        everything = [e for day in storage.days() for e in storage.read_day(day)]
    assert len(everything) == 51
    logger = AuditLogger(FileStorage(tmp_path, fsync="never"))
    for start, end in [
        (T0 + timedelta(hours=1), T0 + timedelta(hours=5, minutes=10)),  # both ends hit exactly
        (T0 - timedelta(days=1), T0 + timedelta(hours=2)),
        (T0 + timedelta(hours=12), T0 + timedelta(days=3)),
    ]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            found = logger.get_entries_sync(start, end)
        expected = sorted(
            (e for e in everything if start <= e.timestamp <= end),
            key=lambda e: (e.timestamp, e.id),
        )
        assert [e.id for e in found] == [e.id for e in expected]
        assert any("_900.jsonl line 4" in str(w.message) for w in caught)  # still reported
