"""The original audit-logging API's ``audit.storage`` module, by the same name.

Code written for it imports from here unchanged:
[`AuditEntry`][comply_lab.model.entry.AuditEntry], the backends
([`FileStorage`][comply_lab.storage.file.FileStorage],
[`MemoryStorage`][comply_lab.storage.memory.MemoryStorage], and ``S3Storage``, which loads boto3
only when asked for), the [`StorageBackend`][comply_lab.storage.backend.StorageBackend] protocol
and [`create_entry_id`][comply_lab.model.ids.create_entry_id].
"""

from comply_lab.model.entry import AuditEntry
from comply_lab.model.ids import create_entry_id
from comply_lab.storage import FileStorage, MemoryStorage
from comply_lab.storage.backend import StorageBackend


def __getattr__(name: str) -> object:
    if name == "S3Storage":
        from comply_lab.storage.s3 import S3Storage

        return S3Storage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [  # and S3Storage
    "AuditEntry",
    "FileStorage",
    "MemoryStorage",
    "StorageBackend",
    "create_entry_id",
]
