"""The logging core: the audit logger, its entries, encryption and storage backends.

This package imports neither pandas nor matplotlib, so logging stays cheap to import.
"""

from comply_lab.audit import encryption, logger, storage
from comply_lab.audit.logger import AuditLogger
from comply_lab.keys.encryption import (
    EncryptionManager,
    decrypt,
    encrypt,
    generate_key,
    hash_content,
)
from comply_lab.keys.envelope import EnvelopeKeys
from comply_lab.keys.keyring import ContentKeys, KeyRing, MissingKeyError, ShreddedKeyError
from comply_lab.keys.subjects import SubjectKeys, shred_subject
from comply_lab.model.entry import AuditEntry
from comply_lab.model.ids import create_entry_id
from comply_lab.storage import FileStorage, FsyncPolicy, MemoryStorage, Storage
from comply_lab.storage.backend import StorageBackend


def __getattr__(name: str) -> object:
    # S3Storage loads boto3 only when asked for, keeping the logging import light.
    if name == "S3Storage":
        from comply_lab.storage.s3 import S3Storage

        return S3Storage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AuditEntry",
    "AuditLogger",
    "ContentKeys",
    "EncryptionManager",
    "EnvelopeKeys",
    "FileStorage",
    "FsyncPolicy",
    "KeyRing",
    "MemoryStorage",
    "MissingKeyError",
    "S3Storage",
    "ShreddedKeyError",
    "Storage",
    "StorageBackend",
    "SubjectKeys",
    "create_entry_id",
    "decrypt",
    "encrypt",
    "encryption",
    "generate_key",
    "hash_content",
    "logger",
    "shred_subject",
    "storage",
]
