"""What a lab read asks for: a time range, filters and columns, checked once."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import TypedDict

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from comply_lab._time import TimeLike, to_range
from comply_lab.errors import InvalidQueryError
from comply_lab.storage.arrow import COLUMNS, SCHEMA
from comply_lab.storage.deletions import Hidden

_UTC_US = pa.timestamp("us", tz="UTC")


def _names(value: str | Iterable[str] | None, what: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Iterable) or not all(isinstance(v, str) for v in value):
        raise InvalidQueryError(f"{what}: expected a str or a list of str, got {value!r}")
    names = tuple(value)
    if not all(isinstance(v, str) for v in names):
        raise InvalidQueryError(f"{what}: expected a str or a list of str, got {value!r}")
    return names


class Filters(TypedDict, total=False):
    """The keyword filters every lab read accepts (see `comply_lab.Log.entries`)."""

    provider: str | Iterable[str] | None
    model: str | Iterable[str] | None
    conversation_id: str | Iterable[str] | None
    safety_passed: bool | None
    detector: str | Iterable[str] | None
    ids: str | Iterable[str] | None
    columns: Iterable[str] | None


@dataclass(frozen=True)
class Query:
    """A validated read request.

    Attributes:
        start: Lower bound, aware UTC, included; None for unbounded.
        end: Upper bound, aware UTC, included; None for unbounded.
        provider: Keep rows whose provider is one of these.
        model: Keep rows whose model is one of these.
        conversation_id: Keep rows of these conversations.
        safety_passed: Keep only passed (True) or failed (False) rows.
        detector: Keep rows where one of these detectors fired.
        ids: Keep rows with these entry ids.
        columns: Columns to return, in order (all when None).
        hidden: The entries deleted on request, which every read leaves out (None: not looked up
            yet; the scan reads them from the store, see
            [`comply_lab.lab.scanner.hiding`][comply_lab.lab.scanner.hiding]).
    """

    start: datetime | None = None
    end: datetime | None = None
    provider: tuple[str, ...] | None = None
    model: tuple[str, ...] | None = None
    conversation_id: tuple[str, ...] | None = None
    safety_passed: bool | None = None
    detector: tuple[str, ...] | None = None
    ids: tuple[str, ...] | None = None
    columns: tuple[str, ...] = COLUMNS
    hidden: Hidden | None = field(default=None, compare=False)

    @classmethod
    def build(
        cls,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        *,
        provider: str | Iterable[str] | None = None,
        model: str | Iterable[str] | None = None,
        conversation_id: str | Iterable[str] | None = None,
        safety_passed: bool | None = None,
        detector: str | Iterable[str] | None = None,
        ids: str | Iterable[str] | None = None,
        columns: Iterable[str] | None = None,
        **unknown: object,
    ) -> Query:
        """Check the arguments of a read and return the query.

        Raises:
            InvalidQueryError: a bound, filter or column name is unusable, or a keyword is
                not a filter; the message names the closest valid one.
        """
        if unknown:
            raise InvalidQueryError(_unknown_filter(next(iter(unknown))))
        lo, hi = to_range(start, end)
        if safety_passed is not None and not isinstance(safety_passed, bool):
            raise InvalidQueryError(
                f"safety_passed: expected True, False or None, got {safety_passed!r}"
            )
        chosen = COLUMNS if columns is None else _names(columns, "columns") or ()
        strange = [c for c in chosen if c not in COLUMNS]
        if strange:
            raise InvalidQueryError(
                f"unknown column {strange[0]!r}{did_you_mean(strange[0], COLUMNS)}; "
                f"columns are: {', '.join(COLUMNS)}"
            )
        return cls(
            lo,
            hi,
            _names(provider, "provider"),
            _names(model, "model"),
            _names(conversation_id, "conversation_id"),
            safety_passed,
            _names(detector, "detector"),
            _names(ids, "ids"),
            tuple(chosen),
        )

    def expression(self) -> ds.Expression | None:
        """Return the filter the scan applies to decoded rows (None: keep them all)."""
        parts: list[ds.Expression] = []
        if self.start is not None:
            parts.append(pc.field("timestamp") >= pa.scalar(self.start, type=_UTC_US))
        if self.end is not None:
            parts.append(pc.field("timestamp") <= pa.scalar(self.end, type=_UTC_US))
        for name in ("provider", "model", "conversation_id", "ids"):
            values = getattr(self, name)
            if values is not None:
                column = "id" if name == "ids" else name
                parts.append(pc.field(column).isin(pa.array(values, pa.string())))
        if self.safety_passed is not None:
            parts.append(pc.field("safety_passed") == self.safety_passed)
        if not parts:
            return None
        result = parts[0]
        for part in parts[1:]:
            result = result & part
        return result

    def filter_columns(self) -> list[str]:
        """Return the columns [`expression`][comply_lab.lab.query.Query.expression] reads."""
        names = [
            column
            for column, value in (
                ("timestamp", self.start if self.start is not None else self.end),
                ("provider", self.provider),
                ("model", self.model),
                ("conversation_id", self.conversation_id),
                ("id", self.ids),
                ("safety_passed", self.safety_passed),
            )
            if value is not None
        ]
        return names

    def filters_on(self, day: date) -> tuple[ds.Expression | None, list[str]]:
        """Return `expression` and `filter_columns` for the rows of ``day``.

        On a day with entries deleted on request, the filter also leaves those out.
        """
        expression, columns = self.expression(), self.filter_columns()
        gone = self.hidden.on(day) if self.hidden else frozenset()
        if not gone:
            return expression, columns
        kept = ~pc.field("id").isin(pa.array(sorted(gone), pa.string()))
        return (kept if expression is None else expression & kept), [*columns, "id"]

    def hides(self, day: date) -> bool:
        """Whether rows of ``day`` are filtered for deletions (so day counts need a scan)."""
        return bool(self.hidden and self.hidden.on(day))

    def read_columns(self) -> list[str]:
        """Return the columns to read: those asked for plus those the filters need."""
        needed = list(self.columns)
        if self.detector is not None and "detectors_triggered" not in needed:
            needed.append("detectors_triggered")
        return needed

    def finish(self, table: pa.Table | pa.RecordBatch, keep: Sequence[str] = ()) -> pa.Table:
        """Apply what the scan cannot push down (the detector filter) and project.

        ``keep``: columns the reader added (not in the schema) to keep after the asked ones.
        """
        if self.detector is not None and table.num_rows:
            lists = table.column("detectors_triggered")
            hits = pc.is_in(pc.list_flatten(lists), pa.array(self.detector, pa.string()))
            rows = pc.unique(pc.filter(pc.list_parent_indices(lists), hits))
            table = table.take(rows)
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        return table.select([*self.columns, *keep])

    def reading_metadata(self, metadata_keys: Iterable[str]) -> Query:
        """Return the query that also reads ``metadata`` when keys are to be expanded."""
        if not metadata_keys or "metadata" in self.columns:
            return self
        return replace(self, columns=(*self.columns, "metadata"))

    @property
    def schema(self) -> pa.Schema:
        """The schema of the result."""
        return pa.schema([SCHEMA.field(c) for c in self.columns])


FILTERS = tuple(Filters.__annotations__)
"""The keyword filters of a read, in the order the documentation gives them."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest of ``choices``, or ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown_filter(name: str) -> str:
    return (
        f"{name!r} is not a filter{did_you_mean(name, FILTERS)}; filters are: {', '.join(FILTERS)}"
    )


VALUE_FILTERS = {"provider": "provider", "model": "model", "detector": "detectors_triggered"}
"""Filters by value, and the column each one reads."""


def unknown_values(query: Query, seen: pa.Table) -> list[str]:
    """Say which values of ``query``'s value filters no entry in ``seen`` has.

    Args:
        query: The query whose result was empty.
        seen: The columns of [`VALUE_FILTERS`][comply_lab.lab.query.VALUE_FILTERS] over the
            query's time range.
    """
    notes = []
    for name, column in VALUE_FILTERS.items():
        asked = getattr(query, name)
        if not asked:
            continue
        values = seen.column(column)
        if name == "detector":
            values = pc.list_flatten(values)
        known = sorted(v for v in pc.unique(values).to_pylist() if v is not None)
        for value in (v for v in asked if v not in known):
            listed = ", ".join(map(repr, known[:20])) or "none"
            notes.append(
                f"no entry in this range has {name} {value!r}{did_you_mean(value, known)}; "
                f"known: {listed}"
            )
    return notes
