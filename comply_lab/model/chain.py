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
from typing import Any, TypeVar

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
        register: Callable[[str], None] | None = None,
    ) -> T:
        """Give ``record`` its chain fields, encode it and ``store`` its line; advance.

        ``record`` holds the entry's fields but content, chain fields and ``entry_hash``.
        Before the chain's first line is stored, ``register`` (if given) is called with
        the ``writer_id``: a signed store records the writer there.
        Returns what ``store`` returns.

        Raises:
            orjson.JSONEncodeError: a value cannot be encoded (nothing was stored).
        """
        with self.lock:
            if register is not None and not self.registered:
                register(self.writer_id)
                self.registered = True
            record["writer_id"] = self.writer_id
            record["seq"] = self.seq
            record["prev_hash"] = self.prev_hash
            digest, line = encode_line(record, input_content, output_content)
            stored = store(line)
            self.seq += 1
            self.prev_hash = digest
            return stored
