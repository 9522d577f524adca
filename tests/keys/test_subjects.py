"""Erasure by destroying a data subject's key: content unreadable, evidence intact."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest

from comply_lab import (
    AuditLogger,
    ComplyLabError,
    InvalidEntryError,
    InvalidQueryError,
    KeyRing,
    SubjectKeys,
    open_log,
    rotate_keys,
    shred_subject,
)
from comply_lab.audit import FileStorage, ShreddedKeyError, Storage
from comply_lab.storage.manifest import SHREDDED, parse_records
from tests.conftest import FakeClock, settle, storage_factory

BACKENDS = ["jsonl", "parquet", "s3-parquet"]


@pytest.fixture(params=BACKENDS)
def storage(request: pytest.FixtureRequest) -> Storage:
    """Return a fresh store of each backend."""
    endpoint = request.getfixturevalue("s3_endpoint") if request.param.startswith("s3") else None
    return storage_factory(request.param, endpoint)()


def _log_people(logger: AuditLogger) -> dict[str, list[str]]:
    ids: dict[str, list[str]] = {"alice": [], "bob": [], "": []}
    for i in range(3):
        for user in ids:
            metadata = {"user_id": user} if user else {"team": "research"}
            entry_id = logger.log_sync(input=f"{user} asks {i}", output="ok", metadata=metadata)
            ids[user].append(entry_id)
    return ids


def _stored_key(keys: SubjectKeys, ring: KeyRing, subject: str) -> bytes:
    """Unwrap a subject's key from its file, as an attacker holding the ring could."""
    key_id = keys.live_key_id(subject)
    assert key_id is not None
    record = next(
        orjson.loads(p.read_bytes())
        for p in keys.directory.glob("*.key")
        if orjson.loads(p.read_bytes())["key_id"] == key_id
    )
    return base64.b64decode(ring.decrypt(record["wrapped"], entry_id=key_id, field="subject_key"))


class TestShredding:
    def test_shredded_subject_is_unreadable_and_verification_passes(
        self, storage: Storage, tmp_path: Path, clock: FakeClock
    ):
        """After shredding, the subject's rows are marked; others decrypt; the log verifies."""
        ring = KeyRing.generate("wrap")
        keys = SubjectKeys(tmp_path / "subject-keys", ring)
        logger = AuditLogger(storage, keys, store_content=True, clock=clock)
        ids = _log_people(logger)
        settle(storage)
        log = open_log(storage, progress=False)
        alice_key = _stored_key(keys, ring, "alice")
        hashes = log.entries(columns=["id", "entry_hash"])

        key_id = shred_subject(log, "alice", keys, reason="erasure request 42", who="dpo")
        assert key_id is not None and key_id.startswith("s-")
        assert shred_subject(log, "alice", keys, reason="again") is None  # nothing left

        every = [i for group in ids.values() for i in group]
        plain = log.decrypt(every, keys, reason="case 7").set_index("id")
        assert not plain.loc[ids["alice"], "decrypted"].any()
        assert plain.loc[ids["alice"][0], "note"].startswith("shredded:")
        assert plain.loc[ids["bob"] + ids[""], "decrypted"].all()
        assert plain.loc[ids["bob"][2], "input"] == "bob asks 2"

        for deep in (False, True):
            report = log.verify(deep=deep, allow_unsigned=True)
            assert report.ok, str(report)
            shredded = report.to_frame().query("status == 'shredded'")
            assert sorted(shredded["entry_id"]) == sorted(ids["alice"])
            assert set(shredded["severity"]) == {"info"}
            assert "erasure request 42" in shredded["explanation"].iloc[0]
        assert log.entries(columns=["id", "entry_hash"]).equals(hashes)

        trail = storage.read_metadata(SHREDDED)
        assert b"alice" not in trail
        record = next(r for _, r in parse_records(trail) if r)
        assert (record["who"], record["key_id"]) == ("dpo", key_id)
        assert alice_key not in b"".join(p.read_bytes() for p in keys.directory.iterdir())

        # The subject comes back: a new key, and their new entries read and verify normally.
        again = logger.log_sync(input="alice is back", output="hi", metadata={"user_id": "alice"})
        logger.close()
        assert keys.live_key_id("alice") not in (None, key_id)
        assert open_log(storage).decrypt([again], keys, reason="t")["decrypted"].all()
        report = open_log(storage).verify()
        assert again not in set(report.to_frame()["entry_id"])

    def test_interrupted_shred_is_finished_by_running_it_again(
        self, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
    ):
        """The record is written before the key goes; a second run destroys the key."""
        keys = SubjectKeys(tmp_path / "keys", KeyRing.generate())
        storage = FileStorage(tmp_path / "log", fsync="never")
        with AuditLogger(storage, keys, store_content=True, clock=clock) as logger:
            ids = _log_people(logger)

        def crash(*args: object) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(SubjectKeys, "destroy", crash)
        with pytest.raises(KeyboardInterrupt):
            shred_subject(open_log(storage), "bob", keys, reason="r")
        monkeypatch.undo()
        assert open_log(storage).decrypt(ids["bob"], keys, reason="t")["decrypted"].all()
        assert shred_subject(open_log(storage), "bob", keys, reason="r") is not None
        assert not open_log(storage).decrypt(ids["bob"], keys, reason="t")["decrypted"].any()
        assert open_log(storage).verify(allow_unsigned=True).ok

    def test_a_running_logger_notices_the_shred(self, tmp_path: Path, clock: FakeClock):
        """A logger that cached the subject's key makes a new one after another process shreds."""
        ring = KeyRing.generate()
        keys = SubjectKeys(tmp_path / "keys", ring)
        storage = FileStorage(tmp_path / "log", fsync="never")
        with AuditLogger(storage, keys, store_content=True, clock=clock) as logger:
            before = logger.log_sync(input="a", output="b", metadata={"user_id": 7})
            elsewhere = SubjectKeys(tmp_path / "keys", ring)  # the erasure job's own keys
            shred_subject(open_log(storage), 7, elsewhere, reason="r")
            after = logger.log_sync(input="c", output="d", metadata={"user_id": 7})
        result = open_log(storage).decrypt([before, after], keys, reason="t")
        assert result["decrypted"].tolist() == [False, True]
        entry = open_log(storage).entry(before)
        assert entry is not None
        with pytest.raises(ShreddedKeyError, match="shredded"):
            keys.decrypt(str(entry.input_content), entry_id=before, field="input_content")

    def test_rotation_moves_history_under_subject_keys(self, tmp_path: Path, clock: FakeClock):
        """Content written before subject keys existed becomes shreddable after rotation."""
        ring = KeyRing.generate("k1")
        storage = FileStorage(tmp_path / "log", format="parquet", fsync="never")
        with AuditLogger(storage, ring, store_content=True, clock=clock) as logger:
            ids = _log_people(logger)
        keys = SubjectKeys(tmp_path / "keys", ring)
        report = rotate_keys(storage, keys)
        assert report.values == 12  # alice's and bob's inputs and outputs
        assert rotate_keys(storage, keys).values == 0
        shred_subject(storage, "alice", keys, reason="r")
        log = open_log(storage, progress=False)
        result = log.decrypt(ids["alice"] + ids["bob"], keys, reason="t")
        assert result["decrypted"].tolist() == [False] * 3 + [True] * 3
        report = log.verify(allow_unsigned=True)
        assert report.ok and (report.to_frame()["status"] == "shredded").sum() == 3

    def test_concurrent_first_use_agrees_on_one_key(self, tmp_path: Path):
        """Two writers making a subject's first key end up using the same one."""
        ring = KeyRing.generate()
        first = SubjectKeys(tmp_path, ring).write_key(None, "carol")[0]
        second = SubjectKeys(tmp_path, ring).write_key(None, "carol")[0]
        assert first == second
        assert len(list(tmp_path.glob("*.key"))) == 1

    def test_bad_input_is_refused(self, tmp_path: Path):
        """A non-scalar subject, a missing reason or subject: typed errors, nothing stored."""
        keys = SubjectKeys(tmp_path / "keys", KeyRing.generate())
        storage = FileStorage(tmp_path / "log", fsync="never")
        with (
            AuditLogger(storage, keys, store_content=True) as logger,
            pytest.raises(InvalidEntryError, match=r"metadata\.user_id"),
        ):
            logger.log_sync(input="x", output="y", metadata={"user_id": ["a", "b"]})
        with pytest.raises(InvalidQueryError, match="needs a reason"):
            shred_subject(storage, "alice", keys, reason=" ")
        with pytest.raises(InvalidQueryError, match="non-empty"):
            shred_subject(storage, "", keys, reason="r")
        assert shred_subject(storage, "nobody", keys, reason="r") is None
        assert storage.read_metadata(SHREDDED) == b""
        assert storage.count_sync() == 0


def test_keys_and_subject_keys_never_leak(tmp_path: Path, clock: FakeClock) -> None:
    """Neither the ring nor any subject key appears in the log's bytes or in errors."""
    ring = KeyRing.generate("w")
    keys = SubjectKeys(tmp_path / "keys", ring)
    storage = FileStorage(tmp_path / "log", format="parquet", fsync="never")
    with AuditLogger(storage, keys, store_content=True, clock=clock) as logger:
        _log_people(logger)
    secrets: list[bytes] = [_stored_key(keys, ring, s) for s in ("alice", "bob")]
    secrets.append(base64.urlsafe_b64decode(ring.to_text().split(":", 1)[1]))
    messages: list[str] = []
    for call in (
        lambda: keys.decrypt(
            "cl1:s-0000000000000000-x:AAAAAAAAAAAAAAAAAAAA", entry_id="e", field="input_content"
        ),
        lambda: SubjectKeys(tmp_path / "keys", KeyRing.generate("w")).write_key(None, "alice"),
    ):
        with pytest.raises(ComplyLabError) as caught:
            call()
        messages.append(str(caught.value))
    written = b"".join(p.read_bytes() for p in (tmp_path / "log").rglob("*") if p.is_file())
    for secret in secrets:
        for form in (secret, base64.b64encode(secret), base64.urlsafe_b64encode(secret)):
            assert form not in written
            assert all(form not in m.encode() for m in messages)
    assert all(form not in repr(keys).encode() for form in secrets)
