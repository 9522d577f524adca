"""Running one task per day partition, serially or on an executor, results in order."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from typing import Any, TypeVar

T = TypeVar("T")


def run_tasks(
    function: Callable[..., T], tasks: Sequence[tuple[Any, ...]], executor: Executor | None
) -> Iterator[T]:
    """Yield ``function(*task)`` for each task, in the order of ``tasks``.

    Without an executor the tasks run here, one at a time, as the results are consumed;
    with one (a ``ProcessPoolExecutor``, Dask's ``client.get_executor()``) they are all
    submitted at once and the results come back in order.
    """
    if executor is None or not tasks:
        return (function(*task) for task in tasks)
    return executor.map(function, *zip(*tasks, strict=True))
