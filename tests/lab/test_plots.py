"""Evidence plots render, carry titles, labels and footnotes, and save in three formats."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

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
    assert any("3,000 entries" in t and "source: test log" in t and "UTC" in t for t in footnotes)
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
