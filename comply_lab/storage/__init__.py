"""Storage backends: one protocol, one module per backend."""

from comply_lab.storage.base import Storage, StorageBase
from comply_lab.storage.durability import FsyncPolicy
from comply_lab.storage.file import FileStorage
from comply_lab.storage.memory import MemoryStorage


def __getattr__(name: str) -> object:
    # S3Storage loads boto3 only when asked for, keeping the logging import light.
    if name == "S3Storage":
        from comply_lab.storage.s3 import S3Storage

        return S3Storage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["FileStorage", "FsyncPolicy", "MemoryStorage", "Storage", "StorageBase"]
