"""Time-ordered entry ids (UUIDv7, RFC 9562).

The first 48 bits of a UUIDv7 are the Unix time in milliseconds, so an id tells which day
partition holds its entry and ids sort by time. Within one millisecond a generator counts
up from a random start, so ids of one writer stay strictly ordered and ids of different
writers (processes, loggers) collide with negligible probability (74 random bits).
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta

from comply_lab._time import utc_now

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RAND_BITS = 74
_VERSION = 0x7
_VARIANT = 0b10
_RAND_B_MASK = (1 << 62) - 1


class IdGenerator:
    """Makes UUIDv7 strings whose millisecond field is the caller's timestamp."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._counter = 0
        self._prefix = ""

    def new_id(self, unix_ms: int) -> str:
        """Return a new UUIDv7 string for the given Unix time in milliseconds."""
        with self._lock:
            if unix_ms == self._last_ms and self._counter < (1 << _RAND_BITS) - 1:
                self._counter += 1
            else:
                self._last_ms = unix_ms
                # Leave headroom below the top so counting up within a millisecond never wraps.
                self._counter = int.from_bytes(os.urandom(10)) >> (80 - _RAND_BITS + 1)
                # The time and version digits change at most once a millisecond.
                stamp = f"{unix_ms:012x}"
                self._prefix = f"{stamp[:8]}-{stamp[8:]}-{_VERSION:x}"
            counter, prefix = self._counter, self._prefix
        # rand_a (12 bits), then the variant and rand_b (62 bits) as 16 hex digits.
        tail = f"{(_VARIANT << 62) | (counter & _RAND_B_MASK):016x}"
        return f"{prefix}{counter >> 62:03x}-{tail[:4]}-{tail[4:]}"


def id_time(entry_id: str) -> datetime | None:
    """Return the UTC time encoded in a UUIDv7 id, or None for any other id.

    Ids written by other tools (UUIDv4, free text) carry no time; callers then fall back
    to scanning every partition.

    Example:
        >>> id_time("0190b7a5-1f40-7000-8000-000000000000")
        datetime.datetime(2024, 7, 15, 18, 26, 10, 368000, tzinfo=datetime.timezone.utc)
    """
    text = entry_id.replace("-", "")
    if len(text) != 32 or text[12] != "7":
        return None
    try:
        value = int(text, 16)
    except ValueError:
        return None
    if (value >> 62) & 0b11 != _VARIANT:
        return None
    return _EPOCH + timedelta(milliseconds=value >> 80)


_GENERATOR = IdGenerator()


def create_entry_id() -> str:
    """Return a new unique entry id: a UUIDv7 string for the current time.

    The original audit-logging API's ``create_entry_id()`` returns a random UUIDv4;
    comply_lab's ids are time-ordered, so they also name their entry's day partition.
    """
    now = utc_now()
    return _GENERATOR.new_id((now - _EPOCH) // timedelta(milliseconds=1))
