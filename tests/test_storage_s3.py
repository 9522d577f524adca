"""S3Storage against a real S3-compatible server over HTTP: the conformance suite and more."""

from __future__ import annotations

from tests.storage_contract import StorageContract


class TestS3ParquetContract(StorageContract):
    backend = "s3-parquet"


class TestS3JsonlContract(StorageContract):
    backend = "s3-jsonl"
