"""Comparing periods: intervals that cover, tests that hold their level, Holm, bootstrap."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from comply_lab import AuditLogger, open_log
from comply_lab.audit import MemoryStorage
from comply_lab.lab import compare
from comply_lab.sample import write_sample


def _entries(rates: dict[str, tuple[int, int]], latency: float = 500.0, seed: int = 0):
    """Return a frame with ``failures`` of ``entries`` per model, lognormal latencies."""
    rng = np.random.default_rng(seed)
    rows = []
    for model, (failures, entries) in rates.items():
        for i in range(entries):
            rows.append(
                {
                    "model": model,
                    "safety_passed": i >= failures,
                    "latency_ms": float(latency * rng.lognormal(0, 0.4)),
                }
            )
    return pd.DataFrame(rows)


class TestRates:
    def test_newcombe_published_example(self):
        """Newcombe (1998), table II, example (a): 56/70 - 48/80, method 10."""
        low, high = compare.newcombe_interval(48, 80, 56, 70)
        assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)

    def test_newcombe_interval_covers_at_its_level(self):
        """Over many simulated pairs of small groups the interval covers the true difference."""
        rng = np.random.default_rng(1)
        trials, covered = 2000, 0
        for _ in range(trials):
            k1, k2 = rng.binomial(60, 0.10), rng.binomial(80, 0.18)
            low, high = compare.newcombe_interval(int(k1), 60, int(k2), 80)
            covered += low <= 0.08 <= high
        assert 0.93 <= covered / trials <= 0.975

    def test_newcombe_interval_is_symmetric_and_bounded(self):
        """Swapping the selections negates the interval; it stays within [-1, 1]."""
        low, high = compare.newcombe_interval(0, 10, 10, 10)
        assert -1 <= low < high <= 1
        assert compare.newcombe_interval(10, 10, 0, 10) == pytest.approx((-high, -low))

    def test_exact_test_for_small_counts(self):
        """Small tables use Fisher's exact test (R: fisher.test gives p = 0.4857)."""
        assert compare.two_proportion_test(3, 4, 1, 4) == (
            "fisher",
            pytest.approx(0.4857, abs=1e-4),
        )
        test, p_value = compare.two_proportion_test(400, 5000, 500, 5000)
        assert test == "z" and p_value < 0.001

    def test_holm(self):
        """Holm's step-down adjustment, by hand; NaN (untested groups) is left alone."""
        adjusted = compare.holm(np.array([0.01, 0.04, 0.03, 0.005, np.nan]))
        assert adjusted[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02])
        assert np.isnan(adjusted[4])

    def test_a_real_change_is_found_and_no_change_is_not(self):
        """A doubled rate in one model is changed; the untouched model is not."""
        before = _entries({"a": (250, 5000), "b": (250, 5000)})
        after = _entries({"a": (500, 5000), "b": (250, 5000), "c": (1, 10)}, seed=1)
        result = compare.compare_rates(before, after, by="model").set_index("model")
        assert bool(result.loc["a", "changed"]) and not bool(result.loc["b", "changed"])
        assert result.loc["a", "diff_ci_low"] < 0.05 < result.loc["a", "diff_ci_high"]
        assert result.loc["a", "p_holm"] >= result.loc["a", "p_value"]
        assert np.isnan(result.loc["c", "difference"])  # only in one selection: no test
        overall = compare.compare_rates(before, after)
        assert len(overall) == 1 and bool(overall["changed"][0])


class TestLatency:
    def test_a_shift_is_found_and_sameness_is_not(self):
        """A 30% slower model is changed at p50 and p95; the same data is not."""
        before = _entries({"a": (0, 3000), "b": (0, 3000)})
        after = pd.concat(
            [
                _entries({"a": (0, 3000)}, latency=650.0, seed=2),
                _entries({"b": (0, 3000)}, seed=3),
            ]
        )
        result = compare.compare_latency(before, after, by="model", resamples=499)
        changed = result.set_index(["model", "percentile"])["changed"]
        assert changed[("a", 50)] and changed[("a", 95)]
        assert not changed[("b", 50)] and not changed[("b", 95)]
        same = compare.compare_latency(before, before, resamples=199)
        assert not same["changed"].any()


def test_log_compare_on_two_periods():
    """log.compare reads both periods and returns both tables, reproducibly."""
    storage = MemoryStorage()
    write_sample(
        lambda c: AuditLogger(storage, clock=c), 3000, 20, end=datetime(2026, 1, 21, tzinfo=UTC)
    )
    log = open_log(storage)
    first = ("2026-01-01", "2026-01-10")
    second = ("2026-01-11", "2026-01-20")
    result = log.compare(first, second, by="provider")
    assert set(result.rates["provider"]) == set(log.entries(columns=["provider"])["provider"])
    assert (result.rates["entries_before"] + result.rates["entries_after"]).sum() == 3000
    assert result.latency.equals(log.compare(first, second, by="provider").latency)
    assert "do not mean no change" in result._repr_html_()
