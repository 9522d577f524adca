"""The logging core: the audit logger, its entries, encryption and storage backends.

This package imports neither pandas nor matplotlib, so logging stays cheap to import.
"""

from comply_lab.audit.encryption import EncryptionManager
from comply_lab.audit.entry import AuditEntry
from comply_lab.audit.logger import AuditLogger
from comply_lab.storage import FileStorage, FsyncPolicy, MemoryStorage, Storage

__all__ = [
    "AuditEntry",
    "AuditLogger",
    "EncryptionManager",
    "FileStorage",
    "FsyncPolicy",
    "MemoryStorage",
    "Storage",
]
