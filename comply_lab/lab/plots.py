"""Evidence plots: matplotlib figures in one consistent, clean style.

Every function takes an entries DataFrame and returns an
[`EvidenceFigure`][comply_lab.lab.plots.EvidenceFigure] (a matplotlib ``Figure``) with a title,
axis labels with units, legends beside the data rather than on it, and a footnote naming the
period, the number of entries and where they come from. Figures are built without pyplot, so
they work in scripts, servers and notebooks alike, and Jupyter shows them as pictures (PNG and
SVG) with no ``%matplotlib`` magic; [`save`][comply_lab.lab.plots.save] writes PNG, SVG or PDF
by the file suffix.

Plots over periods take the ``span`` the entries were selected for: periods only partly
inside it (the first and last day of "the last 30 days") are drawn hollow and marked
*partial*, so a half-day's rate is not read as a full day's.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from cycler import cycler
from matplotlib.figure import Figure

from comply_lab.errors import InvalidQueryError
from comply_lab.lab import stats

PALETTE = ["#3b6ea8", "#d1603d", "#5a9e6f", "#8c6bb1", "#c9a227", "#6b6b6b"]
STYLE: dict[str, Any] = {
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.8,
    "axes.titleweight": "bold",
    "axes.titlesize": 12,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.frameon": False,
    "font.size": 10,
    "axes.prop_cycle": cycler(color=PALETTE),
    "figure.dpi": 110,
}
FORMATS = (".png", ".svg", ".pdf")
ALERT = "#cf222e"
Span = tuple[datetime | None, datetime | None] | None
"""The period entries were selected for (aware UTC, None: open), or None if not known."""


class EvidenceFigure(Figure):
    """A matplotlib Figure that Jupyter displays as a picture, PNG and SVG.

    Notebooks, the explorer and anything else that shows rich output pick the format
    they render best; nothing needs ``%matplotlib inline`` or pyplot.
    """

    def _repr_png_(self) -> bytes:
        return self._rendered("png")

    def _repr_svg_(self) -> str:
        return self._rendered("svg").decode("utf-8")

    def _rendered(self, fmt: str) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format=fmt, bbox_inches="tight")
        return buffer.getvalue()


@contextmanager
def _style() -> Iterator[None]:
    with mpl.rc_context(STYLE):  # type: ignore[arg-type]
        yield


def _figure(
    frame: pd.DataFrame, title: str, source: str, span: Span = None, ncols: int = 1
) -> EvidenceFigure:
    figure = EvidenceFigure(figsize=(8 if ncols == 1 else 11, 4.6), layout="constrained")
    figure.subplots(1, ncols)
    figure.suptitle(title, fontweight="bold", fontsize=13)
    figure.text(
        0.01,
        0.0,
        _footnote(frame, source, span),
        fontsize=8,
        color="#555555",
        ha="left",
        va="bottom",
    )
    figure.get_layout_engine().set(rect=(0, 0.04, 1, 0.96))  # type: ignore[union-attr,call-arg]
    return figure


def _footnote(frame: pd.DataFrame, source: str, span: Span) -> str:
    first, last = covered(frame, span)
    if first is None or last is None:
        period = "no entries"
    else:
        period = f"{first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC"
    origin = f" · {source}" if source else ""
    return f"{period} · {len(frame):,} entries{origin}"


def covered(frame: pd.DataFrame, span: Span) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """Return the period covered: the span asked for, its open ends closed by the data."""
    lo, hi = span if span is not None else (None, None)
    has_data = "timestamp" in frame and len(frame)
    first = pd.Timestamp(lo) if lo is not None else frame["timestamp"].min() if has_data else None
    last = pd.Timestamp(hi) if hi is not None else frame["timestamp"].max() if has_data else None
    return first, last


def partial_periods(periods: pd.Series, freq: str, frame: pd.DataFrame, span: Span) -> np.ndarray:
    """Return which periods lie only partly inside the period covered (under 98% of it)."""
    first, last = covered(frame, span)
    if first is None or last is None or periods.empty:
        return np.zeros(len(periods), dtype=bool)
    starts = pd.DatetimeIndex(periods)
    ends = starts + pd.tseries.frequencies.to_offset(stats.CALENDAR.get(freq, freq))
    share = [
        (min(end, last) - max(start, first)) / (end - start)
        for start, end in zip(starts, ends, strict=True)
    ]
    return np.asarray(share) < 0.98


def _legend(axes: Any) -> None:
    """Put the legend beside the plot, where it cannot cover data."""
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def _mark_partial(axes: Any, x: pd.Series, y: pd.Series, partial: np.ndarray, colour: str) -> None:
    """Draw partial periods hollow, labelled once."""
    if partial.any():
        axes.scatter(
            x[partial],
            y[partial],
            s=46,
            facecolors="white",
            edgecolors=colour,
            linewidths=1.4,
            zorder=3,
            label="partial period",
        )


def save(figure: Figure, path: str | os.PathLike[str]) -> Path:
    """Write a figure as PNG, SVG or PDF, chosen by the suffix of ``path``.

    Raises:
        InvalidQueryError: the suffix is not one of .png, .svg, .pdf.
    """
    target = Path(path)
    if target.suffix.lower() not in FORMATS:
        raise InvalidQueryError(f"{target.name}: save plots as {', '.join(FORMATS)}")
    figure.savefig(target, bbox_inches="tight")
    return target


def latency_distribution(frame: pd.DataFrame, source: str = "", span: Span = None) -> Figure:
    """Histogram of latencies (log scale), served and blocked apart, p50/p95/p99 marked."""
    with _style():
        figure = _figure(frame, "Latency distribution", source, span)
        axes = figure.axes[0]
        values = frame["latency_ms"].to_numpy(dtype="float64", na_value=np.nan)
        passed = (
            frame["safety_passed"].fillna(True).to_numpy(dtype=bool)
            if "safety_passed" in frame
            else np.ones(len(frame), dtype=bool)
        )
        usable = np.isfinite(values) & (values > 0)
        if usable.any():
            positive = values[usable]
            bins = np.logspace(np.log10(positive.min()), np.log10(positive.max()) + 1e-9, 60)
            served, blocked = values[usable & passed], values[usable & ~passed]
            axes.hist(
                [served, blocked],
                bins=list(bins),
                stacked=True,
                color=[PALETTE[0], ALERT],
                alpha=0.85,
                label=[f"served (n={len(served):,})", f"blocked (n={len(blocked):,})"],
            )
            axes.set_xscale("log")
            for p, colour in zip((50, 95, 99), ("#333333", PALETTE[4], PALETTE[3]), strict=True):
                value = float(np.percentile(positive, p))
                axes.axvline(
                    value,
                    color=colour,
                    linestyle="--",
                    linewidth=1.4,
                    label=f"p{p} = {value:,.0f} ms",
                )
            _legend(axes)
        axes.set_xlabel("latency (ms, log scale)")
        axes.set_ylabel("entries")
    return figure


def latency_over_time(
    frame: pd.DataFrame, freq: str = "D", source: str = "", span: Span = None
) -> Figure:
    """Latency percentiles (p50, p95, p99) per period."""
    with _style():
        figure = _figure(frame, "Latency percentiles over time", source, span)
        axes = figure.axes[0]
        periods = frame.assign(_period=stats.period_start(frame["timestamp"], freq))
        result = stats.latency_stats(periods, by="_period")
        partial = partial_periods(result["_period"], freq, frame, span)
        for p, colour in zip((50, 95, 99), PALETTE, strict=False):
            axes.plot(
                result["_period"],
                result[f"p{p}_ms"],
                marker="o",
                markersize=3,
                color=colour,
                label=f"p{p}",
            )
            _mark_partial(axes, result["_period"], result[f"p{p}_ms"], partial, colour)
        axes.set_ylabel("latency (ms)")
        axes.set_xlabel(f"period ({_period_name(freq)}, UTC)")
        _legend(axes)
        figure.autofmt_xdate()
    return figure


def failure_rate_over_time(
    frame: pd.DataFrame, freq: str = "D", source: str = "", span: Span = None
) -> Figure:
    """Safety failure rate per period with its Wilson 95% band and the overall rate."""
    with _style():
        figure = _figure(frame, "Safety failure rate over time", source, span)
        axes = figure.axes[0]
        result = _period_rates(frame, freq)
        if len(result) and "_period" in result:
            axes.fill_between(
                result["_period"],
                100 * result["ci_low"],
                100 * result["ci_high"],
                color=PALETTE[0],
                alpha=0.2,
                label="95% confidence (Wilson)",
            )
            rate = 100 * result["failure_rate"]
            axes.plot(
                result["_period"],
                rate,
                color=PALETTE[0],
                marker="o",
                markersize=3,
                label=f"failure rate per {_period_name(freq)}",
            )
            overall = 100 * result["failures"].sum() / max(int(result["entries"].sum()), 1)
            axes.axhline(
                overall,
                color="#555555",
                linestyle="--",
                linewidth=1,
                label=f"overall {overall:.2f}%",
            )
            partial = partial_periods(result["_period"], freq, frame, span)
            _mark_partial(axes, result["_period"], rate, partial, PALETTE[0])
            _legend(axes)
        _rate_axes(figure, axes, freq)
    return figure


def _period_rates(frame: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Return the failure rates per period (column ``_period``)."""
    periods = frame.assign(_period=stats.period_start(frame["timestamp"], freq))
    return stats.safety_rates(periods, by="_period")


def _rate_axes(figure: Figure, axes: Any, freq: str) -> None:
    """Label the axes of a failure-rate plot over time."""
    axes.set_ylabel("entries failing safety checks (%)")
    axes.set_xlabel(f"period ({_period_name(freq)}, UTC)")
    axes.set_ylim(bottom=0)
    figure.autofmt_xdate()


def failure_rate_control_chart(
    frame: pd.DataFrame, freq: str = "D", source: str = "", span: Span = None
) -> Figure:
    """Draw a p-chart of the failure rate per period: centre line and 3-sigma limits.

    The limits of each period come from its own count (p̄ ± 3·sqrt(p̄(1-p̄)/n)), so small
    days get wide limits; periods outside them are marked: the rate changed more than
    chance explains.
    """
    with _style():
        figure = _figure(frame, "Failure rate control chart (p-chart, 3σ limits)", source, span)
        axes = figure.axes[0]
        result = _period_rates(frame, freq)
        if len(result) and "_period" in result:
            n = result["entries"].to_numpy(dtype="float64")
            centre = float(result["failures"].sum() / n.sum())
            sigma = np.sqrt(centre * (1 - centre) / n)
            upper, lower = np.minimum(centre + 3 * sigma, 1), np.maximum(centre - 3 * sigma, 0)
            x, rate = result["_period"], 100 * result["failure_rate"]
            axes.step(x, 100 * upper, where="mid", color=ALERT, linewidth=1, label="3σ limits")
            axes.step(x, 100 * lower, where="mid", color=ALERT, linewidth=1)
            axes.axhline(
                100 * centre, color="#555555", linewidth=1, label=f"centre {100 * centre:.2f}%"
            )
            axes.plot(x, rate, color=PALETTE[0], marker="o", markersize=4, label="failure rate")
            out = (result["failure_rate"] > upper) | (result["failure_rate"] < lower)
            if out.any():
                axes.scatter(
                    x[out], rate[out], s=70, color=ALERT, zorder=4, label="outside the limits"
                )
            _mark_partial(axes, x, rate, partial_periods(x, freq, frame, span), PALETTE[0])
            _legend(axes)
        _rate_axes(figure, axes, freq)
    return figure


def detector_breakdown(frame: pd.DataFrame, source: str = "", span: Span = None) -> Figure:
    """Entries per safety detector, most frequent at the top."""
    with _style():
        figure = _figure(frame, "Safety detectors triggered", source, span)
        axes = figure.axes[0]
        counts = stats.detector_counts(frame).iloc[::-1]
        axes.barh(counts["detector"], counts["entries"], color=PALETTE[1])
        for y, value in enumerate(counts["entries"]):
            axes.text(value, y, f" {value:,}", va="center", fontsize=8)
        axes.set_xlabel("entries where the detector fired")
        axes.set_ylabel("detector")
    return figure


def cooccurrence_heatmap(frame: pd.DataFrame, source: str = "", span: Span = None) -> Figure:
    """How often detectors fire together; the diagonal (each one alone) is grey.

    The colour scale covers the off-diagonal cells only, so pairs stay visible beside
    detectors that fire far more often on their own.
    """
    with _style():
        figure = _figure(frame, "Detector co-occurrence", source, span)
        axes = figure.axes[0]
        table = stats.detector_cooccurrence(frame)
        axes.grid(False)
        values = table.to_numpy()
        if values.size:
            diagonal = np.eye(len(values), dtype=bool)
            pairs = np.ma.masked_where(diagonal, values)
            top = max(int(pairs.max()) if pairs.count() else 0, 1)
            cmap = mpl.colormaps["Blues"].with_extremes(bad="#e8e8e8")
            image = axes.imshow(pairs, cmap=cmap, vmin=0, vmax=top)
            axes.set_xticks(range(len(table)), table.columns, rotation=35, ha="right")
            axes.set_yticks(range(len(table)), table.index)
            for (i, j), value in np.ndenumerate(values):
                text = f"{value:,}\ntotal" if i == j else f"{value:,}"
                dark = i != j and value > top / 2
                axes.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=7 if i == j else 8,
                    color="white" if dark else "#333333" if i != j else "#777777",
                )
            figure.colorbar(image, ax=axes, label="entries where both fired")
        axes.set_xlabel("detector")
        axes.set_ylabel("detector")
    return figure


def volume_timeline(
    frame: pd.DataFrame, freq: str = "h", source: str = "", span: Span = None
) -> Figure:
    """Entries per period, with gaps in logging (see `stats.gaps`) shaded."""
    with _style():
        figure = _figure(frame, "Logging volume and gaps", source, span)
        axes = figure.axes[0]
        counts = stats.volume(frame, freq)
        axes.plot(
            counts["period"], counts["entries"], color=PALETTE[0], linewidth=1, label="entries"
        )
        found = stats.gaps(frame)
        for i, (start, end) in enumerate(zip(found["gap_start"], found["gap_end"], strict=True)):
            label = "gap in logging" if i == 0 else None
            axes.axvspan(start, end, color=PALETTE[1], alpha=0.25, label=label)
        axes.set_ylabel(f"entries per {_period_name(freq)}")
        axes.set_xlabel("time (UTC)")
        _legend(axes)
        figure.autofmt_xdate()
    return figure


def model_comparison(frame: pd.DataFrame, source: str = "", span: Span = None) -> Figure:
    """Per model, with its count: failure rate with its 95% interval, p50 and p95 latency."""
    with _style():
        figure = _figure(frame, "Models compared", source, span, ncols=2)
        rates_axes, latency_axes = figure.axes
        rates = stats.safety_rates(frame, by="model").sort_values("failure_rate")
        y = np.arange(len(rates))
        spread = np.vstack(
            [rates["failure_rate"] - rates["ci_low"], rates["ci_high"] - rates["failure_rate"]]
        )
        errors = np.clip(spread * 100, 0, None)  # rounding can leave a bound 1e-17 past its rate
        rates_axes.errorbar(
            100 * rates["failure_rate"], y, xerr=errors, fmt="o", color=PALETTE[1], capsize=3
        )
        names = [f"{m} (n={n:,})" for m, n in zip(rates["model"], rates["entries"], strict=True)]
        rates_axes.set_yticks(y, names)
        rates_axes.set_xlabel("failure rate (%, 95% interval)")
        rates_axes.set_ylabel("model")
        latency = stats.latency_stats(frame, by="model").set_index("model").loc[rates["model"]]
        latency_axes.barh(y - 0.2, latency["p50_ms"], height=0.4, label="p50")
        latency_axes.barh(y + 0.2, latency["p95_ms"], height=0.4, label="p95")
        latency_axes.set_yticks(y, [])
        latency_axes.set_xlabel("latency (ms)")
        _legend(latency_axes)
    return figure


ALL: dict[str, Callable[..., Figure]] = {
    "latency_distribution": latency_distribution,
    "latency_over_time": latency_over_time,
    "failure_rate_over_time": failure_rate_over_time,
    "failure_rate_control_chart": failure_rate_control_chart,
    "detector_breakdown": detector_breakdown,
    "cooccurrence_heatmap": cooccurrence_heatmap,
    "volume_timeline": volume_timeline,
    "model_comparison": model_comparison,
}
"""Every evidence plot by name."""


def _period_name(freq: str) -> str:
    return {"h": "hour", "D": "day", "W": "week", "MS": "month", "ME": "month"}.get(freq, freq)
