"""Time handling shared by writers and readers: everything is timezone-aware UTC.

[`utc_now`][comply_lab._time.utc_now] is the one clock of the package: every default "now"
(entry timestamps, ids, retention cut-offs, record times, relative bounds such as ``"7d"``)
reads it. It is the system clock, moved by ``$COMPLY_LAB_CLOCK_SHIFT`` seconds when that
variable is set: a rehearsal of what retention will do in a year, or a test suite that must see
the same "now" on any day, shifts every part of comply_lab at once, in this process and in every
process it starts. Only deadlines that another system keeps on its own clock (S3 Object Lock)
read the unshifted [`system_now`][comply_lab._time.system_now].
"""

from __future__ import annotations

import functools
import os
import re
import time as _clock
from datetime import UTC, date, datetime, time, timedelta

from comply_lab.errors import ConfigurationError, InvalidQueryError

CLOCK_SHIFT_VARIABLE = "COMPLY_LAB_CLOCK_SHIFT"
"""The environment variable holding the clock's shift, in seconds (may be negative)."""

TimeLike = datetime | date | str

_RELATIVE = re.compile(r"\s*(\d+)\s*(m|h|d|w)\s*")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime (shifted, see the module's text).

    Raises:
        ConfigurationError: ``$COMPLY_LAB_CLOCK_SHIFT`` is set but is not a number.
    """
    return datetime.now(UTC) + timedelta(microseconds=_shift_us())


def system_now() -> datetime:
    """Return the system clock's time, never shifted.

    For deadlines another system keeps on its own clock: S3 Object Lock's retain-until
    dates. A rehearsal that shifts comply_lab's clock must not shorten a real lock, nor
    take an expired one for a running one.
    """
    return datetime.now(UTC)


def utc_now_us() -> int:
    """Return the current time in microseconds since 1970 (the logging path's fast clock)."""
    return _clock.time_ns() // 1000 + _shift_us()


def _shift_us() -> int:
    text = os.environ.get(CLOCK_SHIFT_VARIABLE)
    return 0 if not text else _parse_shift(text)


@functools.lru_cache(maxsize=8)
def _parse_shift(text: str) -> int:
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not abs(seconds) < 1e11:  # also refuses nan and inf: about 3,000 years either way
        raise ConfigurationError(
            f"{CLOCK_SHIFT_VARIABLE}={text!r} is not a number of seconds; unset it, or set "
            "e.g. 31536000 to run a year ahead"
        )
    return round(seconds * 1_000_000)


def to_utc(value: TimeLike, *, name: str = "time") -> datetime:
    """Return ``value`` as an aware UTC datetime.

    Naive datetimes (and ISO strings without an offset) are read as UTC, which is what
    ``datetime.utcnow()`` callers mean; aware ones are converted. A bare date means its
    midnight UTC.

    Raises:
        InvalidQueryError: ``value`` is not a datetime, date or ISO 8601 string.
    """
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidQueryError(
                f"{name}: {value!r} is not an ISO 8601 time; use e.g. '2026-01-29T10:30:00Z'"
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    raise InvalidQueryError(
        f"{name}: expected a datetime, date or ISO 8601 string, got {type(value).__name__}"
    )


def to_range(
    start: TimeLike | None, end: TimeLike | None
) -> tuple[datetime | None, datetime | None]:
    """Return a query range as aware UTC bounds, both included; None means unbounded.

    Bounds are instants, read as [`to_utc`][comply_lab._time.to_utc] does, with two
    conveniences: a bare day (a ``date`` or a ``"YYYY-MM-DD"`` string) given as ``end`` means
    the *end* of that day, so ``("2026-01-29", "2026-01-29")`` is the whole of 29 January, as in
    pandas; and a bound of ``"30m"``, ``"24h"``, ``"7d"`` or ``"2w"`` means that long before
    now.

    Raises:
        InvalidQueryError: a bound is not a time, or ``start`` is after ``end``.
    """
    lo = None if start is None else _bound(start, "start")
    hi = None if end is None else _bound(end, "end")
    if hi is not None and _is_bare_day(end):
        hi = day_end(hi.date())
    if lo is not None and hi is not None and lo > hi:
        raise InvalidQueryError(f"start {lo.isoformat()} is after end {hi.isoformat()}")
    return lo, hi


def _bound(value: TimeLike, name: str) -> datetime:
    """Read a bound: a time as `to_utc` reads it, or a span back from now."""
    relative = _RELATIVE.fullmatch(value) if isinstance(value, str) else None
    if relative is None:
        return to_utc(value, name=name)
    amount, unit = relative.groups()
    try:
        return utc_now() - timedelta(**{_UNITS[unit]: int(amount)})
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


def _is_bare_day(value: object) -> bool:
    if isinstance(value, str):
        return len(value.strip()) == 10
    return isinstance(value, date) and not isinstance(value, datetime)


def days_before(moment: datetime, days: int) -> datetime:
    """Return ``moment`` minus ``days`` days, or the earliest time there is if that is earlier."""
    try:
        return moment - timedelta(days=days)
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


def day_start(day: date) -> datetime:
    """Return midnight UTC at the start of ``day``."""
    return datetime.combine(day, time(), tzinfo=UTC)


def day_end(day: date) -> datetime:
    """Return the last microsecond of ``day`` in UTC."""
    return datetime.combine(day, time.max, tzinfo=UTC)  # no overflow on 9999-12-31
