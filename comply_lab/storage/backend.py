"""Storage written for the original audit-logging API, used as it is.

A team may have its own backend written against the original ``StorageBackend``
protocol: five async methods, ``write(entry)``, ``read(entry_id)``, ``list_entries(start,
end)``, ``delete(entry_id)`` and ``count()``. Handed to
[`AuditLogger`][comply_lab.audit.logger.AuditLogger], such an object is wrapped in a
`BackendAdapter`, and the logger's API works on it as it did with the original tool: ``log``
writes through ``write``, ``get_entry`` reads with ``read``, ``get_entries`` lists with
``list_entries``, ``cleanup_expired`` deletes entry by entry (the only way that protocol
offers). The backend receives and returns entries in the original's form
([`OriginalEntry`][comply_lab.storage.backend.OriginalEntry]: the seventeen original fields,
the timestamp an ISO 8601 string in UTC); anything with such fields and a ``to_dict()`` is
read back.

What such a backend cannot give — day partitions, sealing, manifests, trails — is not
offered: verification, checkpoints, holds and the lab need one of comply_lab's backends
(``comply-lab compact`` converts an exported log).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from dataclasses import MISSING, Field, asdict, field, fields, make_dataclass
from datetime import date, datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

import orjson

from comply_lab._time import TimeLike, to_range
from comply_lab.errors import ConfigurationError, InvalidQueryError, StorageError
from comply_lab.model.entry import ENTRY_FIELDS, AuditEntry
from comply_lab.storage.base import StorageBase
from comply_lab.storage.segments import Segment

T = TypeVar("T")


@runtime_checkable
class StorageBackend(Protocol):
    """The original API's storage protocol: five async methods."""

    async def write(self, entry: Any) -> str:
        """Store an entry; return its id."""
        ...

    async def read(self, entry_id: str) -> Any:
        """Return the entry with ``entry_id``, or None."""
        ...

    async def list_entries(self, start: datetime, end: datetime) -> list[Any]:
        """Return the entries from ``start`` to ``end``, both included."""
        ...

    async def delete(self, entry_id: str) -> bool:
        """Delete an entry; return whether it existed."""
        ...

    async def count(self) -> int:
        """Return how many entries are stored."""
        ...


def _original_field(item: Field[Any]) -> tuple[str, Any, Any]:
    """Return an AuditEntry field as the original declares it (the timestamp as text)."""
    if item.default_factory is not MISSING:
        spec: Any = field(default_factory=item.default_factory)
    elif item.default is not MISSING:
        spec = field(default=item.default)
    else:
        spec = field()
    return item.name, "str" if item.name == "timestamp" else item.type, spec


OriginalEntry: type[Any] = make_dataclass(
    "OriginalEntry",
    [_original_field(f) for f in fields(AuditEntry) if f.name in ENTRY_FIELDS],
    namespace={
        "__doc__": "An entry in the original API's form, as a backend written for it expects.",
        "to_dict": lambda self: asdict(self),
        "from_dict": classmethod(lambda cls, data: cls(**data)),
        "__module__": __name__,
    },
)
"""An entry in the original API's form: AuditEntry's first seventeen fields, the
timestamp an ISO 8601 string, with ``to_dict()`` and ``from_dict()``."""


def _to_ours(value: Any) -> AuditEntry:
    """Return what a backend gave back as an [`AuditEntry`][comply_lab.model.entry.AuditEntry]."""
    if isinstance(value, AuditEntry):
        return value
    data = value if isinstance(value, dict) else getattr(value, "to_dict", lambda: None)()
    if not isinstance(data, dict):
        raise StorageError(
            f"the storage backend returned a {type(value).__name__}, not an entry: its read() "
            "and list_entries() must return entries with to_dict(), or dicts"
        )
    return AuditEntry.from_dict(data)


class BackendAdapter(StorageBase):
    """A backend written for the original ``StorageBackend`` protocol, as a comply_lab store.

    Its coroutines run on an event loop of the adapter's own (one thread), so the
    logger's synchronous and asynchronous methods both work, inside Jupyter too.

    Args:
        backend: The object with the five async methods.
    """

    def __init__(self, backend: StorageBackend) -> None:
        self.backend = backend
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="comply-lab-backend", daemon=True
        )
        self._thread.start()

    def __repr__(self) -> str:
        return f"BackendAdapter({self.backend!r})"

    def _run(self, call: Coroutine[Any, Any, T]) -> T:
        if self._loop.is_closed():
            call.close()  # never awaited: say so without a RuntimeWarning
            raise StorageError(f"{self!r} is closed")
        return asyncio.run_coroutine_threadsafe(call, self._loop).result()

    def append(self, day: date, line: bytes) -> int | None:
        """Hand the entry of ``line`` to the backend's ``write``."""
        record = orjson.loads(line)
        entry = OriginalEntry(**{k: record[k] for k in ENTRY_FIELDS})
        self._run(self.backend.write(entry))
        return None

    def wait_durable(self, ticket: int) -> None:
        """Nothing to wait for: ``write`` returned."""

    def days(self) -> list[date]:
        """No day partitions: such a backend offers none."""
        return []

    def segments(self, day: date) -> list[Segment]:
        """No segments: such a backend offers none."""
        return []

    def read_segment(self, segment: Segment) -> bytes:
        """No segments: such a backend offers none."""
        raise FileNotFoundError(segment.name)

    def drop_day(self, day: date, details: Any = None) -> int:
        """No partitions to drop (see `expire_sync`)."""
        return 0

    def append_metadata(self, name: str, record: dict[str, Any]) -> None:
        """Refuse: a backend of the original protocol keeps no trails."""
        raise ConfigurationError(
            f"{self!r} implements only the original storage protocol, which keeps no "
            f"{name.strip('_').removesuffix('.jsonl')} records: use FileStorage or S3Storage"
        )

    def read_sync(self, entry_id: str) -> AuditEntry | None:
        """Return the backend's entry ``entry_id``, or None."""
        found = self._run(self.backend.read(entry_id))
        return None if found is None else _to_ours(found)

    def list_entries_sync(self, start: TimeLike, end: TimeLike) -> list[AuditEntry]:
        """Return the backend's entries from ``start`` to ``end`` (UTC), by time."""
        lo, hi = to_range(start, end)
        if lo is None or hi is None:
            raise InvalidQueryError("list_entries needs both a start and an end")
        found = self._run(self.backend.list_entries(lo, hi))
        return sorted((_to_ours(e) for e in found), key=lambda e: (e.timestamp, e.id))

    def count_sync(self) -> int:
        """Return the backend's ``count()``."""
        return int(self._run(self.backend.count()))

    def expire_sync(self, before: datetime) -> int:
        """Delete, one by one, the entries older than ``before``; return how many.

        The original tool's ``cleanup_expired``: with only ``delete(entry_id)`` in the
        protocol there is no better way.
        """
        epoch = datetime(1970, 1, 1, tzinfo=before.tzinfo)
        old = self._run(self.backend.list_entries(epoch, before))
        return sum(bool(self._run(self.backend.delete(_to_ours(e).id))) for e in old)

    def close(self) -> None:
        """Stop the adapter's event loop (the backend itself is the caller's)."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()
