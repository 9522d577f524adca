"""Storage backends: one protocol, one module per backend."""

from comply_lab.storage.base import Storage, StorageBase
from comply_lab.storage.durability import FsyncPolicy
from comply_lab.storage.file import FileStorage
from comply_lab.storage.memory import MemoryStorage

__all__ = ["FileStorage", "FsyncPolicy", "MemoryStorage", "Storage", "StorageBase"]
