"""The metadata trails of an S3 log: one create-only object per record, in chain order.

Each record is the object ``<trail>/<position>.json`` under the log's prefix, written
with ``If-None-Match: *``: two writers racing for the same position cannot both win, so
each chain stays linear without locks. Trail objects are created once and never changed
by comply_lab, so each is fetched once and kept; an object changed since (by hand) has
another ETag and is fetched afresh, so no reader, verification included, ever trusts
bytes that are no longer there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from comply_lab.errors import StorageError
from comply_lab.storage.manifest import (
    SIGNED_LOG,
    TRAILS,
    Extend,
    chain_record,
    parse_records,
    record_line,
    refuse_unsigned,
)
from comply_lab.storage.s3_objects import S3Objects

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

TRAIL_FOLDERS = {name: f"{name.removesuffix('.jsonl')}/" for name in TRAILS}
"""Each trail's folder of record objects, under the log's prefix."""

_CHAIN_RETRIES = 20


class S3Trails:
    """Reads and appends the trails of the S3 log whose objects ``objects`` reaches."""

    def __init__(self, objects: S3Objects, bucket: str) -> None:
        self.objects = objects
        self.bucket = bucket
        self._cache: dict[str, tuple[str, bytes]] = {}

    def read(self, name: str) -> bytes:
        """Return trail ``name`` as JSON lines, in chain order (empty if it is none)."""
        folder = TRAIL_FOLDERS.get(name)
        if folder is None:
            return b""
        bodies = [self._object(key, tag) for key, tag in self.objects.tagged(folder)]
        return b"".join(body + b"\n" for body in bodies)

    def append(
        self,
        name: str,
        record: dict[str, Any],
        key: Ed25519PrivateKey | None,
        extend: Extend | None = None,
    ) -> None:
        """Append ``record`` to trail ``name``, chained and signed with ``key`` (if any).

        Raises:
            StorageError: the position was taken by other writers every time.
        """
        folder = TRAIL_FOLDERS[name]
        for _ in range(_CHAIN_RETRIES):
            names = self.objects.tagged(folder)
            last = orjson.loads(self._object(*names[-1])) if names else None
            position = len(names) + 1
            for trail in SIGNED_LOG if last is None and key is None else ():
                signed = TRAIL_FOLDERS[trail]  # a new trail of a signed log is signed too
                heads = self.objects.tagged(signed)
                head = orjson.loads(self._object(*heads[-1])) if heads else None
                refuse_unsigned(head, None, self._where(signed))
            refuse_unsigned(last, key, self._where(folder))
            fields = {}
            if extend is not None:
                readable = parse_records(b"\n".join(self._object(*n) for n in names))
                fields = extend([r for _, r in readable if r is not None])
            chained = chain_record({**record, **fields}, last, key)
            name, body = f"{folder}{position:012d}.json", record_line(chained)
            # Taken: by another writer, or by this very request, retried after S3 stored
            # it but the answer was lost (then the stored bytes are exactly ours).
            if self.objects.put_new(name, body) or self.objects.get(name) == body:
                return
        raise StorageError(
            f"could not append to {self._where(folder)} after {_CHAIN_RETRIES} attempts: "
            "too many concurrent writers; try again"
        )

    def _object(self, name: str, tag: str) -> bytes:
        """Return a trail object, fetched again only if its ETag changed."""
        cached = self._cache.get(name)
        if cached is None or cached[0] != tag:
            cached = self._cache[name] = (tag, self.objects.get(name))
        return cached[1]

    def _where(self, folder: str) -> str:
        return f"s3://{self.bucket}/{self.objects.key(folder)}"
