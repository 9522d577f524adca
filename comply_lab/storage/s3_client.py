"""Talking to S3: the client, prefixes, the local spool's place, and errors that say what to do."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from comply_lab.errors import ConfigurationError, StorageError, aws_error_code

DESTINATION = "_destination.json"
"""The file in a spool folder naming the endpoint, bucket and prefix its entries go to."""
_UNAVAILABLE = {"SlowDown", "ServiceUnavailable", "InternalError", "500", "502", "503", "504"}


def make_client(region: str | None, endpoint_url: str | None, *, credentials: bool = True) -> Any:
    """Return a boto3 S3 client that retries throttling and 5xx (adaptive, 10 attempts).

    Args:
        region: The AWS region, or None for boto3's configuration.
        endpoint_url: An S3-compatible endpoint, or None.
        credentials: Refuse to make a client when boto3 finds no credentials.

    Raises:
        ConfigurationError: ``credentials`` is True and boto3's chain (environment,
            profiles, roles) holds none.
    """
    import boto3
    from botocore.config import Config

    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION  # as boto3.client() does: its event hooks see our calls
    if credentials and session.get_credentials() is None:
        raise ConfigurationError(
            "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or run with a role; or pass offline=True to spool "
            "entries locally until credentials are there"
        )
    return session.client(
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


def destination(client: Any, bucket: str, prefix: str) -> dict[str, str]:
    """Return where a store's entries go: the endpoint its client talks to, bucket, prefix.

    The endpoint is the one the client resolved (from ``endpoint_url=``, the
    ``AWS_ENDPOINT_URL_S3`` variable or the region), with every AWS endpoint written as
    ``"aws"``: a bucket name is unique across AWS, whatever region a client names. The
    account is not recorded: S3 does not tell it without another call.
    """
    endpoint = str(client.meta.endpoint_url).rstrip("/")
    host = urlsplit(endpoint).hostname or ""
    aws = host == "amazonaws.com" or host.endswith((".amazonaws.com", ".amazonaws.com.cn"))
    return {"endpoint": "aws" if aws else endpoint, "bucket": bucket, "prefix": prefix}


def default_spool(place: dict[str, str]) -> Path:
    """Return the default local spool directory of a destination (see `destination`).

    ``$COMPLY_LAB_SPOOL_DIR``, else ``~/.cache/comply-lab/spool``, holds one folder per
    destination.
    """
    root = os.environ.get("COMPLY_LAB_SPOOL_DIR") or Path.home() / ".cache" / "comply-lab" / "spool"
    tag = hashlib.sha256(orjson.dumps(place, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]
    return Path(root) / f"{place['bucket']}-{tag}"


def spool_owner(folder: Path, place: dict[str, str]) -> str | None:
    """Say whose entries a spool folder holds if not ``place``'s; None if they are its own.

    A spool records its destination in ``_destination.json`` when it is first used; a
    folder holding waiting segments and no such record is of unknown destination.
    """
    try:
        recorded = orjson.loads((folder / DESTINATION).read_bytes())
    except FileNotFoundError:
        recorded = None
    except (OSError, orjson.JSONDecodeError):
        return "an unreadable destination record"
    if recorded is None:
        waiting = folder.is_dir() and any(name.startswith("audit_") for name in os.listdir(folder))
        return "an unknown destination" if waiting else None
    if recorded == place:
        return None
    if isinstance(recorded, dict):
        where = f"s3://{recorded.get('bucket')}/{recorded.get('prefix', '')}"
        return f"{where} at {recorded.get('endpoint')}"
    return "an unreadable destination record"


def claim_spool(folder: Path, place: dict[str, str]) -> None:
    """Record ``place`` as the destination of a spool folder (if none is recorded yet)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with (folder / DESTINATION).open("xb") as file:
            file.write(orjson.dumps(place, option=orjson.OPT_SORT_KEYS))
    except FileExistsError:
        pass


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
