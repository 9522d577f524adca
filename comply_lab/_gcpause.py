"""Pausing the cyclic garbage collector while many entries are built at once.

Decoding a day of entries creates tens of thousands of dicts, lists and entry objects
that all survive; each allocation burst makes CPython's collector traverse them again,
which took a third of the time of a one-day query. None of them form reference cycles,
so collection can wait until the batch is built. Nested and concurrent pauses share one
counter: the collector is switched back on when the last pause ends, and only if it was
on when the first began (a program that disabled it keeps it disabled).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def paused_gc() -> Iterator[None]:
    """Run the block with the cyclic garbage collector paused."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
