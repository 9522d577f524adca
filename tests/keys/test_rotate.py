"""Key rotation of sealed segments, local and on S3.

Re-encrypted, hashes kept, repeatable, crash-safe.
"""

from __future__ import annotations

from collections.abc import Callable
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
from comply_lab.audit import FileStorage, Storage
from comply_lab.crypto.signing import generate_signing_key
from comply_lab.storage.manifest import MANIFEST, parse_records
from tests.conftest import FakeClock, new_bucket

SIGNER = generate_signing_key()
Store = Callable[[], Storage]


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """Open the same signed Parquet store again each call: a local directory or an S3 prefix."""
    if request.param == "local":
        return lambda: FileStorage(tmp_path, format="parquet", signing_key=SIGNER, fsync="never")
    from comply_lab.storage.s3 import S3Storage

    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = new_bucket(endpoint)
    return lambda: S3Storage(
        bucket,
        "audit/",
        endpoint_url=endpoint,
        spool_dir=tmp_path / "spool",
        signing_key=SIGNER,
        fsync="never",
    )


def _names(storage: Storage) -> list[str]:
    return sorted(s.name for day in storage.days() for s in storage.segments(day))


def _records(storage: Storage) -> list[dict[str, object]]:
    return [r for _, r in parse_records(storage.read_metadata(MANIFEST)) if r]


def _sealed(storage: Storage, ring: KeyRing, clock: FakeClock) -> list[str]:
    logger = AuditLogger(storage, encryption=ring, store_content=True, clock=clock)
    ids = []
    for day in range(2):
        clock.advance(days=day)
        ids += [logger.log_sync(input=f"secret {day}-{i}", output=f"answer {i}") for i in range(5)]
    logger.close()
    return ids


def _rotated(storage: Storage) -> list[str]:
    return [str(r["segment"]) for r in _records(storage) if r.get("rotated_from")]


def _two_keys(old: KeyRing) -> KeyRing:
    return KeyRing.from_text(KeyRing.generate("k2").to_text() + "," + old.to_text())


class TestRotation:
    def test_reencrypts_keeps_hashes_and_verifies(self, store: Store, clock: FakeClock):
        """After rotation only the new key is needed; entry hashes and verification hold."""
        old = KeyRing.generate("k1")
        ids = _sealed(store(), old, clock)
        log = open_log(store(), progress=False)
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
        assert any(r.get("rotated_to") == ["k2"] for r in _records(log.storage))

    def test_running_twice_changes_nothing(self, store: Store, clock: FakeClock):
        """A second rotation to the same key finds nothing to do."""
        old = KeyRing.generate("k1")
        _sealed(store(), old, clock)
        ring = _two_keys(old)
        names = _names(store())
        rotate_keys(store(), ring)
        assert _names(store()) == names  # a new generation keeps its segment's name
        assert sorted(_rotated(store())) == names
        again = rotate_keys(store(), ring)
        assert (again.rotated, again.values, again.cleaned, again.finished) == ([], 0, [], [])
        assert _names(store()) == names

    @pytest.mark.parametrize("step", ["record", "commit"])
    def test_interrupted_rotation_loses_and_duplicates_nothing(
        self, store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, step: str
    ):
        """A crash before the record, or before the new generation lands, is finished later.

        Meanwhile readers see every entry exactly once and verification passes (an
        interrupted commit is reported as incomplete, a warning).
        """
        old = KeyRing.generate("k1")
        ids = _sealed(store(), old, clock)
        ring = _two_keys(old)

        def crash(*args: object, **kwargs: object) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(type(store().sink()), step, crash)  # type: ignore[attr-defined]
        with pytest.raises(KeyboardInterrupt):
            rotate_keys(store(), ring)
        monkeypatch.undo()
        log = open_log(store(), progress=False)
        assert sorted(log.entries(columns=["id"])["id"]) == sorted(ids)
        report = log.verify(public_key=SIGNER)
        assert report.ok, str(report)
        warned = {p.status for p in report.problems} - {"expired_by_policy"}
        assert warned == (set() if step == "record" else {"incomplete"})
        again = rotate_keys(store(), ring)
        if step == "record":
            assert (len(again.cleaned), len(again.rotated)) == (1, 2)
        else:
            assert (len(again.finished), len(again.rotated)) == (1, 1)
        log = open_log(store(), progress=False)
        assert sorted(log.entries(columns=["id"])["id"]) == sorted(ids)
        assert sorted(_rotated(log.storage)) == _names(log.storage)
        report = log.verify(public_key=SIGNER)
        assert report.ok and not report.problems, str(report)
        plain = log.decrypt(ids, KeyRing.from_text(ring.to_text().split(",")[0]), reason="t")
        assert plain["decrypted"].all()

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
