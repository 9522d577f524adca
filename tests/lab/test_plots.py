"""Evidence plots render, carry titles, labels and footnotes, and save in three formats."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from comply_lab import AuditLogger, InvalidQueryError, open_log
from comply_lab.audit import MemoryStorage
from comply_lab.lab import plots
from comply_lab.sample import write_sample


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    storage = MemoryStorage()
    write_sample(
        lambda c: AuditLogger(storage, clock=c), 3000, 21, end=datetime(2026, 1, 31, tzinfo=UTC)
    )
    return open_log(storage).entries()


@pytest.mark.parametrize("name", sorted(plots.ALL))
def test_every_plot_renders_with_labels(frame: pd.DataFrame, name: str):
    """Each plot is a Figure with a title, labelled axes and a footnote, rendering to PNG."""
    figure = plots.ALL[name](frame, source="test log")
    assert isinstance(figure, Figure)
    assert figure.get_suptitle()
    axes = figure.axes[0]
    assert axes.get_xlabel() and axes.get_ylabel()
    footnotes = [t.get_text() for t in figure.texts]
    assert any("3,000 entries" in t and "· test log" in t and "UTC" in t for t in footnotes)
    png = io.BytesIO()
    figure.savefig(png, format="png")
    assert png.getvalue().startswith(b"\x89PNG") and len(png.getvalue()) > 10_000


def test_expected_artists(frame: pd.DataFrame):
    """The plots hold what they claim: percentile lines, a confidence band, one bar a detector."""
    latency = plots.latency_distribution(frame)
    assert {line.get_label()[:3] for line in latency.axes[0].get_lines()} == {"p50", "p95", "p99"}
    rate = plots.failure_rate_over_time(frame)
    assert any(isinstance(c, PolyCollection) for c in rate.axes[0].collections)
    bars = plots.detector_breakdown(frame)
    assert len(bars.axes[0].patches) == frame["detectors_triggered"].explode().nunique()
    assert len(plots.model_comparison(frame).axes) == 2


def test_units_in_labels(frame: pd.DataFrame):
    """Axis labels name their units."""
    assert "ms" in plots.latency_distribution(frame).axes[0].get_xlabel()
    assert "%" in plots.failure_rate_over_time(frame).axes[0].get_ylabel()


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_save_formats(frame: pd.DataFrame, tmp_path: Path, suffix: str):
    """Figures save as PNG, SVG and PDF by suffix; anything else is refused."""
    path = plots.save(plots.volume_timeline(frame), tmp_path / f"v{suffix}")
    assert path.stat().st_size > 1000
    with pytest.raises(InvalidQueryError, match="save plots as"):
        plots.save(plots.volume_timeline(frame), tmp_path / "v.gif")


def test_empty_selection_still_draws(frame: pd.DataFrame):
    """An empty selection gives labelled, empty plots rather than errors."""
    for name, draw in plots.ALL.items():
        figure = draw(frame.iloc[0:0])
        assert any("no entries" in t.get_text() for t in figure.texts), name


@pytest.mark.slow  # renders every plot twice
def test_figures_display_as_pictures_in_jupyter(frame: pd.DataFrame):
    """Jupyter's display machinery finds PNG and SVG on every figure, with no magic."""
    from IPython.core.formatters import DisplayFormatter

    for name, draw in plots.ALL.items():
        data, _ = DisplayFormatter().format(draw(frame))
        assert data["image/png"].startswith(b"\x89PNG"), name
        assert "<svg" in data["image/svg+xml"], name


@pytest.mark.parametrize(
    "name", ["latency_distribution", "latency_over_time", "failure_rate_over_time"]
)
def test_legends_sit_beside_the_data(frame: pd.DataFrame, name: str):
    """A legend never covers the plotted area: it starts right of the axes."""
    figure = plots.ALL[name](frame)
    figure.canvas.draw()
    axes = figure.axes[0]
    legend = axes.get_legend().get_window_extent()
    assert legend.x0 >= axes.get_window_extent().x1


def test_served_and_blocked_latencies_apart(frame: pd.DataFrame):
    """The latency histogram stacks served and blocked requests, each with its count."""
    labels = [t.get_text() for t in plots.latency_distribution(frame).axes[0].get_legend().texts]
    blocked = int((frame["safety_passed"] == False).sum())  # noqa: E712
    assert f"served (n={len(frame) - blocked:,})" in labels
    assert f"blocked (n={blocked:,})" in labels


def test_heatmap_scales_pairs_not_the_diagonal(frame: pd.DataFrame):
    """The colour scale ends at the largest pair count, not at a detector's total."""
    figure = plots.cooccurrence_heatmap(frame)
    image = figure.axes[0].get_images()[0]
    table = plots.stats.detector_cooccurrence(frame).to_numpy()
    off_diagonal = table[~np.eye(len(table), dtype=bool)]
    assert image.get_clim()[1] == off_diagonal.max() < table.diagonal().max()


def test_rates_show_the_overall_rate_and_partial_days(frame: pd.DataFrame):
    """The overall rate is a reference line; days only partly in the span are hollow."""
    start = frame["timestamp"].min().floor("D") + pd.Timedelta(hours=12)
    end = frame["timestamp"].max()
    figure = plots.failure_rate_over_time(frame, span=(start.to_pydatetime(), None))
    labels = [t.get_text() for t in figure.axes[0].get_legend().texts]
    overall = 100 * (frame["safety_passed"] == False).mean()  # noqa: E712
    assert f"overall {overall:.2f}%" in labels
    assert "partial period" in labels
    partial = plots.partial_periods(
        plots.stats.period_start(frame["timestamp"], "D").drop_duplicates().sort_values(),
        "D",
        frame,
        (start.to_pydatetime(), end.to_pydatetime()),
    )
    assert partial[0] and not partial[1:-1].any()


def test_model_comparison_names_each_models_count(frame: pd.DataFrame):
    """Each model's label carries how many entries its interval rests on."""
    labels = [t.get_text() for t in plots.model_comparison(frame).axes[0].get_yticklabels()]
    counts = frame["model"].value_counts()
    assert sorted(labels) == sorted(f"{m} (n={n:,})" for m, n in counts.items())


def test_control_chart_marks_a_day_out_of_control(frame: pd.DataFrame):
    """A day whose failure rate jumps beyond its 3-sigma limit is marked."""
    assert "outside the limits" not in _legend_texts(plots.failure_rate_control_chart(frame))
    day = frame["timestamp"].dt.floor("D") == frame["timestamp"].dt.floor("D").iloc[1000]
    worse = frame.copy()
    worse.loc[day, "safety_passed"] = np.arange(day.sum()) % 3 != 0  # a third fail that day
    assert "outside the limits" in _legend_texts(plots.failure_rate_control_chart(worse))


def _legend_texts(figure: Figure) -> list[str]:
    return [t.get_text() for t in figure.axes[0].get_legend().texts]
