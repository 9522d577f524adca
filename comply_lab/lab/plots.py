"""Evidence plots: matplotlib figures in one consistent, clean style.

Every function takes an entries DataFrame and returns a :class:`matplotlib.figure.Figure`
with a title, axis labels with units, and a footnote naming the time range, the number of
entries and the data source. Figures are built without pyplot, so they work in scripts,
servers and notebooks alike; :func:`save` writes PNG, SVG or PDF by the file suffix.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


@contextmanager
def _style() -> Iterator[None]:
    with mpl.rc_context(STYLE):  # type: ignore[arg-type]
        yield


def _figure(frame: pd.DataFrame, title: str, source: str, ncols: int = 1) -> Figure:
    figure = Figure(figsize=(8 if ncols == 1 else 11, 4.6), layout="constrained")
    figure.subplots(1, ncols)
    figure.suptitle(title, fontweight="bold", fontsize=13)
    figure.text(
        0.01, 0.0, _footnote(frame, source), fontsize=8, color="#555555", ha="left", va="bottom"
    )
    figure.get_layout_engine().set(rect=(0, 0.04, 1, 0.96))  # type: ignore[union-attr,call-arg]
    return figure


def _footnote(frame: pd.DataFrame, source: str) -> str:
    if "timestamp" in frame and len(frame):
        first, last = frame["timestamp"].min(), frame["timestamp"].max()
        span = f"{first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC"
    else:
        span = "no entries"
    origin = f" · source: {source}" if source else ""
    return f"{span} · {len(frame):,} entries{origin}"


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


def latency_distribution(frame: pd.DataFrame, source: str = "") -> Figure:
    """Histogram of latencies (log scale) with the p50, p95 and p99 marked."""
    with _style():
        figure = _figure(frame, "Latency distribution", source)
        axes = figure.axes[0]
        values = frame["latency_ms"].dropna().to_numpy(dtype="float64")
        positive = values[values > 0]
        if len(positive):
            bins = np.logspace(np.log10(positive.min()), np.log10(positive.max()) + 1e-9, 60)
            axes.hist(positive, bins=list(bins), color=PALETTE[0], alpha=0.85)
            axes.set_xscale("log")
            for p, colour in zip((50, 95, 99), PALETTE[1:4], strict=True):
                value = float(np.percentile(values, p))
                axes.axvline(
                    value,
                    color=colour,
                    linestyle="--",
                    linewidth=1.4,
                    label=f"p{p} = {value:,.0f} ms",
                )
            axes.legend()
        axes.set_xlabel("latency (ms, log scale)")
        axes.set_ylabel("entries")
    return figure


def latency_over_time(frame: pd.DataFrame, freq: str = "D", source: str = "") -> Figure:
    """Latency percentiles (p50, p95, p99) per period."""
    with _style():
        figure = _figure(frame, "Latency percentiles over time", source)
        axes = figure.axes[0]
        periods = frame.assign(_period=frame["timestamp"].dt.floor(freq))
        result = stats.latency_stats(periods, by="_period")
        for p in (50, 95, 99):
            axes.plot(
                result["_period"], result[f"p{p}_ms"], marker="o", markersize=3, label=f"p{p}"
            )
        axes.set_ylabel("latency (ms)")
        axes.set_xlabel(f"period ({_period_name(freq)}, UTC)")
        axes.legend()
        figure.autofmt_xdate()
    return figure


def failure_rate_over_time(frame: pd.DataFrame, freq: str = "D", source: str = "") -> Figure:
    """Safety failure rate per period with its Wilson 95% confidence band."""
    with _style():
        figure = _figure(frame, "Safety failure rate over time", source)
        axes = figure.axes[0]
        periods = frame.assign(_period=frame["timestamp"].dt.floor(freq))
        result = stats.safety_rates(periods, by="_period")
        if len(result) and "_period" in result:
            axes.fill_between(
                result["_period"],
                100 * result["ci_low"],
                100 * result["ci_high"],
                color=PALETTE[0],
                alpha=0.2,
                label="95% confidence (Wilson)",
            )
            axes.plot(
                result["_period"],
                100 * result["failure_rate"],
                color=PALETTE[0],
                marker="o",
                markersize=3,
                label="failure rate",
            )
            axes.legend()
        axes.set_ylabel("entries failing safety checks (%)")
        axes.set_xlabel(f"period ({_period_name(freq)}, UTC)")
        axes.set_ylim(bottom=0)
        figure.autofmt_xdate()
    return figure


def detector_breakdown(frame: pd.DataFrame, source: str = "") -> Figure:
    """Entries per safety detector, most frequent at the top."""
    with _style():
        figure = _figure(frame, "Safety detectors triggered", source)
        axes = figure.axes[0]
        counts = stats.detector_counts(frame).iloc[::-1]
        axes.barh(counts["detector"], counts["entries"], color=PALETTE[1])
        for y, value in enumerate(counts["entries"]):
            axes.text(value, y, f" {value:,}", va="center", fontsize=8)
        axes.set_xlabel("entries where the detector fired")
        axes.set_ylabel("detector")
    return figure


def cooccurrence_heatmap(frame: pd.DataFrame, source: str = "") -> Figure:
    """How often detectors fire together (diagonal: how often each fires)."""
    with _style():
        figure = _figure(frame, "Detector co-occurrence", source)
        axes = figure.axes[0]
        table = stats.detector_cooccurrence(frame)
        axes.grid(False)
        values = table.to_numpy()
        if values.size:
            image = axes.imshow(values, cmap="Blues")
            axes.set_xticks(range(len(table)), table.columns, rotation=35, ha="right")
            axes.set_yticks(range(len(table)), table.index)
            for (i, j), value in np.ndenumerate(values):
                axes.text(
                    j,
                    i,
                    f"{value:,}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if value > values.max() / 2 else "black",
                )
            figure.colorbar(image, ax=axes, label="entries where both fired")
        axes.set_xlabel("detector")
        axes.set_ylabel("detector")
    return figure


def volume_timeline(frame: pd.DataFrame, freq: str = "h", source: str = "") -> Figure:
    """Entries per period, with gaps in logging (see :func:`stats.gaps`) shaded."""
    with _style():
        figure = _figure(frame, "Logging volume and gaps", source)
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
        axes.legend()
        figure.autofmt_xdate()
    return figure


def model_comparison(frame: pd.DataFrame, source: str = "") -> Figure:
    """Per model: failure rate with its 95% interval, and p50/p95 latency."""
    with _style():
        figure = _figure(frame, "Models compared", source, ncols=2)
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
        rates_axes.set_yticks(y, rates["model"])
        rates_axes.set_xlabel("failure rate (%, 95% interval)")
        rates_axes.set_ylabel("model")
        latency = stats.latency_stats(frame, by="model").set_index("model").loc[rates["model"]]
        latency_axes.barh(y - 0.2, latency["p50_ms"], height=0.4, label="p50")
        latency_axes.barh(y + 0.2, latency["p95_ms"], height=0.4, label="p95")
        latency_axes.set_yticks(y, rates["model"])
        latency_axes.set_xlabel("latency (ms)")
        latency_axes.legend()
    return figure


ALL: dict[str, Callable[..., Figure]] = {
    "latency_distribution": latency_distribution,
    "latency_over_time": latency_over_time,
    "failure_rate_over_time": failure_rate_over_time,
    "detector_breakdown": detector_breakdown,
    "cooccurrence_heatmap": cooccurrence_heatmap,
    "volume_timeline": volume_timeline,
    "model_comparison": model_comparison,
}
"""Every evidence plot by name."""


def _period_name(freq: str) -> str:
    return {"h": "hour", "D": "day", "W": "week", "MS": "month", "ME": "month"}.get(freq, freq)
