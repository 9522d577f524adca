"""The original audit-logging API's documented helpers, checked against rotalabs-comply."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from cryptography.fernet import InvalidToken
from rotalabs_comply.audit import encryption as original
from rotalabs_comply.audit.storage import AuditEntry as OriginalEntry

import comply_lab
import comply_lab.audit
import comply_lab.audit.encryption
from comply_lab import AuditEntry, AuditLogger, MemoryStorage
from comply_lab.audit.storage import create_entry_id
from comply_lab.errors import DecryptionError, InvalidEntryError, InvalidKeyError, WrongKeyError

HELPERS = ("generate_key", "encrypt", "decrypt", "hash_content", "EncryptionManager")


@pytest.mark.parametrize("module", [comply_lab, comply_lab.audit, comply_lab.audit.encryption])
def test_the_helpers_import_from_every_documented_place(module):
    """generate_key, encrypt, decrypt, hash_content, EncryptionManager: one object each."""
    for name in HELPERS:
        assert getattr(module, name) is getattr(comply_lab.audit.encryption, name)


def test_keys_tokens_and_hashes_interoperate_with_the_original():
    """Our keys and tokens work in the original and back; hashes are identical."""
    ours, theirs = comply_lab.generate_key(), original.generate_key()
    assert len(ours) == 44 and len(theirs) == 44
    assert original.decrypt(comply_lab.encrypt(b"secret", theirs), theirs) == b"secret"
    assert comply_lab.decrypt(original.encrypt(b"secret", ours), ours) == b"secret"
    for text in ("hello world", "", "caf\u00e9 \U0001f600"):
        assert comply_lab.hash_content(text) == original.hash_content(text)
    assert comply_lab.hash_content("hello world").startswith("b94d27b9934d3e08")
    manager = original.EncryptionManager(ours)
    assert comply_lab.EncryptionManager(ours).decrypt(manager.encrypt("note")) == "note"


def test_a_wrong_key_is_both_our_error_and_invalid_token():
    """Callers of the original API catch InvalidToken; ours catch DecryptionError."""
    token = comply_lab.encrypt(b"secret", comply_lab.generate_key())
    with pytest.raises(InvalidToken) as caught:
        comply_lab.decrypt(token, comply_lab.generate_key())
    assert isinstance(caught.value, WrongKeyError | DecryptionError)
    stored = comply_lab.EncryptionManager().encrypt("x")
    with pytest.raises(InvalidToken):
        comply_lab.EncryptionManager().decrypt(stored)
    with pytest.raises(InvalidKeyError, match="generate_key"):
        comply_lab.encrypt(b"x", b"not a key")


def test_no_encryption_manager_is_a_value_error():
    """decrypt_content without a key: a ValueError subclass, as documented."""
    with pytest.raises(ValueError, match="no encryption key"):
        AuditLogger(MemoryStorage()).decrypt_content("gAAAAAB...")


def test_our_entries_go_to_the_original_and_back():
    """to_dict() of an entry we logged is the original's dictionary; record() keeps the chain."""
    logger = AuditLogger(MemoryStorage())
    entry = logger.get_entry_sync(logger.log_sync(input="q", output="a", metadata={"k": [1]}))
    assert entry is not None and entry.writer_id is not None
    theirs = OriginalEntry.from_dict(entry.to_dict())
    assert theirs == entry and theirs.metadata == {"k": [1]}
    assert AuditEntry.from_dict(entry.record()) == entry  # the full record round-trips
    assert set(entry.record()) - set(entry.to_dict()) == {
        "hash_key_id", "writer_id", "seq", "prev_hash", "entry_hash"
    }  # fmt: skip


def test_create_entry_id_gives_unique_uuids():
    """Unique, parseable UUIDs (version 7: they also name their day)."""
    ids = {create_entry_id() for _ in range(1000)}
    assert len(ids) == 1000 and {uuid.UUID(i).version for i in ids} == {7}


def test_entries_take_the_original_constructor_and_dicts():
    """AuditEntry(**original fields), ISO string timestamps (naive = UTC), from_dict."""
    theirs = OriginalEntry(id="a1", timestamp="2026-01-29T10:15:30.123456", input_hash="i",
                           output_hash="o", provider="openai", model="gpt-4",
                           detectors_triggered=["pii"], metadata={"k": 1})  # fmt: skip
    ours = AuditEntry(**theirs.to_dict())
    assert ours.timestamp == datetime(2026, 1, 29, 10, 15, 30, 123456, tzinfo=UTC)
    assert AuditEntry.from_dict(theirs.to_dict()) == ours
    back = ours.to_dict()
    assert {k: back[k] for k in theirs.to_dict() if k != "timestamp"} == {
        k: v for k, v in theirs.to_dict().items() if k != "timestamp"
    }
    assert datetime.fromisoformat(back["timestamp"]) == ours.timestamp
    assert back.keys() == theirs.to_dict().keys()  # exactly the original's seventeen keys
    assert OriginalEntry.from_dict(back).to_dict() == back  # their from_dict takes ours
    assert AuditEntry.from_dict(back) == ours == theirs and theirs == ours
    assert ours != OriginalEntry(**dict(theirs.to_dict(), model="other"))
    assert ours != "a1" and ours != {"id": "a1"}
    with pytest.raises(InvalidEntryError, match="timestamp"):
        AuditEntry(id="x", timestamp="not a time", input_hash="i", output_hash="o")


def test_entries_the_original_wrote_read_the_same(tmp_path):
    """The original tool logs to its own files; we read every entry as it reads them."""
    import asyncio

    from rotalabs_comply.audit.logger import AuditLogger as OriginalLogger
    from rotalabs_comply.audit.storage import FileStorage as OriginalFileStorage

    storage = OriginalFileStorage(str(tmp_path))
    key = original.generate_key()
    theirs = OriginalLogger(storage, original.EncryptionManager(key), store_content=True)

    async def write() -> list[str]:
        return [
            await theirs.log(input=f"q{i}", output="a", provider="openai", model="gpt-4",
                             safety_passed=i % 2 == 0, detectors_triggered=["pii"] * (i % 2),
                             latency_ms=10.5 * i, metadata={"i": i})
            for i in range(5)
        ]  # fmt: skip

    ids = asyncio.run(write())
    ours = AuditLogger(str(tmp_path), comply_lab.EncryptionManager(key))
    for entry_id in ids:
        read_by_them = asyncio.run(storage.read(entry_id)).to_dict()
        read_by_us = ours.get_entry_sync(entry_id)
        assert read_by_us is not None
        mine = read_by_us.to_dict()
        assert {k: mine[k] for k in read_by_them if k != "timestamp"} == {
            k: v for k, v in read_by_them.items() if k != "timestamp"
        }
        naive = datetime.fromisoformat(read_by_them["timestamp"])
        assert read_by_us.timestamp == naive.replace(tzinfo=UTC)
        assert read_by_us == asyncio.run(storage.read(entry_id))
        assert ours.decrypt_content(read_by_us.input_content).startswith("q")
    ours.close()
