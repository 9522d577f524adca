"""Envelope encryption with AWS KMS data keys, against the local moto server over HTTP."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest

from comply_lab import AuditLogger, EnvelopeKeys, KeyRing, open_log, rotate_keys
from comply_lab.audit import FileStorage, MissingKeyError, Storage
from comply_lab.errors import InvalidKeyError, InvalidQueryError
from comply_lab.storage.manifest import KEYS, parse_records
from tests.conftest import FakeClock, new_bucket


class CountingKms:
    """A real boto3 KMS client that counts the calls made through it."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self.client, name)


@pytest.fixture
def kms(s3_endpoint: str) -> tuple[Any, str]:
    """Return a KMS client on the local server and the alias of a fresh key."""
    client = boto3.client("kms", endpoint_url=s3_endpoint)
    key = client.create_key(Description="audit log")["KeyMetadata"]["KeyId"]
    alias = f"alias/audit-{uuid.uuid4().hex[:8]}"
    client.create_alias(AliasName=alias, TargetKeyId=key)
    return client, alias


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Open the same Parquet store again each call: a local directory or an S3 prefix."""
    if request.param == "local":
        return lambda: FileStorage(tmp_path / "log", format="parquet", fsync="never")
    from comply_lab.storage.s3 import S3Storage

    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = new_bucket(endpoint)
    return lambda: S3Storage(
        bucket, "audit/", endpoint_url=endpoint, spool_dir=tmp_path / "spool", fsync="never"
    )


def _trail(storage: Storage) -> list[dict[str, Any]]:
    return [r for _, r in parse_records(storage.read_metadata(KEYS)) if r]


def _log_days(storage: Storage, keys: EnvelopeKeys, clock: FakeClock, days: int) -> list[str]:
    ids = []
    with AuditLogger(storage, keys, store_content=True, clock=clock) as logger:
        for day in range(days):
            if day:
                clock.advance(days=1)
            ids += [logger.log_sync(input=f"prompt {day}/{i}", output="answer") for i in range(4)]
    return ids


def _all_bytes(storage: Storage) -> bytes:
    chunks = [storage.read_metadata(name) for name in (KEYS, "_manifest.jsonl")]
    for day in storage.days():
        chunks += [storage.read_segment(s) for s in storage.segments(day)]
    return b"".join(chunks)


class TestEnvelopeKeys:
    def test_one_wrapped_data_key_per_day_read_back_with_one_kms_call_each(
        self, store: Any, kms: tuple[Any, str], clock: FakeClock
    ):
        """Each day's content uses its own KMS data key; only the wrapped key is stored."""
        client, alias = kms
        ids = _log_days(store(), EnvelopeKeys(alias, client=client), clock, days=3)
        trail = _trail(store())
        assert len({r["day"] for r in trail}) == 3
        assert all(r["key_id"].startswith(f"dk-{r['day'].replace('-', '')}-") for r in trail)
        assert all(
            r["kms_key"] == alias and r["kms_key_arn"].startswith("arn:aws:kms:") for r in trail
        )
        counting = CountingKms(client)
        log = open_log(store(), progress=False)
        plain = log.decrypt(ids, EnvelopeKeys(alias, client=counting), reason="case 1")
        assert plain["decrypted"].all(), plain["note"].tolist()
        assert plain.set_index("id").loc[ids[5], "input"] == "prompt 1/1"
        assert counting.calls.count("decrypt") == 3
        assert log.access_events()["key_id"].iloc[-1] == f"kms:{alias}"
        # The plaintext data keys are nowhere in what was stored.
        written = _all_bytes(store())
        for record in trail:
            blob = base64.b64decode(record["wrapped"])
            key = client.decrypt(
                CiphertextBlob=blob, EncryptionContext={"comply-lab-key": record["key_id"]}
            )["Plaintext"]
            assert key not in written and base64.b64encode(key) not in written
            assert base64.urlsafe_b64encode(key) not in written

    def test_writers_on_the_same_day_share_its_data_key(
        self, tmp_path: Path, kms: tuple[Any, str], clock: FakeClock
    ):
        """A second logger (a new process) reuses the day's recorded key: no new KMS key."""
        client, alias = kms
        for _ in range(2):
            _log_days(
                FileStorage(tmp_path, fsync="never"),
                EnvelopeKeys(alias, client=client),
                clock,
                days=1,
            )
        assert len(_trail(FileStorage(tmp_path))) == 1

    def test_refused_or_altered_keys_mark_rows_without_failing_the_call(
        self, tmp_path: Path, kms: tuple[Any, str], clock: FakeClock
    ):
        """KMS refusing to unwrap, or a trail record moved to another id, marks the rows."""
        client, alias = kms
        endpoint = client.meta.endpoint_url
        ids = _log_days(
            FileStorage(tmp_path, fsync="never"), EnvelopeKeys(alias, client=client), clock, days=1
        )
        log = open_log(tmp_path, progress=False)
        elsewhere = boto3.client("kms", endpoint_url=endpoint, region_name="eu-west-1")
        result = log.decrypt(ids, EnvelopeKeys(alias, client=elsewhere), reason="wrong region")
        assert not result["decrypted"].any()
        assert "did not unwrap data key" in result["note"][0]
        assert "AccessDeniedException" in result["note"][0]
        # Copy the wrapped key under another key id: KMS's encryption context refuses it.
        path = tmp_path / KEYS
        record = orjson.loads(path.read_bytes().splitlines()[0])
        day_key = record["key_id"]
        forged = path.read_bytes().replace(day_key.encode(), b"dk-19990101-00000000")
        path.write_bytes(forged)
        result = log.decrypt(ids, EnvelopeKeys(alias, client=client), reason="forged trail")
        assert not result["decrypted"].any()
        assert f"{day_key!r}, which the log's _keys trail does not hold" in result["note"][0]
        problems = log.verify().to_frame()
        assert "_keys.jsonl line 1" in set(problems.query("status == 'modified'")["segment"])

    def test_rotation_from_a_ring_to_kms_and_verification(
        self, store: Any, kms: tuple[Any, str], clock: FakeClock
    ):
        """Content written with a KeyRing moves under KMS data keys; the ring is then unneeded."""
        client, alias = kms
        ring = KeyRing.generate("old")
        with AuditLogger(store(), ring, store_content=True, clock=clock) as logger:
            ids = [logger.log_sync(input=f"p{i}", output="o") for i in range(6)]
        with pytest.raises(MissingKeyError, match=r"'old'.*not hold"):
            rotate_keys(store(), EnvelopeKeys(alias, client=client))  # the old key is needed
        migrate = EnvelopeKeys(alias, client=client, previous=ring)
        report = rotate_keys(store(), migrate)
        assert report.values == 12
        log = open_log(store(), progress=False)
        plain = log.decrypt(ids, EnvelopeKeys(alias, client=client), reason="after rotation")
        assert plain["decrypted"].all(), plain["note"].tolist()
        assert log.verify(allow_unsigned=True).ok
        assert rotate_keys(store(), migrate).values == 0

    def test_needs_a_log_and_a_key(self, kms: tuple[Any, str], tmp_path: Path):
        """Used outside a log, or with a missing key id, the errors say what to do."""
        client, alias = kms
        keys = EnvelopeKeys(alias, client=client)
        with pytest.raises(InvalidQueryError, match="through a logger"):
            keys.encrypt("x", entry_id="e", field="input_content")
        with pytest.raises(InvalidKeyError, match="KMS key"):
            EnvelopeKeys("")
        unknown = EnvelopeKeys("alias/does-not-exist", client=client)
        with (
            pytest.raises(InvalidKeyError, match=r"GenerateDataKey.*NotFoundException"),
            AuditLogger(FileStorage(tmp_path), unknown, store_content=True) as logger,
        ):
            logger.log_sync(input="x", output="y")
