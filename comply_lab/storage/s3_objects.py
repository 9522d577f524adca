"""The S3 objects of one log: create-only puts, reads, listings, batched deletes, Object Lock.

The one place that talks to the bucket for [`S3Storage`][comply_lab.storage.s3.S3Storage], its
sink ([`comply_lab.storage.s3_sink`][comply_lab.storage.s3_sink]) and the maintenance lock:
names are relative to the log's prefix, and every failure becomes a
[`StorageError`][comply_lab.errors.StorageError] that names the key and says what to do (see
[`comply_lab.storage.s3_client`][comply_lab.storage.s3_client]).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from comply_lab._time import system_now
from comply_lab.errors import aws_error_code
from comply_lab.storage.s3_client import translate_error


class S3Objects:
    """The objects under one prefix of one bucket.

    Args:
        client: A boto3 S3 client.
        bucket: The bucket.
        prefix: The log's prefix (``"prod/ai-audit/"``, or ``""``).
    """

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self._locked: bool | None = None

    def url(self, name: str) -> str:
        """Return ``s3://bucket/key`` of object ``name``, for messages."""
        return f"s3://{self.bucket}/{self.key(name)}"

    def key(self, name: str) -> str:
        """Return the key of object ``name`` (the prefix, then the name)."""
        return self.prefix + name

    def call(self, operation: str, key: str, **kwargs: Any) -> Any:
        """Run a client operation on the bucket; errors become StorageError naming ``key``."""
        try:
            return getattr(self.client, operation)(Bucket=self.bucket, **kwargs)
        except Exception as err:
            raise translate_error(err, self.bucket, key) from err

    def put_new(self, name: str, body: bytes) -> bool:
        """Create object ``name`` unless it exists; return False if it already existed."""
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self.key(name), Body=body, IfNoneMatch="*"
            )
        except Exception as err:
            if aws_error_code(err) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                return False
            raise translate_error(err, self.bucket, self.key(name)) from err
        return True

    def put(self, name: str, body: bytes) -> None:
        """Create or replace object ``name``."""
        self.call("put_object", self.key(name), Key=self.key(name), Body=body)

    def copy(self, source: str, name: str) -> None:
        """Replace object ``name`` by a copy of object ``source``, inside S3."""
        self.call(
            "copy_object",
            self.key(name),
            Key=self.key(name),
            CopySource={"Bucket": self.bucket, "Key": self.key(source)},
        )

    def get(self, name: str) -> bytes:
        """Return the bytes of object ``name``.

        Raises:
            FileNotFoundError: it does not exist (deleted since it was listed).
        """
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.key(name))
        except Exception as err:
            if aws_error_code(err) in ("NoSuchKey", "404"):
                raise FileNotFoundError(self.key(name)) from None
            raise translate_error(err, self.bucket, self.key(name)) from err
        return bytes(response["Body"].read())

    def list_objects(self, under: str, delimiter: str | None = None) -> Iterator[tuple[str, int]]:
        """Yield (name, size) of objects under ``under`` — or (prefix, 0) with a delimiter."""
        for page in self._pages(under, delimiter):
            for item in page.get("Contents", []):
                yield item["Key"][len(self.prefix) :], int(item["Size"])
            for common in page.get("CommonPrefixes", []):
                yield common["Prefix"][len(self.prefix) :], 0

    def tagged(self, under: str) -> list[tuple[str, str]]:
        """Return (name, ETag) of the objects under ``under``, sorted by name."""
        return sorted(
            (item["Key"][len(self.prefix) :], str(item.get("ETag")))
            for page in self._pages(under, None)
            for item in page.get("Contents", [])
        )

    def _pages(self, under: str, delimiter: str | None) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Prefix": self.key(under)}
            if delimiter:
                kwargs["Delimiter"] = delimiter
            if token:
                kwargs["ContinuationToken"] = token
            page: dict[str, Any] = self.call("list_objects_v2", kwargs["Prefix"], **kwargs)
            yield page
            if not page.get("IsTruncated"):
                return
            token = page["NextContinuationToken"]

    def delete_under(self, folders: list[str]) -> set[str]:
        """Delete every object whose name starts with one of ``folders``, in batches.

        Returns the keys S3 refused.

        In a bucket with Object Lock, every version is deleted by id, so a locked version
        is refused (and kept) instead of being hidden behind a delete marker.
        """
        objects: list[dict[str, str]] = []
        for folder in folders:
            if self.object_lock():
                pages = self.client.get_paginator("list_object_versions").paginate(
                    Bucket=self.bucket, Prefix=self.key(folder)
                )
                objects += [
                    {"Key": v["Key"], "VersionId": v["VersionId"]}
                    for page in pages
                    for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
                ]
            else:
                objects += [{"Key": self.key(n)} for n, _ in self.list_objects(folder)]
        kept: set[str] = set()
        for start in range(0, len(objects), 1000):
            batch = objects[start : start + 1000]
            response = self.call("delete_objects", batch[0]["Key"], Delete={"Objects": batch})
            kept.update(error["Key"] for error in response.get("Errors", []))
        return kept

    def object_lock(self) -> bool:
        """Whether the bucket has Object Lock enabled (asked once)."""
        if self._locked is None:
            try:
                found = self.client.get_object_lock_configuration(Bucket=self.bucket)
                config = found.get("ObjectLockConfiguration", {})
                self._locked = config.get("ObjectLockEnabled") == "Enabled"
            except Exception:
                self._locked = False
        return bool(self._locked)

    def locked_until(self, folders: list[str]) -> datetime | None:
        """Return until when Object Lock keeps an object under ``folders``; None if none is.

        Reads each object's lock headers (one HEAD request per object), only in buckets
        with Object Lock enabled. An object legal hold has no end: it is reported as
        ``datetime.max``.
        """
        if not self.object_lock():
            return None
        now = system_now()
        latest: datetime | None = None
        for folder in folders:
            for name, _ in self.list_objects(folder):
                head = self.call("head_object", self.key(name), Key=self.key(name))
                if head.get("ObjectLockLegalHoldStatus") == "ON":
                    return datetime.max.replace(tzinfo=UTC)
                until = head.get("ObjectLockRetainUntilDate")
                if until is not None and until > now and (latest is None or until > latest):
                    latest = until.astimezone(UTC)
        return latest
