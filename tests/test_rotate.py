"""Key rotation of sealed segments: re-encrypted, hashes kept, repeatable, crash-safe."""

from __future__ import annotations

from pathlib import Path

import pytest

from comply_lab import (
    AuditLogger,
    EncryptionManager,
    InvalidQueryError,
    KeyRing,
    open_log,
    rotate_keys,
)
from comply_lab.audit import FileStorage
from comply_lab.integrity.signing import generate_signing_key
from comply_lab.storage.manifest import read_records
from tests.conftest import FakeClock

SIGNER = generate_signing_key()


def _sealed(path: Path, ring: KeyRing, clock: FakeClock) -> list[str]:
    storage = FileStorage(path, format="parquet", signing_key=SIGNER, fsync="never")
    logger = AuditLogger(storage, encryption=ring, store_content=True, clock=clock)
    ids = []
    for day in range(2):
        clock.advance(days=day)
        ids += [logger.log_sync(input=f"secret {day}-{i}", output=f"answer {i}") for i in range(5)]
    logger.close()
    return ids


def _two_keys(old: KeyRing) -> KeyRing:
    return KeyRing.from_text(KeyRing.generate("k2").to_text() + "," + old.to_text())


class TestRotation:
    def test_reencrypts_keeps_hashes_and_verifies(self, tmp_path: Path, clock: FakeClock):
        """After rotation only the new key is needed; entry hashes and verification hold."""
        old = KeyRing.generate("k1")
        ids = _sealed(tmp_path, old, clock)
        log = open_log(tmp_path, progress=False)
        before = log.entries(columns=["id", "entry_hash", "input_content"])
        ring = _two_keys(old)
        report = rotate_keys(log, ring, signing_key=SIGNER)
        assert report.values == 20 and len(report.rotated) == 2
        after = log.entries(columns=["id", "entry_hash", "input_content"])
        assert list(after["entry_hash"]) == list(before["entry_hash"])
        assert all(t.startswith("cl1:k2:") for t in after["input_content"])
        only_new = KeyRing.from_text(ring.to_text().split(",")[0])
        plain = log.decrypt(ids, only_new, reason="after rotation")
        assert plain["decrypted"].all()
        assert plain.set_index("id").loc[ids[0], "input"] == "secret 0-0"
        report = log.verify(public_key=SIGNER)
        assert report.ok, str(report)
        assert report.segments == 2
        assert any(r.get("rotated_to") == "k2" for r in read_records(tmp_path))

    def test_running_twice_changes_nothing(self, tmp_path: Path, clock: FakeClock):
        """A second rotation to the same key finds nothing to do."""
        old = KeyRing.generate("k1")
        _sealed(tmp_path, old, clock)
        ring = _two_keys(old)
        rotate_keys(FileStorage(tmp_path), ring, signing_key=SIGNER)
        files = sorted(p.name for p in tmp_path.rglob("*.parquet"))
        again = rotate_keys(FileStorage(tmp_path), ring, signing_key=SIGNER)
        assert (again.rotated, again.values, again.cleaned) == ([], 0, [])
        assert sorted(p.name for p in tmp_path.rglob("*.parquet")) == files

    def test_interrupted_rotation_loses_and_duplicates_nothing(
        self, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
    ):
        """A crash before the record, or before the old file goes, is finished by a re-run."""
        old = KeyRing.generate("k1")
        ids = _sealed(tmp_path, old, clock)
        ring = _two_keys(old)
        import comply_lab.storage.rotate as rotate

        def crash(*args: object, **kwargs: object) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(rotate, "append_record", crash)  # dies after writing the new file
        with pytest.raises(KeyboardInterrupt):
            rotate_keys(FileStorage(tmp_path), ring, signing_key=SIGNER)
        monkeypatch.undo()
        log = open_log(tmp_path, progress=False)
        assert sorted(log.entries(columns=["id"])["id"]) == sorted(ids)  # the old file serves
        assert log.verify(public_key=SIGNER).ok
        report = rotate_keys(FileStorage(tmp_path), ring, signing_key=SIGNER)
        assert report.cleaned and len(report.rotated) == 2
        assert sorted(log.entries(columns=["id"])["id"]) == sorted(ids)
        assert log.verify(public_key=SIGNER).ok

    def test_fernet_content_needs_its_manager(self, tmp_path: Path, clock: FakeClock):
        """Content written with Fernet is rotated into the ring only with its manager."""
        manager = EncryptionManager()
        storage = FileStorage(tmp_path, format="parquet", fsync="never")
        logger = AuditLogger(storage, encryption=manager, store_content=True, clock=clock)
        entry_id = logger.log_sync(input="tutorial era", output="")
        logger.close()
        ring = KeyRing.generate("k9")
        with pytest.raises(InvalidQueryError, match="legacy=EncryptionManager"):
            rotate_keys(FileStorage(tmp_path), ring)
        rotate_keys(FileStorage(tmp_path), ring, legacy=manager)
        result = open_log(tmp_path).decrypt([entry_id], ring, reason="check")
        assert result["input"][0] == "tutorial era"
