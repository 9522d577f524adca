"""comply_lab: AI audit logging and investigation.

Log every AI interaction with [`AuditLogger`][comply_lab.audit.logger.AuditLogger]; open, verify
and analyse the log later.

Example:
    >>> import tempfile
    >>> from comply_lab import AuditLogger
    >>> with AuditLogger(tempfile.mkdtemp()) as logger:
    ...     entry_id = logger.log_sync(input="Hi", output="Hello", provider="openai")
"""

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from comply_lab.audit import (
    AuditEntry,
    AuditLogger,
    EncryptionManager,
    EnvelopeKeys,
    FileStorage,
    KeyRing,
    MemoryStorage,
    Storage,
    SubjectKeys,
    decrypt,
    encrypt,
    generate_key,
    hash_content,
    shred_subject,
)
from comply_lab.errors import (
    ComplyLabError,
    ComplyLabWarning,
    CorruptLineWarning,
    CorruptSegmentError,
    CorruptSegmentWarning,
    DecryptionError,
    IntegrityError,
    IntegrityWarning,
    InvalidEntryError,
    InvalidQueryError,
    RequestBlockedError,
    StorageError,
    UnknownValueWarning,
    WrongKeyError,
)
from comply_lab.integrations import Interaction, SafetyVerdict

if TYPE_CHECKING:
    from comply_lab.integrity.content import verify_content
    from comply_lab.keys.rotate import rotate_keys
    from comply_lab.lab import Log, open_log

_LAB = {
    "Log": "comply_lab.lab",
    "open_log": "comply_lab.lab",
    "verify_content": "comply_lab.integrity.content",
    "rotate_keys": "comply_lab.keys.rotate",
}


def __getattr__(name: str) -> Any:
    # The lab (pandas, pyarrow, DuckDB) loads on first use, keeping `import comply_lab` light.
    if name in _LAB:
        import importlib

        return getattr(importlib.import_module(_LAB[name]), name)
    raise AttributeError(f"module 'comply_lab' has no attribute {name!r}")


try:
    __version__ = version("comply-lab")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "AuditEntry",
    "AuditLogger",
    "ComplyLabError",
    "ComplyLabWarning",
    "CorruptLineWarning",
    "CorruptSegmentError",
    "CorruptSegmentWarning",
    "DecryptionError",
    "EncryptionManager",
    "EnvelopeKeys",
    "FileStorage",
    "IntegrityError",
    "IntegrityWarning",
    "Interaction",
    "InvalidEntryError",
    "InvalidQueryError",
    "KeyRing",
    "Log",
    "MemoryStorage",
    "RequestBlockedError",
    "SafetyVerdict",
    "Storage",
    "StorageError",
    "SubjectKeys",
    "UnknownValueWarning",
    "WrongKeyError",
    "__version__",
    "decrypt",
    "encrypt",
    "generate_key",
    "hash_content",
    "open_log",
    "rotate_keys",
    "shred_subject",
    "verify_content",
]
