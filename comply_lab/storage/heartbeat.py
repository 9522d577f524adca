"""Heartbeats: signed records that a store's writers are alive, and what they have written.

A writing store appends a record to its ``_heartbeat`` trail when it first writes, every
``heartbeat_s`` seconds while it lives — even when nothing is logged, as CloudTrail
writes a digest file every hour with nothing to report — and when it is closed
(``"final": true``). Each record (signed with the store's key, chained like every trail)
says:

- ``every``: the cadence the log promises (None: beats only at close). Verification
  reports the log ``stale`` when no record is newer than the cadence plus a grace period
  at the time of verification, unless the newest heartbeat is a final one (the writers
  stopped cleanly). A log whose newest records were cut away therefore shows, even
  without a checkpoint;
- ``unsealed``: for each unsealed JSONL segment the store wrote to since its last beat,
  the size and SHA-256 of its bytes so far. Verification checks that each unsealed
  segment still starts with exactly those bytes, so the hot tail of a log — entries not
  yet sealed — is protected up to its newest heartbeat like sealed data;
- ``trails``: the length and last ``record_hash`` of every other trail (manifest, holds,
  retention, access, keys, shredded). Trails only ever grow, so verification checks that
  each still extends what every heartbeat saw: a hold record removed, a manifest cut back
  or an access trail truncated before the newest heartbeat shows without a checkpoint.

A store's heartbeats run in one daemon thread, started by the first write (a store
opened only for reading never beats) and stopped by ``close()``; they never delay or fail
a write (a beat that cannot be written is warned about and tried again at the next one).
Manifest records promise the cadence only once a first beat was written, so a promise
always has a heartbeat trail behind it.
"""

from __future__ import annotations

import threading
import uuid
import warnings
from collections.abc import Callable
from typing import Any

from comply_lab._time import utc_now
from comply_lab.errors import ComplyLabWarning, InvalidQueryError
from comply_lab.model.entry import format_timestamp
from comply_lab.storage.base import Storage
from comply_lab.storage.manifest import HEARTBEAT, TRAILS, trail_head

DEFAULT_HEARTBEAT_S = 3600.0
"""Heartbeat cadence of writing stores unless told otherwise: one hour."""

Snapshots = dict[str, list[Any]]
"""Unsealed segment name -> ``[size, sha256]`` of its bytes so far."""


def check_cadence(heartbeat_s: float | None) -> float | None:
    """Return ``heartbeat_s`` if it is a usable cadence: None, 0 (off) or a positive number.

    Raises:
        InvalidQueryError: it is not.
    """
    if heartbeat_s is None:
        return None
    if isinstance(heartbeat_s, bool) or not isinstance(heartbeat_s, int | float):
        raise InvalidQueryError(f"heartbeat_s must be a number of seconds, got {heartbeat_s!r}")
    if not heartbeat_s >= 0:
        raise InvalidQueryError(
            f"heartbeat_s must be >= 0 (0 turns heartbeats off), got {heartbeat_s}"
        )
    return float(heartbeat_s)


class Heartbeat:
    """Writes a store's heartbeat records.

    Args:
        store: The store: heartbeats read its trails and append to its heartbeat trail
            (``append_metadata`` chains and signs each record).
        snapshots: Returns the unsealed segments written since the last beat with their
            size and SHA-256 (``{}`` where a store has none others can see).
        every: Seconds between beats; None beats only at close; 0 never beats.
        heads: Returns the newest ``[seq, entry_hash]`` of each chain written through
            the store: the beat signs them, so those entries cannot change unnoticed.
    """

    def __init__(
        self,
        store: Storage,
        snapshots: Callable[[], Snapshots],
        every: float | None,
        heads: Callable[[], dict[str, list[Any]]] = dict,
    ) -> None:
        self.every = check_cadence(every)
        self._store = store
        self._snapshots = snapshots
        self._heads = heads
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._source = uuid.uuid4().hex[:12]
        self._started = False
        self._beaten = False

    @property
    def enabled(self) -> bool:
        """Whether this store writes heartbeats at all."""
        return self.every != 0

    @property
    def promised(self) -> float | None:
        """The cadence this store promises: set once it has written a periodic beat."""
        return self.every if self._beaten and self.every else None

    def start(self) -> None:
        """Start the beats, if not done yet (call it on every write: it is cheap after one).

        With a cadence, a thread beats at once and then every ``every`` seconds; without one,
        the only beat is the final one at [`stop`][comply_lab.storage.heartbeat.Heartbeat.stop].
        """
        if self._started or not self.enabled:
            return
        with self._lock:
            if self._started:
                return
            self._started = True
            if self.every:
                self._thread = threading.Thread(
                    target=self._run, name="comply-lab-heartbeat", daemon=True
                )
                self._thread.start()

    def beat(self, *, final: bool = False) -> None:
        """Append one heartbeat record now."""
        with self._lock:
            record = {
                "kind": "heartbeat",
                "source": self._source,
                "at": format_timestamp(utc_now()),
                "every": self.every,
                "final": final,
                "unsealed": self._snapshots(),
                "heads": self._heads(),
                "trails": {
                    name: list(trail_head(self._store.read_metadata(name)))
                    for name in TRAILS
                    if name != HEARTBEAT
                },
            }
            self._store.append_metadata(HEARTBEAT, record)
            self._beaten = True

    def stop(self) -> None:
        """Stop the periodic beats and, if this store wrote anything, beat a final time."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
        if self._started:
            self._started = False
            self._try_beat(final=True)
        self._stop = threading.Event()
        self._beaten = False

    def reset_after_fork(self) -> None:
        """Forget the parent's beats: a forked child is a new source that has not written."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._source = uuid.uuid4().hex[:12]
        self._started = False
        self._beaten = False

    def _run(self) -> None:
        assert self.every
        while True:
            self._try_beat()
            if self._stop.wait(self.every):
                return

    def _try_beat(self, *, final: bool = False) -> None:
        """Beat; a failure is warned about, never raised into the write that started it."""
        try:
            self.beat(final=final)
        except Exception as err:
            warnings.warn(
                f"could not write a heartbeat ({err}); the next one is tried "
                + (f"in {self.every:g} s" if self.every else "at close()"),
                ComplyLabWarning,
                stacklevel=2,
            )
