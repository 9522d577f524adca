"""S3Storage against a real S3-compatible server over HTTP: the conformance suite and more."""

from __future__ import annotations

from tests.storage_contract import StorageContract


class TestS3ParquetContract(StorageContract):
    backend = "s3-parquet"


class TestS3JsonlContract(StorageContract):
    backend = "s3-jsonl"


import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

import boto3  # noqa: E402
import pytest  # noqa: E402

from comply_lab import AuditLogger, ComplyLabWarning, StorageError, open_log  # noqa: E402
from comply_lab._time import utc_now  # noqa: E402
from comply_lab.crypto.signing import generate_signing_key, public_key_pem  # noqa: E402
from comply_lab.errors import ConfigurationError  # noqa: E402
from comply_lab.retention.policy import apply_retention, plan_retention  # noqa: E402
from comply_lab.storage.s3 import S3Storage  # noqa: E402
from tests.conftest import FakeClock, adopt_and_compact, new_bucket, original_record  # noqa: E402

T0 = datetime(2026, 1, 29, 10, 30, tzinfo=UTC)


def _storage(endpoint: str, bucket: str, spool: Path, **options: object) -> S3Storage:
    return S3Storage(
        bucket, "prod/ai-audit/", endpoint_url=endpoint, spool_dir=spool, fsync="never", **options
    )  # type: ignore[arg-type]


def _keys(endpoint: str, bucket: str) -> list[str]:
    client = boto3.client("s3", endpoint_url=endpoint)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


class TestLayoutAndReads:
    def test_batched_objects_not_one_per_entry(self, s3_endpoint: str, tmp_path: Path):
        """500 entries over two days become two Parquet objects and two manifest records."""
        bucket = new_bucket(s3_endpoint)
        clock = FakeClock(T0)
        storage = _storage(s3_endpoint, bucket, tmp_path, signing_key=generate_signing_key())
        logger = AuditLogger(storage, clock=clock)
        for i in range(500):
            clock.now = T0 + timedelta(minutes=2 * i)  # 16.6 hours: two days
            logger.log_sync(input=str(i), output="")
        logger.close()
        keys = _keys(s3_endpoint, bucket)
        spool_id = storage.spool_id
        assert keys == [
            "prod/ai-audit/_heartbeat/000000000001.json",  # the writer started
            "prod/ai-audit/_heartbeat/000000000002.json",  # and closed
            "prod/ai-audit/_manifest/000000000001.json",
            "prod/ai-audit/_manifest/000000000002.json",
            "prod/ai-audit/_signers/000000000001.json",  # the log's genesis
            "prod/ai-audit/_writers/000000000001.json",  # the writer's registration
            f"prod/ai-audit/date=2026-01-29/part-20260129-000-{spool_id}.parquet",
            f"prod/ai-audit/date=2026-01-30/part-20260130-000-{spool_id}.parquet",
        ]
        assert not list(tmp_path.glob("audit_*.jsonl"))  # the spool is empty

    def test_open_log_by_url_and_verify(self, s3_endpoint: str, tmp_path: Path):
        """open_log('s3://bucket/prefix') reads, queries and verifies the uploaded log."""
        bucket = new_bucket(s3_endpoint)
        key = generate_signing_key()
        logger = AuditLogger(_storage(s3_endpoint, bucket, tmp_path, signing_key=key))
        ids = [logger.log_sync(input=str(i), output="", model="m") for i in range(20)]
        logger.close()
        log = open_log(f"s3://{bucket}/prod/ai-audit/", progress=False)
        assert sorted(log.entries(columns=["id"])["id"]) == sorted(ids)
        assert log.sql("select count(*) as n from entries")["n"][0] == 20
        report = log.verify(public_key=public_key_pem(key))
        assert report.ok, str(report)
        assert report.manifest_records == 1

    def test_unflushed_entries_are_readable_by_their_writer(self, s3_endpoint: str, tmp_path: Path):
        """Entries still in the spool are read too, and never twice once uploaded."""
        bucket = new_bucket(s3_endpoint)
        storage = _storage(s3_endpoint, bucket, tmp_path)
        logger = AuditLogger(storage)
        first = logger.log_sync(input="a", output="")
        assert logger.get_entry_sync(first) is not None
        storage.flush()
        second = logger.log_sync(input="b", output="")
        found = [e.id for e in logger.get_entries_sync(T0 - timedelta(days=3650), utc_now())]
        assert sorted(found) == sorted([first, second])
        logger.close()

    def test_original_tool_objects_are_readable(self, s3_endpoint: str, tmp_path: Path):
        """Per-entry JSON objects of the original tool (prefix/YYYY-MM-DD/<id>.json) read fine."""
        bucket = new_bucket(s3_endpoint)
        client = boto3.client("s3", endpoint_url=s3_endpoint)
        records = [original_record(T0 + timedelta(minutes=i), f"q{i}") for i in range(5)]
        for record in records:
            client.put_object(
                Bucket=bucket,
                Key=f"prod/ai-audit/2026-01-29/{record['id']}.json",
                Body=json.dumps(record).encode(),
            )
        log = open_log(_storage(s3_endpoint, bucket, tmp_path), progress=False)
        assert sorted(log.entries()["id"]) == sorted(r["id"] for r in records)
        assert AuditLogger(log.storage).get_entry_sync(records[2]["id"]) is not None  # type: ignore[arg-type]


class TestRetentionAndErrors:
    def test_cleanup_deletes_whole_partitions_with_a_record(self, s3_endpoint: str, tmp_path: Path):
        """Expired days go as whole prefixes; verification reports them as expired by policy."""
        bucket = new_bucket(s3_endpoint)
        clock = FakeClock(T0)
        storage = _storage(s3_endpoint, bucket, tmp_path)
        logger = AuditLogger(storage, retention_days=1, clock=clock)
        for day in range(3):
            clock.now = T0 + timedelta(days=day)
            for _ in range(4):
                logger.log_sync(input="q", output="a")
        storage.flush()
        assert logger.cleanup_expired_sync() == 4
        assert not [k for k in _keys(s3_endpoint, bucket) if "date=2026-01-29" in k]
        report = open_log(storage).verify(allow_unsigned=True)
        assert report.ok, str(report)
        assert {p.status for p in report.problems} == {"expired_by_policy"}

    def test_lifecycle_rule(self, s3_endpoint: str, tmp_path: Path):
        """The lifecycle helper targets exactly the log's prefix."""
        rule = _storage(s3_endpoint, "any-bucket", tmp_path).lifecycle_rule(365)["Rules"][0]
        assert rule["Filter"] == {"Prefix": "prod/ai-audit/"}
        assert rule["Expiration"] == {"Days": 365}

    def test_missing_bucket_names_it(self, s3_endpoint: str, tmp_path: Path):
        """Errors name the bucket and key and say what to do."""
        storage = _storage(s3_endpoint, "no-such-bucket-here", tmp_path)
        with pytest.raises(StorageError, match=r"no-such-bucket-here.*does not exist"):
            storage.days()


_CHILD = """
import sys
from comply_lab import AuditLogger
from comply_lab.storage.s3 import S3Storage
endpoint, bucket, spool, count = sys.argv[1:]
storage = S3Storage(bucket, "prod/ai-audit/", endpoint_url=endpoint, spool_dir=spool,
                    rotation_size_mb=0.03, flush_max_entries=10**9, flush_interval_s=3600,
                    fsync="always")
logger = AuditLogger(storage)
for i in range(int(count)):
    print(logger.log_sync(input=f"entry {i}", output="x" * 50), flush=True)
print("flushing", flush=True)
storage.flush()
print("done", flush=True)
"""


@pytest.mark.slow
@pytest.mark.slow
class TestSpoolCrash:
    def test_killed_mid_upload_then_restarted_lands_everything_once(
        self, s3_endpoint: str, tmp_path: Path
    ):
        """SIGKILL at random moments of the upload; a restart uploads the rest exactly once."""
        rng = random.Random(99)
        outcomes = set()
        for trial in range(8):
            bucket = new_bucket(s3_endpoint)
            spool = Path(tempfile.mkdtemp(prefix="spool-", dir=tmp_path))
            child = subprocess.Popen(
                [sys.executable, "-c", _CHILD, s3_endpoint, bucket, str(spool), "400"],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert child.stdout is not None
            acknowledged = []
            for line in child.stdout:
                if line.strip() == "flushing":
                    break
                acknowledged.append(line.strip())
            started = time.monotonic()
            time.sleep(rng.uniform(0, 1.5))
            child.send_signal(signal.SIGKILL)
            child.wait()
            child.stdout.close()
            outcomes.add(len([k for k in _keys(s3_endpoint, bucket) if ".parquet" in k]))
            restarted = _storage(s3_endpoint, bucket, spool)  # uploads what the spool holds
            restarted.flush()
            assert not list(spool.glob("audit_*.jsonl")), f"trial {trial}"
            ids = list(open_log(restarted, progress=False).entries(columns=["id"])["id"])
            assert sorted(ids) == sorted(acknowledged), (
                f"trial {trial} ({time.monotonic() - started:.2f}s)"
            )
            assert open_log(restarted).verify(allow_unsigned=True).ok
        assert len(outcomes) >= 2  # the kills hit different stages of the upload


class TestMemorySpoolAndMigration:
    def test_in_memory_spool(self, s3_endpoint: str):
        """spool_dir=':memory:' uploads on flush like the disk spool, without touching disk."""
        bucket = new_bucket(s3_endpoint)
        storage = S3Storage(bucket, "mem/", endpoint_url=s3_endpoint, spool_dir=":memory:")
        logger = AuditLogger(storage)
        ids = [logger.log_sync(input=str(i), output="") for i in range(30)]
        assert logger.get_entry_sync(ids[3]) is not None  # readable before the upload
        logger.close()
        assert not storage.spool_dir.exists()
        keys = _keys(s3_endpoint, bucket)
        assert any(k.endswith(".parquet") for k in keys)
        assert sorted(open_log(storage).entries(columns=["id"])["id"]) == sorted(ids)
        assert open_log(storage).verify(allow_unsigned=True).ok

    def test_compact_migrates_original_objects(self, s3_endpoint: str, tmp_path: Path):
        """`comply-lab compact s3://...` turns per-entry objects into verified Parquet."""
        bucket = new_bucket(s3_endpoint)
        client = boto3.client("s3", endpoint_url=s3_endpoint)
        records = [original_record(T0 + timedelta(hours=i), f"q{i}") for i in range(30)]
        for record in records:
            day = str(record["timestamp"])[:10]
            client.put_object(
                Bucket=bucket,
                Key=f"prod/ai-audit/{day}/{record['id']}.json",
                Body=json.dumps(record).encode(),
            )
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "comply_lab.cli",
                "compact",
                f"s3://{bucket}/prod/ai-audit/",
                "--json",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(done.stdout)["entries"] == 30
        keys = _keys(s3_endpoint, bucket)
        trails = [k for k in keys if k.endswith(".json") and k.split("/")[-2].startswith("_")]
        assert sorted(set(keys) - set(trails)) == [k for k in keys if not k.endswith(".json")]
        log = open_log(f"s3://{bucket}/prod/ai-audit/", progress=False)
        assert sorted(log.entries()["id"]) == sorted(r["id"] for r in records)
        assert log.verify(allow_unsigned=True).ok

    def test_original_objects_migrate_into_jsonl_objects_that_verify(
        self, s3_endpoint: str, tmp_path: Path
    ):
        """Migrated into JSONL objects, the original's records (no chain) verify as sealed."""
        bucket = new_bucket(s3_endpoint)
        client = boto3.client("s3", endpoint_url=s3_endpoint)
        records = [original_record(T0 + timedelta(hours=i), f"q{i}") for i in range(6)]
        for record in records:
            key = f"prod/ai-audit/{str(record['timestamp'])[:10]}/{record['id']}.json"
            client.put_object(Bucket=bucket, Key=key, Body=json.dumps(record).encode())
        key = generate_signing_key()
        adopt_and_compact(
            _storage(s3_endpoint, bucket, tmp_path, format="jsonl", signing_key=key), key
        )
        log = open_log(f"s3://{bucket}/prod/ai-audit/", progress=False)
        report = log.verify(public_key=key)
        assert report.ok and not report.problems, str(report)
        assert sorted(log.entries()["id"]) == sorted(r["id"] for r in records)


class TestObjectLock:
    def test_locked_objects_are_retained_and_reported(self, s3_endpoint: str, tmp_path: Path):
        """Under Object Lock, a locked day is kept; locked after planning, it is refused.

        A refused deletion is warned about and reported, and nothing locked counts as deleted.
        """
        from comply_lab.errors import RetentionWarning

        client = boto3.client("s3", endpoint_url=s3_endpoint)
        bucket = f"locked-{new_bucket(s3_endpoint)[-12:]}"
        client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
        clock = FakeClock(T0)
        storage = _storage(s3_endpoint, bucket, tmp_path)
        logger = AuditLogger(storage, retention_days=1, clock=clock)
        for day in range(3):
            clock.now = T0 + timedelta(days=day)
            logger.log_sync(input="q", output="a")
        storage.flush()
        locked = next(k for k in _keys(s3_endpoint, bucket) if "date=2026-01-29" in k)
        client.put_object_retention(
            Bucket=bucket,
            Key=locked,
            Retention={
                "Mode": "COMPLIANCE",
                "RetainUntilDate": datetime.now(UTC) + timedelta(days=9),
            },
        )
        plan = plan_retention(storage, 1, clock.now)
        first = plan.partitions[0]
        assert first.action == "keep" and first.reason.startswith("locked by object lock until")
        assert logger.cleanup_expired_sync() == 0  # the plan keeps the locked day
        assert locked in _keys(s3_endpoint, bucket)
        # Locked after planning: the deletion is refused, warned about, and reported.
        clock.now = T0 + timedelta(days=3)
        plan = plan_retention(storage, 1, clock.now)
        assert [p.partition.isoformat() for p in plan.to_delete] == ["2026-01-30"]
        second = next(k for k in _keys(s3_endpoint, bucket) if "date=2026-01-30" in k)
        client.put_object_legal_hold(Bucket=bucket, Key=second, LegalHold={"Status": "ON"})
        with pytest.warns(RetentionWarning, match="could not be deleted"):
            result = apply_retention(storage, plan)
        assert result.entries == 0 and "refused" in result.kept[plan.to_delete[0].partition]
        assert second in _keys(s3_endpoint, bucket)
        assert (
            plan_retention(storage, 1, clock.now)
            .partitions[1]
            .reason.startswith("locked by object lock until 9999")
        )

    def test_rotation_size_is_capped_for_single_puts(self, tmp_path: Path):
        """A segment must fit one PUT."""
        with pytest.raises(StorageError, match="at most 5 GB"):
            S3Storage("b", rotation_size_mb=10_000, spool_dir=tmp_path)


class TestCredentialsAndSpool:
    @pytest.fixture
    def no_credentials(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Take the test server's credentials away (boto3 caches them per session)."""
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)

    def test_no_credentials_is_refused_at_once(
        self, s3_endpoint: str, tmp_path: Path, no_credentials: None
    ):
        """Without credentials a store is refused when made, not at its first upload."""
        bucket = "no-such-credentials"
        with pytest.raises(ConfigurationError, match="no AWS credentials found"):
            _storage(s3_endpoint, bucket, tmp_path / "spool")
        with pytest.raises(ConfigurationError, match="offline=True"):
            open_log(f"s3://{bucket}/prod/ai-audit/")
        assert not (tmp_path / "spool").exists()

    def test_offline_spooling_keeps_entries_until_credentials_come(
        self, s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ):
        """offline=True accepts entries; an upload that fails keeps them in the spool."""
        bucket = new_bucket(s3_endpoint)
        credentials = {k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
        for name in credentials:
            monkeypatch.delenv(name)
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
        storage = _storage(s3_endpoint, bucket, tmp_path / "spool", offline=True, heartbeat_s=0)
        entry_id = AuditLogger(storage).log_sync(input="q", output="a")
        with pytest.raises(StorageError):
            storage.flush()
        assert list((tmp_path / "spool").glob("audit_*.jsonl"))
        for name, value in credentials.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
        _storage(s3_endpoint, bucket, tmp_path / "spool").close()  # uploads what waited
        assert open_log(f"s3://{bucket}/prod/ai-audit/").entry(entry_id) is not None
        assert not list((tmp_path / "spool").glob("audit_*.jsonl"))

    def test_a_spool_waiting_for_another_bucket_is_left_alone(
        self, s3_endpoint: str, tmp_path: Path
    ):
        """Entries spooled for bucket A are never uploaded to, read by or mixed with B's."""
        spool = tmp_path / "spool"
        first, other = new_bucket(s3_endpoint), new_bucket(s3_endpoint)
        waiting = _storage(s3_endpoint, first, spool)
        entry_id = AuditLogger(waiting).log_sync(input="for A", output="a")
        waiting.spool.close()  # closed, not uploaded: as if the process had died
        recorded = json.loads((spool / "_destination.json").read_text())
        assert recorded == {"bucket": first, "endpoint": s3_endpoint, "prefix": "prod/ai-audit/"}
        with pytest.warns(ComplyLabWarning, match=f"waiting for s3://{first}/prod/ai-audit/"):
            stranger = _storage(s3_endpoint, other, spool)
        assert stranger.days() == [] and _keys(s3_endpoint, other) == []
        with pytest.raises(ConfigurationError, match="pass spool_dir="):
            AuditLogger(stranger).log_sync(input="for B", output="b")
        stranger.close()
        assert _keys(s3_endpoint, other) == [] and list(spool.glob("audit_*.jsonl"))
        _storage(s3_endpoint, first, spool).close()  # its own store uploads it
        assert open_log(f"s3://{first}/prod/ai-audit/").entry(entry_id) is not None

    def test_default_spools_are_per_destination(
        self, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
    ):
        """The same bucket and prefix on two endpoints never share a default spool."""
        monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
        here = S3Storage("audit", "p/", endpoint_url=s3_endpoint).spool_dir
        aws = S3Storage("audit", "p/", region="eu-west-1").spool_dir
        elsewhere = S3Storage("audit", "p/", region="us-east-2").spool_dir
        assert here != aws == elsewhere  # a bucket name is unique across AWS
        assert Path.home() / ".cache" / "comply-lab" / "spool" in here.parents
