"""A writer's hash chain: the position and previous hash each new entry records.

Every writer (an [`AuditLogger`][comply_lab.audit.logger.AuditLogger], or a store's ``write()``)
numbers its entries from 0 (``seq``) and links each to the ``entry_hash`` of the one before
(``prev_hash``, 64 zeros first), under its own random ``writer_id``. The chain moves on only
once the entry's line is stored, so a failed write leaves no gap.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from comply_lab.model.entry import GENESIS_HASH, encode_line

T = TypeVar("T")


class Chain:
    """One writer's chain state; `append` places, hashes and stores one entry."""

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        """Start a new chain (a new writer), as a forked process must."""
        self.lock = threading.Lock()
        self.writer_id = uuid.uuid4().hex
        self.seq = 0
        self.prev_hash = GENESIS_HASH
        self.registered = False

    def append(
        self,
        record: dict[str, Any],
        input_content: str | None,
        output_content: str | None,
        store: Callable[[bytes], T],
        register: Registering | None = None,
    ) -> T:
        """Give ``record`` its chain fields, encode it and ``store`` its line; advance.

        ``record`` holds the entry's fields but content, chain fields and ``entry_hash``.
        Before the chain's first line is stored, ``register`` (the store, if it
        registers writers) records the ``writer_id``; after each line is stored it is
        told the chain's new head, which its heartbeats sign.
        Returns what ``store`` returns.

        Raises:
            orjson.JSONEncodeError: a value cannot be encoded (nothing was stored).
        """
        with self.lock:
            if register is not None and not self.registered:
                register.register_writer(self.writer_id)
                self.registered = True
            record["writer_id"] = self.writer_id
            record["seq"] = self.seq
            record["prev_hash"] = self.prev_hash
            digest, line = encode_line(record, input_content, output_content)
            stored = store(line)
            if register is not None:
                register.note_head(self.writer_id, self.seq, digest)
            self.seq += 1
            self.prev_hash = digest
            return stored


class Registering(Protocol):
    """A store that registers each writer's chain and signs its heads (see `Chain.append`)."""

    def register_writer(self, writer_id: str) -> None:
        """Register the chain ``writer_id`` (called once, before its first entry)."""
        ...

    def note_head(self, writer_id: str, seq: int, entry_hash: str) -> None:
        """Take note of chain ``writer_id``'s newest stored entry."""
        ...
