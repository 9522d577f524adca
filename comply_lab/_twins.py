"""Derive async twins from synchronous functions, so each operation is written once.

The synchronous function is the implementation; its twin runs it in a worker thread
(``asyncio.to_thread``), so awaiting it never blocks the event loop and the synchronous
form works everywhere, including inside Jupyter where a loop is already running.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, Self, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def asyncify(fn: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Return the async twin of ``fn``, named like it without a ``_sync`` suffix.

    Example:
        >>> def count_sync() -> int:
        ...     return 3
        >>> count = asyncify(count_sync)
        >>> asyncio.run(count())
        3
    """

    @functools.wraps(fn)
    async def twin(*args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(fn, *args, **kwargs)

    twin.__name__ = fn.__name__.removesuffix("_sync")
    twin.__qualname__ = fn.__qualname__.removesuffix("_sync")
    twin.__doc__ = f"Async twin of ``{fn.__name__}`` (runs in a worker thread).\n\n{fn.__doc__}"
    return twin


class Closing:
    """Context management, sync and async, for objects with a ``close()`` method."""

    def close(self) -> None:
        """Release resources; subclasses override it."""

    async def aclose(self) -> None:
        """Async twin of [`close`][comply_lab._twins.Closing.close] (runs it in a worker thread)."""
        await asyncio.to_thread(self.close)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
