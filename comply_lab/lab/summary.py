"""``log.stats(...)``: the statistics and plots of one selection of entries."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import pandas as pd
from matplotlib.figure import Figure

from comply_lab.errors import InvalidQueryError
from comply_lab.lab import plots, stats
from comply_lab.lab.compare import Comparison, compare_latency, compare_rates
from comply_lab.model.entry import CALL_FIELDS
from comply_lab.storage.base import Storage
from comply_lab.storage.capabilities import Located
from comply_lab.storage.scan import select_segments

STATS_COLUMNS = ["id", "timestamp", *CALL_FIELDS]
"""The columns statistics read (never hashes or content)."""


_FORMATS = {"jsonl": "JSONL", "parquet": "Parquet"}


def describe(storage: Storage, span: plots.Span = None) -> str:
    """Say in words where a log is and what its segments in ``span`` are stored as.

    For example ``"Parquet log at /var/log/ai-audit"``, ``"JSONL and Parquet log at
    s3://audit/prod"`` or ``"JSONL log in memory"``.
    """
    lo, hi = span if span is not None else (None, None)
    formats = sorted({segment.format for segment in select_segments(storage, lo, hi)})
    kind = " and ".join(_FORMATS.get(f, f) for f in formats) or "empty"
    if isinstance(storage, Located):
        where = "at " + storage.location().removeprefix("file://").rstrip("/")
    else:
        where = f"in {type(storage).__name__.removesuffix('Storage').lower() or 'a store'}"
    return f"{kind} log {where}"


class Stats:
    """Statistics and evidence plots over one DataFrame of entries.

    Every method returns a tidy DataFrame (see `comply_lab.lab.stats`) or a matplotlib Figure
    (see [`comply_lab.lab.plots`][comply_lab.lab.plots]).

    Args:
        frame: Entries, with at least the columns the methods used need.
        source: Where the entries come from, in words, for plot footnotes.
        span: The period the entries were selected for (see
            [`plots.Span`][comply_lab.lab.plots.Span]).

    Example:
        >>> s = log.stats("2026-01-01", "2026-01-31")  # doctest: +SKIP
        >>> s.safety(by="model")                        # doctest: +SKIP
    """

    def __init__(self, frame: pd.DataFrame, source: str = "", span: plots.Span = None) -> None:
        self.frame = frame
        self.source = source
        self.span = span

    def __repr__(self) -> str:
        return f"Stats({len(self.frame):,} entries from {self.source or 'a DataFrame'})"

    def text(self, by: Literal["model", "provider"] = "model") -> str:
        """Return a plain-text summary: volume, safety failures and latency, per group too.

        Args:
            by: The column to break the figures down by (``"model"`` or ``"provider"``).
        """
        if self.frame.empty:
            return "no entries"
        safety = self.safety().iloc[0]
        latency = self.latency().iloc[0]
        conversations = self.frame["conversation_id"].nunique()
        lines = [
            f"entries           {int(safety['entries']):>10,}",
            f"conversations     {conversations:>10,}",
            f"safety failures   {int(safety['failures']):>10,}  ({safety['failure_rate']:.2%}, "
            f"95% CI {safety['ci_low']:.2%} to {safety['ci_high']:.2%})",
            f"latency mean      {latency['mean_ms']:>10.1f} ms",
            f"latency p95       {latency['p95_ms']:>10.1f} ms",
            "",
        ]
        grouped = self.safety(by=by).merge(self.latency(by=by), on=by)
        table = grouped.sort_values("entries", ascending=False)[
            [by, "entries", "failure_rate", "mean_ms", "p95_ms"]
        ]
        lines.append(
            table.to_string(
                index=False,
                formatters={
                    "failure_rate": "{:.1%}".format,
                    "mean_ms": "{:.1f}".format,
                    "p95_ms": "{:.1f}".format,
                },
            )
        )
        detectors = self.detectors()
        pairs = ", ".join(
            f"{d} {n}" for d, n in zip(detectors["detector"], detectors["entries"], strict=True)
        )
        lines += ["", f"detectors triggered: {pairs}"]
        return "\n".join(lines)

    def safety(self, by: stats.By = None) -> pd.DataFrame:
        """Failure rate with Wilson 95% interval, overall or per group."""
        return stats.safety_rates(self.frame, by)

    def latency(self, by: stats.By = None) -> pd.DataFrame:
        """Latency count, mean, percentiles and max in ms, overall or per group."""
        return stats.latency_stats(self.frame, by)

    def tokens(self, by: stats.By = None) -> pd.DataFrame:
        """Token totals and per-entry statistics."""
        return stats.token_stats(self.frame, by)

    def detectors(self) -> pd.DataFrame:
        """Entries per safety detector."""
        return stats.detector_counts(self.frame)

    def cooccurrence(self) -> pd.DataFrame:
        """Detector x detector co-occurrence counts."""
        return stats.detector_cooccurrence(self.frame)

    def block_reasons(self, top: int | None = 10) -> pd.DataFrame:
        """Return the most frequent block reasons."""
        return stats.block_reasons(self.frame, top)

    def alerts(self, top: int | None = 10) -> pd.DataFrame:
        """Return the most frequent alerts."""
        return stats.alert_counts(self.frame, top)

    def volume(self, freq: str = "D") -> pd.DataFrame:
        """Entries and failures per period: ``"h"``, ``"D"``, ``"W"``, ``"MS"``..."""
        return stats.volume(self.frame, freq)

    def gaps(self) -> pd.DataFrame:
        """Silences in logging where traffic was expected."""
        return stats.gaps(self.frame)

    def health(self, now: datetime | None = None) -> pd.DataFrame:
        """Return the tutorial's health metrics."""
        return stats.health(self.frame, now)

    def plot(self, name: str) -> Figure:
        """Return one evidence plot by name (see ``plots.ALL``).

        Raises:
            InvalidQueryError: no plot has that name.
        """
        if name not in plots.ALL:
            raise InvalidQueryError(f"no plot {name!r}; plots are: {', '.join(plots.ALL)}")
        return plots.ALL[name](self.frame, source=self.source, span=self.span)

    def compare(self, other: Stats, by: stats.By = None) -> Comparison:
        """Compare these entries (the baseline) with ``other``'s, to see what changed.

        Failure rates with Newcombe intervals of the difference, a two-proportion (or Fisher's
        exact) test, Holm-adjusted across groups; latency percentiles with bootstrap intervals.
        See [`comply_lab.lab.compare`][comply_lab.lab.compare].
        """
        return Comparison(
            compare_rates(self.frame, other.frame, by),
            compare_latency(self.frame, other.frame, by),
        )

    def plots(self) -> dict[str, Figure]:
        """Return every evidence plot, by name."""
        return {name: self.plot(name) for name in plots.ALL}
