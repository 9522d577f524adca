"""Talking to S3: the client, prefixes, the local spool's place, and errors that say what to do."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from comply_lab.errors import StorageError, aws_error_code

_UNAVAILABLE = {"SlowDown", "ServiceUnavailable", "InternalError", "500", "502", "503", "504"}


def make_client(region: str | None, endpoint_url: str | None) -> Any:
    """Return a boto3 S3 client that retries throttling and 5xx (adaptive, 10 attempts)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        region_name=region,
        endpoint_url=endpoint_url,
        config=Config(retries={"mode": "adaptive", "max_attempts": 10}),
    )


def check_prefix(prefix: str) -> str:
    """Return the prefix as ``a/b/`` (or ``""``); refuse ones that read like paths elsewhere.

    S3 keys are not paths, but tools that mirror a bucket to disk treat them as such: a
    ``..`` or ``.`` part, a backslash or a control character would point outside the log.
    """
    if not isinstance(prefix, str):
        raise StorageError(f"the S3 prefix must be a string, got {type(prefix).__name__}")
    parts = [p for p in prefix.split("/") if p]
    bad = [p for p in parts if p in (".", "..") or "\\" in p or any(ord(c) < 32 for c in p)]
    if bad:
        raise StorageError(
            f"S3 prefix {prefix!r} has a '.', '..', backslash or control-character part; "
            "use plain names separated by '/'"
        )
    return "/".join(parts) + "/" if parts else ""


def default_spool(bucket: str, prefix: str, endpoint_url: str | None) -> Path:
    """Return the default local spool directory of a bucket and prefix."""
    root = os.environ.get("COMPLY_LAB_SPOOL_DIR") or Path.home() / ".cache" / "comply-lab" / "spool"
    tag = hashlib.sha256(f"{endpoint_url}|{bucket}|{prefix}".encode()).hexdigest()[:12]
    return Path(root) / f"{bucket}-{tag}"


def translate_error(err: Exception, bucket: str, key: str) -> StorageError:
    """Return a StorageError naming the object and saying what to do about ``err``."""
    code = aws_error_code(err)
    where = f"s3://{bucket}/{key}"
    advice = {
        "NoSuchBucket": f"bucket {bucket!r} does not exist; create it or fix the name",
        "AccessDenied": "access denied; check the IAM policy allows s3:GetObject, PutObject, "
        "ListBucket and DeleteObject on this prefix",
        "InvalidAccessKeyId": "the AWS access key is not valid; check your credentials",
        "SignatureDoesNotMatch": "the AWS secret key does not match; check your credentials",
    }.get(code)
    if advice is None and code in _UNAVAILABLE:
        advice = (
            f"S3 kept failing ({code}) after every retry; nothing was lost: spooled "
            "entries stay in the spool and go with the next flush"
        )
    if advice is None and type(err).__name__ == "NoCredentialsError":
        advice = "no AWS credentials found; set AWS_PROFILE or AWS_ACCESS_KEY_ID/SECRET, or a role"
    text = advice or f"{type(err).__name__}: {err}"
    return StorageError(f"{where}: {text}")
