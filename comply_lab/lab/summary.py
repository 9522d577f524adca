"""``log.stats(...)``: the statistics and plots of one selection of entries."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from matplotlib.figure import Figure

from comply_lab.errors import InvalidQueryError
from comply_lab.lab import plots, stats

STATS_COLUMNS = [
    "id",
    "timestamp",
    "provider",
    "model",
    "conversation_id",
    "safety_passed",
    "detectors_triggered",
    "block_reason",
    "alerts",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "metadata",
]
"""The columns statistics read (never hashes or content)."""


class Stats:
    """Statistics and evidence plots over one DataFrame of entries.

    Every method returns a tidy DataFrame (see :mod:`comply_lab.lab.stats`) or a
    matplotlib Figure (see :mod:`comply_lab.lab.plots`).

    Args:
        frame: Entries, with at least the columns the methods used need.
        source: Where the entries come from, for plot footnotes.

    Example:
        >>> s = log.stats("2026-01-01", "2026-01-31")  # doctest: +SKIP
        >>> s.safety(by="model")                        # doctest: +SKIP
    """

    def __init__(self, frame: pd.DataFrame, source: str = "") -> None:
        self.frame = frame
        self.source = source

    def __repr__(self) -> str:
        return f"Stats({len(self.frame):,} entries from {self.source or 'a DataFrame'})"

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
        """Entries and failures per period."""
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
        return plots.ALL[name](self.frame, source=self.source)

    def plots(self) -> dict[str, Figure]:
        """Return every evidence plot, by name."""
        return {name: self.plot(name) for name in plots.ALL}
