"""Time handling shared by writers and readers: everything is timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from comply_lab.errors import InvalidQueryError

TimeLike = datetime | date | str


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


def day_start(day: date) -> datetime:
    """Return midnight UTC at the start of ``day``."""
    return datetime.combine(day, time(), tzinfo=UTC)


def days_between(start: date, end: date) -> list[date]:
    """Return every day from ``start`` to ``end``, both included."""
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
