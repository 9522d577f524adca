"""comply_lab: AI audit logging and investigation.

Log every AI interaction with :class:`AuditLogger`; open, verify and analyse the log later.

Example:
    >>> import tempfile
    >>> from comply_lab import AuditLogger
    >>> with AuditLogger(tempfile.mkdtemp()) as logger:
    ...     entry_id = logger.log_sync(input="Hi", output="Hello", provider="openai")
"""

from importlib.metadata import PackageNotFoundError, version

from comply_lab.audit import (
    AuditEntry,
    AuditLogger,
    EncryptionManager,
    FileStorage,
    MemoryStorage,
    Storage,
)
from comply_lab.errors import (
    ComplyLabError,
    ComplyLabWarning,
    CorruptLineWarning,
    DecryptionError,
    InvalidEntryError,
    InvalidQueryError,
    StorageError,
)

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
    "DecryptionError",
    "EncryptionManager",
    "FileStorage",
    "InvalidEntryError",
    "InvalidQueryError",
    "MemoryStorage",
    "Storage",
    "StorageError",
    "__version__",
]
