"""Checkpoints published to write-once S3 storage (Object Lock, compliance mode), on moto."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from comply_lab import AuditLogger, open_log
from comply_lab.audit import FileStorage
from comply_lab.crypto.signing import generate_signing_key, private_key_pem
from comply_lab.errors import ConfigurationError, StorageError
from comply_lab.integrity.checkpoint import Checkpoint
from comply_lab.integrity.publish import publish
from comply_lab.sample import write_sample
from tests.conftest import new_bucket
from tests.integrity.test_witness import cli

KEY = generate_signing_key()


@pytest.fixture
def locked_bucket(s3_endpoint: str) -> str:
    """Create a bucket with Object Lock enabled; return its name."""
    name = f"lock-{new_bucket(s3_endpoint)[-12:]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(
        Bucket=name, ObjectLockEnabledForBucket=True
    )
    return name


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """Write a small signed Parquet log and its key file."""
    (tmp_path / "writer.pem").write_bytes(private_key_pem(KEY))
    storage = FileStorage(tmp_path / "log", format="parquet", signing_key=KEY)
    write_sample(lambda c: AuditLogger(storage, clock=c), 30, 2).close()
    return tmp_path / "log"


def test_a_published_checkpoint_is_locked_in_compliance_mode(
    log: Path, tmp_path: Path, locked_bucket: str, s3_endpoint: str
):
    """Publish with the checkpoint command: the object holds the note, locked; no deletion."""
    code, out = cli("checkpoint", log, "--signing-key", tmp_path / "writer.pem", "-o",
                    tmp_path / "cp.txt", "--publish", f"s3://{locked_bucket}/audit/",
                    "--retain-days", "30")  # fmt: skip
    assert code == 0, out
    url = out.split("published ")[1].split(" ")[0]
    key = url.removeprefix(f"s3://{locked_bucket}/")
    assert key.startswith("audit/checkpoints/comply-lab_")
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    body = client.get_object(Bucket=locked_bucket, Key=key)["Body"].read().decode()
    assert Checkpoint.load(body) == Checkpoint.load(tmp_path / "cp.txt")
    head = client.head_object(Bucket=locked_bucket, Key=key)  # moto's GetObjectRetention fails
    assert head["ObjectLockMode"] == "COMPLIANCE"
    left = head["ObjectLockRetainUntilDate"] - datetime.now(UTC)
    assert timedelta(days=29) < left <= timedelta(days=30)
    version = head["VersionId"]
    with pytest.raises(ClientError):
        client.delete_object(Bucket=locked_bucket, Key=key, VersionId=version)
    with pytest.raises(StorageError, match="could not publish"):  # the same key again
        publish(Checkpoint.load(body), f"s3://{locked_bucket}/audit/", 30)


def test_a_bucket_without_object_lock_is_refused(log: Path, s3_endpoint: str):
    """Nothing is written where it could be deleted: a typed error saying what to do."""
    plain = new_bucket(s3_endpoint)
    checkpoint = open_log(log).checkpoint(KEY)
    with pytest.raises(ConfigurationError, match="Object Lock"):
        publish(checkpoint, f"s3://{plain}/x/", 30)
    assert "Contents" not in boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(
        Bucket=plain
    )
    with pytest.raises(ConfigurationError, match="s3://"):
        publish(checkpoint, "/tmp/not-s3", 30)
