"""Publishing checkpoints to write-once storage: S3 Object Lock in compliance mode.

A checkpoint kept only beside the log can be replaced by whoever controls the log. One written
to a bucket with Object Lock, in *compliance* mode, can be neither overwritten nor deleted by
anyone — the account's root user included — until its retention date.
[`publish`][comply_lab.integrity.publish.publish] writes the checkpoint (and, when given, its
consistency proof and timestamp) under ``<prefix>checkpoints/<origin>/``, each object locked for
``retain_days``, and refuses a bucket without Object Lock rather than write there unprotected.
Keys never repeat (tree size and time in the name), and an existing key is never overwritten
(``If-None-Match``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

from comply_lab._time import system_now
from comply_lab.errors import ConfigurationError, StorageError, aws_error_code
from comply_lab.integrity.checkpoint import Checkpoint
from comply_lab.storage.s3_client import check_prefix, make_client


def publish(
    checkpoint: Checkpoint,
    url: str,
    retain_days: int,
    *,
    attachments: Mapping[str, bytes] | None = None,
    endpoint_url: str | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Write a checkpoint to ``s3://bucket/prefix/``, locked in compliance mode.

    Args:
        checkpoint: The checkpoint (its note is written).
        url: ``s3://bucket/prefix/`` of a bucket created with Object Lock enabled.
        retain_days: How long nobody may delete or overwrite it (at least 1).
        attachments: Files to publish beside it, by suffix (``{".proof": ...}``).
        endpoint_url: Another S3 endpoint (default: boto3's configuration).
        now: The time the retention starts from (default: now).

    Returns:
        The ``s3://`` URLs written.

    Raises:
        ConfigurationError: not an ``s3://`` URL, ``retain_days`` below 1, or the bucket
            has no Object Lock (create it with Object Lock enabled).
        StorageError: S3 refused a write (the key exists, or access is denied).
    """
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ConfigurationError(f"publish to an s3://bucket/prefix/ URL, not {url!r}")
    if retain_days < 1:
        raise ConfigurationError("--retain-days must be at least 1 for a write-once copy")
    bucket, prefix = parsed.netloc, check_prefix(parsed.path.lstrip("/"))
    client = make_client(None, endpoint_url)
    _require_object_lock(client, bucket)
    until = (now or system_now()) + timedelta(days=retain_days)
    stamp = str(checkpoint.time).replace(":", "").replace("-", "")[:15]
    origin = "".join(c if c.isalnum() or c in "-." else "_" for c in str(checkpoint.origin))
    base = f"{prefix}checkpoints/{origin}/{int(checkpoint.size or 0):012d}-{stamp}.txt"
    objects = {base: checkpoint.to_note().encode()}
    objects.update({base + suffix: data for suffix, data in (attachments or {}).items()})
    written = []
    for key, body in objects.items():
        try:
            client.put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                IfNoneMatch="*",
                ObjectLockMode="COMPLIANCE",
                ObjectLockRetainUntilDate=until,
                ChecksumAlgorithm="SHA256",
            )
        except (ClientError, BotoCoreError) as err:
            raise StorageError(
                f"could not publish s3://{bucket}/{key} ({aws_error_code(err) or err}): "
                "check the key is new and the role may PutObject and PutObjectRetention"
            ) from None
        written.append(f"s3://{bucket}/{key}")
    return written


def _require_object_lock(client: object, bucket: str) -> None:
    """Raise unless the bucket has Object Lock enabled."""
    try:
        found = client.get_object_lock_configuration(Bucket=bucket)  # type: ignore[attr-defined]
        enabled = found["ObjectLockConfiguration"]["ObjectLockEnabled"] == "Enabled"
    except (ClientError, BotoCoreError, KeyError):  # none, no bucket, or no permission
        enabled = False
    if not enabled:
        raise ConfigurationError(
            f"bucket {bucket!r} has no Object Lock, so a checkpoint there could be deleted or "
            "replaced: publish to a bucket created with Object Lock enabled"
        )
