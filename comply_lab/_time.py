"""Time handling shared by writers and readers: everything is timezone-aware UTC."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

from comply_lab.errors import InvalidQueryError

TimeLike = datetime | date | str

_RELATIVE = re.compile(r"\s*(\d+)\s*(m|h|d|w)\s*")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


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

    Bounds are instants, read as :func:`to_utc` does, with two conveniences: a bare day
    (a ``date`` or a ``"YYYY-MM-DD"`` string) given as ``end`` means the *end* of that day,
    so ``("2026-01-29", "2026-01-29")`` is the whole of 29 January, as in pandas; and a
    bound of ``"30m"``, ``"24h"``, ``"7d"`` or ``"2w"`` means that long before now.

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
    """Read a bound: a time as :func:`to_utc` reads it, or a span back from now."""
    relative = _RELATIVE.fullmatch(value) if isinstance(value, str) else None
    if relative is None:
        return to_utc(value, name=name)
    amount, unit = relative.groups()
    try:
        return datetime.now(UTC) - timedelta(**{_UNITS[unit]: int(amount)})
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
