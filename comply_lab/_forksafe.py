"""Reset per-process state (locks, threads, writer ids) in children after ``os.fork``.

A forked child inherits its parent's objects. Without a reset it would share the parent's
writer id and chain position, and could inherit a lock held by another thread at the
moment of the fork. Objects that hold such state register here.
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol


class ForkAware(Protocol):
    """An object that knows how to reset itself in a forked child."""

    def _after_fork(self) -> None: ...


_registry: weakref.WeakSet[ForkAware] = weakref.WeakSet()


def register(obj: ForkAware) -> None:
    """Call ``obj._after_fork()`` in every child forked while ``obj`` is alive."""
    _registry.add(obj)


def _reset_all() -> None:
    for obj in list(_registry):
        obj._after_fork()


os.register_at_fork(after_in_child=_reset_all)
