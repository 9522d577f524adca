"""AuditLogger: content modes, hash chains, sync twins and async concurrency."""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import timedelta
from pathlib import Path

import pytest

from comply_lab import AuditLogger, EncryptionManager, InvalidQueryError
from comply_lab.audit import FileStorage, MemoryStorage
from comply_lab.errors import DecryptionError, EncryptionNotConfiguredError
from comply_lab.model.entry import GENESIS_HASH, entry_hash
from tests.conftest import FakeClock


class TestContent:
    def test_hash_only_by_default(self, clock: FakeClock):
        """Without store_content only SHA-256 hex digests of the UTF-8 text are kept."""
        logger = AuditLogger(MemoryStorage(), clock=clock)
        entry = logger.get_entry_sync(logger.log_sync(input="héllo", output="wörld"))
        assert entry is not None
        assert entry.input_hash == hashlib.sha256("héllo".encode()).hexdigest()
        assert entry.output_hash == hashlib.sha256("wörld".encode()).hexdigest()
        assert (entry.input_content, entry.output_content) == (None, None)

    def test_plain_content_when_asked(self, clock: FakeClock):
        """store_content without a key stores the text itself."""
        logger = AuditLogger(MemoryStorage(), store_content=True, clock=clock)
        entry = logger.get_entry_sync(logger.log_sync(input="q", output="a"))
        assert entry is not None
        assert (entry.input_content, entry.output_content) == ("q", "a")

    def test_encrypted_content_decrypts(self, clock: FakeClock, tmp_path: Path):
        """With a key, stored content is ciphertext that decrypt_content restores."""
        manager = EncryptionManager()
        logger = AuditLogger(tmp_path, encryption=manager, store_content=True, clock=clock)
        entry = logger.get_entry_sync(logger.log_sync(input="patient 42", output="ok"))
        assert entry is not None
        assert entry.input_content is not None
        assert "patient" not in (tmp_path / "audit_20260129.jsonl").read_text()
        assert logger.decrypt_content(entry.input_content) == "patient 42"
        assert entry.input_hash == hashlib.sha256(b"patient 42").hexdigest()

    def test_decrypt_without_key_is_a_clear_error(self, clock: FakeClock):
        """decrypt_content without an EncryptionManager raises (also a ValueError)."""
        logger = AuditLogger(MemoryStorage(), clock=clock)
        with pytest.raises(EncryptionNotConfiguredError, match="no encryption key configured"):
            logger.decrypt_content("anything")
        with pytest.raises(ValueError, match="EncryptionManager"):
            logger.decrypt_content("anything")

    def test_decrypt_with_wrong_key(self, clock: FakeClock):
        """Content from another key raises DecryptionError."""
        token = EncryptionManager().encrypt("x")
        logger = AuditLogger(MemoryStorage(), encryption=EncryptionManager(), clock=clock)
        with pytest.raises(DecryptionError):
            logger.decrypt_content(token)


class TestChain:
    def test_each_logger_is_one_chain(self, clock: FakeClock):
        """Two loggers on one store make two independent, valid chains."""
        storage = MemoryStorage()
        first, second = AuditLogger(storage, clock=clock), AuditLogger(storage, clock=clock)
        for _ in range(3):
            first.log_sync(input="a", output="")
            second.log_sync(input="b", output="")
        entries = list(storage.read_day(clock.now.date()))
        assert first.writer_id != second.writer_id
        for writer in (first.writer_id, second.writer_id):
            chain = [e for e in entries if e.writer_id == writer]
            assert [e.seq for e in chain] == [0, 1, 2]
            assert chain[0].prev_hash == GENESIS_HASH
            assert [e.prev_hash for e in chain[1:]] == [e.entry_hash for e in chain[:-1]]
            assert all(e.entry_hash == entry_hash(e.record()) for e in chain)

    def test_hash_covers_every_field_but_the_content(self, clock: FakeClock):
        """Changing any stored field changes the entry hash, except the stored content.

        Content is bound by its fingerprints, which are hashed; leaving the (possibly
        encrypted) content out lets keys be rotated without touching the chain.
        """
        logger = AuditLogger(MemoryStorage(), clock=clock)
        entry = logger.get_entry_sync(
            logger.log_sync(input="q", output="a", metadata={"k": "v"}, latency_ms=1.5)
        )
        assert entry is not None
        record = entry.record()
        for name, value in record.items():
            if name in ("entry_hash", "input_content", "output_content"):
                assert entry_hash(dict(record, **{name: "other"})) == entry.entry_hash
                continue
            changed = dict(record, **{name: "tampered" if value != "tampered" else "x"})
            assert entry_hash(changed) != entry.entry_hash, name


class TestTwins:
    def test_sync_api_works_inside_a_running_loop(self, clock: FakeClock):
        """The _sync methods work where an event loop already runs (as in Jupyter)."""
        logger = AuditLogger(MemoryStorage(), clock=clock)

        async def notebook_cell() -> int:
            entry_id = logger.log_sync(input="q", output="a")
            assert logger.get_entry_sync(entry_id) is not None
            assert logger.cleanup_expired_sync() == 0
            return len(logger.get_entries_sync(clock.now, clock.now))

        assert asyncio.run(notebook_cell()) == 1

    def test_concurrent_tasks_each_get_an_entry(self, tmp_path: Path, clock: FakeClock):
        """1,000 concurrent log() tasks (fsync always) store 1,000 chained entries."""
        storage = FileStorage(tmp_path, fsync="always")
        logger = AuditLogger(storage, clock=clock)

        async def burst() -> list[str]:
            return await asyncio.gather(*(logger.log(input=str(i), output="") for i in range(1000)))

        ids = asyncio.run(burst())
        logger.close()
        entries = list(FileStorage(tmp_path).read_day(clock.now.date()))
        assert sorted(e.id for e in entries) == sorted(ids)
        assert [e.seq for e in entries] == list(range(1000))

    def test_async_context_manager_closes(self, tmp_path: Path, clock: FakeClock):
        """Leaving ``async with`` flushes and closes the storage."""

        async def use() -> None:
            async with AuditLogger(FileStorage(tmp_path, fsync="always"), clock=clock) as log:
                await log.log(input="q", output="a")

        asyncio.run(use())
        assert FileStorage(tmp_path).count_sync() == 1

    def test_twins_have_names_and_docs(self):
        """Async twins carry the name and documentation of the operation."""
        assert AuditLogger.log.__name__ == "log"
        assert AuditLogger.get_entries.__name__ == "get_entries"
        assert "both included" in (AuditLogger.get_entries.__doc__ or "")
        assert "Returns once the entry is handed" in (AuditLogger.log_sync.__doc__ or "")


class TestOptions:
    @pytest.mark.parametrize("bad", [-1, 1.5, True, "365"])
    def test_bad_retention(self, bad: object):
        """retention_days must be an int >= 0."""
        with pytest.raises(InvalidQueryError, match="retention_days"):
            AuditLogger(MemoryStorage(), retention_days=bad)  # type: ignore[arg-type]

    def test_path_means_file_storage(self, tmp_path: Path):
        """A str or Path storage argument means FileStorage at that path."""
        assert isinstance(AuditLogger(str(tmp_path)).storage, FileStorage)
        assert isinstance(AuditLogger(tmp_path).storage, FileStorage)

    def test_unknown_url_scheme(self):
        """A URL whose scheme has no backend is refused with a hint."""
        with pytest.raises(InvalidQueryError, match="no storage backend for ftp://"):
            AuditLogger("ftp://host/log")

    @pytest.mark.parametrize(
        ("call", "message"),
        [
            (
                {"inptu": "q", "output": "a"},
                "inptu: not an audit entry field; did you mean 'input'",
            ),
            (
                {"input": "q", "ouput": "a"},
                "ouput: not an audit entry field; did you mean 'output'",
            ),
            ({"input": "q", "output": "a", "modle": "m"}, "did you mean 'model'"),
            ({"input": "q"}, "log(): missing a required argument: 'output'"),
        ],
    )
    def test_a_misspelt_or_missing_keyword_is_named(self, call: dict[str, str], message: str):
        """Misspelt fields get 'did you mean', even when they leave input or output missing."""
        logger = AuditLogger(MemoryStorage())
        with pytest.raises(TypeError, match=re.escape(message)):
            logger.log_sync(**call)
        with pytest.raises(TypeError, match=re.escape(message)):
            asyncio.run(logger.log(**call))
        assert logger.storage.count_sync() == 0

    def test_a_url_is_no_directory(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
        """FileStorage refuses a URL instead of making a folder named 's3:'."""
        monkeypatch.chdir(tmp_path)
        with pytest.raises(InvalidQueryError, match=r"s3:// URL: use open_log\(\)"):
            FileStorage("s3://bucket/audit/")
        assert not (tmp_path / "s3:").exists()
        assert FileStorage(f"file://{tmp_path}/log").path == tmp_path / "log"

    def test_retention_zero_keeps_today(self, clock: FakeClock):
        """retention_days=0 deletes yesterday and before, never today."""
        storage = MemoryStorage()
        logger = AuditLogger(storage, retention_days=0, clock=clock)
        logger.log_sync(input="old", output="")
        clock.advance(days=1)
        logger.log_sync(input="new", output="")
        assert logger.cleanup_expired_sync() == 1
        assert logger.cleanup_expired_sync(now=clock.now + timedelta(hours=13)) == 0
        assert storage.count_sync() == 1


def test_logging_path_stays_light(tmp_path: Path):
    """Logging and reading JSONL never import pandas, pyarrow, matplotlib, ipywidgets or boto3."""
    import subprocess
    import sys

    code = (
        "import sys, comply_lab\n"
        "from comply_lab import AuditLogger, KeyRing\n"
        f"l = AuditLogger({str(tmp_path)!r}, encryption=KeyRing.generate(), store_content=True)\n"
        "l.log_sync(input='a', output='b'); l.get_entries_sync('2000-01-01', '2100-01-01')\n"
        "l.close()\n"
        "heavy = ('pandas', 'pyarrow', 'matplotlib', 'ipywidgets', 'boto3', 'duckdb')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
