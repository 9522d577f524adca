"""Daily retention in the background of a long-running asyncio service.

The original tutorial's loop, done right: the time of day is UTC whatever the machine's
zone (no DST surprises), a failed run is logged (``logging`` logger
``comply_lab.retention``) and retried at the next scheduled time instead of ending the
loop, and the task stops cleanly.

Example:
    >>> async def main():                                            # doctest: +SKIP
    ...     logger = AuditLogger("/var/log/ai-audit", retention_days=365)
    ...     cleanup = logger.schedule_cleanup(hour=2)  # 02:00 UTC daily
    ...     ...                                        # serve requests
    ...     await cleanup.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from comply_lab._time import to_utc, utc_now
from comply_lab.errors import InvalidQueryError

if TYPE_CHECKING:
    from comply_lab.audit.logger import AuditLogger

log = logging.getLogger("comply_lab.retention")


def next_run(now: datetime, hour: int, minute: int = 0) -> datetime:
    """Return the first ``hour:minute`` UTC strictly after ``now`` (naive means UTC)."""
    now = to_utc(now, name="now")
    candidate = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return candidate if candidate > now else candidate + timedelta(days=1)


class DailyCleanup:
    """Runs ``logger.cleanup_expired()`` every day at ``hour:minute`` UTC.

    Args:
        logger: The logger whose retention to apply.
        hour: Hour of the day, UTC (0-23).
        minute: Minute of the hour (0-59).
        clock: Returns the current time; defaults to the logger's clock, else the system's.
        sleep: Awaits a number of seconds; ``asyncio.sleep`` unless replaced (tests).

    Attributes:
        runs: Successful runs so far.
        failures: Failed runs so far (each logged with its traceback).
        last_deleted: Entries deleted by the last successful run.
        last_error: The exception of the last failed run.

    Raises:
        InvalidQueryError: ``hour`` or ``minute`` is out of range.
    """

    def __init__(
        self,
        logger: AuditLogger,
        *,
        hour: int = 2,
        minute: int = 0,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if not (isinstance(hour, int) and 0 <= hour <= 23):
            raise InvalidQueryError(f"hour must be an int from 0 to 23 (UTC), got {hour!r}")
        if not (isinstance(minute, int) and 0 <= minute <= 59):
            raise InvalidQueryError(f"minute must be an int from 0 to 59, got {minute!r}")
        self.logger = logger
        self.hour = hour
        self.minute = minute
        self._clock = clock or logger.clock or (lambda: utc_now())
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None
        self.runs = 0
        self.failures = 0
        self.last_deleted: int | None = None
        self.last_error: BaseException | None = None

    def __repr__(self) -> str:
        return (
            f"DailyCleanup(at={self.hour:02d}:{self.minute:02d} UTC, runs={self.runs}, "
            f"failures={self.failures}, running={self.running})"
        )

    @property
    def running(self) -> bool:
        """Whether the background task is alive."""
        return self._task is not None and not self._task.done()

    def start(self) -> DailyCleanup:
        """Start the background task in the running event loop; return self."""
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._loop())
        return self

    async def stop(self) -> None:
        """Stop the background task (a run in progress is cancelled between steps)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            target = next_run(self._clock(), self.hour, self.minute)
            while (remaining := (target - to_utc(self._clock())).total_seconds()) > 0:
                await self._sleep(remaining)
            await self.run_once()

    async def run_once(self) -> None:
        """Apply retention now; log the outcome, never raise (except cancellation)."""
        try:
            deleted = await self.logger.cleanup_expired()
        except Exception as err:
            self.failures += 1
            self.last_error = err
            log.exception("retention run failed; retrying at the next scheduled time")
            return
        self.runs += 1
        self.last_deleted = deleted
        log.info("retention run deleted %d expired entries", deleted)
