"""When appended data is forced to disk: the fsync policy and group commit.

Every append is handed to the operating system in one ``write`` before ``log()`` returns,
so a crash of the *process* never loses an acknowledged entry. The policy decides what a
crash of the *machine* (power loss, kernel panic) may lose:

``"never"``
    comply_lab never calls fsync; the OS writes back when it likes (typically within
    30 s). Fastest; what the original tool did.
``"interval"`` (default)
    A background thread fsyncs at most ``interval_s`` after data was written, so at most
    about that much acknowledged data is at risk. ``close()`` always fsyncs.
``"always"``
    ``log()`` returns only after an fsync covers its entry. Concurrent callers share one
    fsync (group commit): while one fsync runs, the entries written meanwhile wait for the
    next, which covers all of them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Literal, get_args

from comply_lab.errors import InvalidQueryError

FsyncPolicy = Literal["never", "interval", "always"]
_POLICIES = get_args(FsyncPolicy)


class GroupCommit:
    """Tracks written and durable appends and runs ``sync`` as the policy requires.

    Args:
        policy: One of ``"never"``, ``"interval"``, ``"always"``.
        sync: Makes everything written so far durable (fsync); called without locks held.
        interval_s: Longest time data waits for fsync under ``"interval"``.
    """

    def __init__(
        self, policy: FsyncPolicy, sync: Callable[[], None], interval_s: float = 1.0
    ) -> None:
        if policy not in _POLICIES:
            raise InvalidQueryError(f"fsync: {policy!r} is not one of {', '.join(_POLICIES)}")
        if not interval_s > 0:
            raise InvalidQueryError(f"fsync_interval_s must be > 0, got {interval_s!r}")
        self.policy = policy
        self._sync = sync
        self._interval_s = interval_s
        self._cond = threading.Condition()
        self._written = 0
        self._durable = 0
        self._syncing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def written(self) -> int | None:
        """Record one append handed to the OS; return a ticket if the caller must wait.

        Call it under the lock that serializes the appends themselves, so tickets follow
        the order of the writes.
        """
        self._written += 1
        if self.policy == "always":
            return self._written
        if self.policy == "interval" and self._thread is None:
            self._start_thread()
        return None

    def wait(self, ticket: int) -> None:
        """Block until the append with ``ticket`` is durable, leading an fsync if none runs."""
        with self._cond:
            while self._durable < ticket:
                if self._syncing:
                    self._cond.wait()
                    continue
                self._run_sync_locked()

    def sync_now(self) -> None:
        """Make everything written so far durable (used by ``close`` and the interval thread)."""
        with self._cond:
            target = self._written
            while self._durable < target:
                if self._syncing:
                    self._cond.wait()
                else:
                    self._run_sync_locked()

    def stop(self) -> None:
        """Stop the interval thread and sync what is pending, unless the policy is never."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.policy != "never":
            self.sync_now()

    def reset_after_fork(self) -> None:
        """Forget the parent's lock and thread in a forked child."""
        self._cond = threading.Condition()
        self._syncing = False
        self._stop = threading.Event()
        self._thread = None

    def _run_sync_locked(self) -> None:
        self._syncing = True
        target = self._written
        self._cond.release()
        try:
            self._sync()
        finally:
            self._cond.acquire()
            self._syncing = False
            self._cond.notify_all()
        self._durable = max(self._durable, target)

    def _start_thread(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._interval_loop, name="comply-lab-fsync", daemon=True
            )
            self._thread.start()

    def _interval_loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            if self._durable < self._written:
                try:
                    self.sync_now()
                except OSError:
                    # Retried at the next tick; close() and "always" waiters raise it.
                    continue


def fsync_path(path: Path) -> None:
    """Fsync a file or directory by path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
