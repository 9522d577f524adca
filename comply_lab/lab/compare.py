"""Did it change? Failure rates and latency of two selections compared, per group.

``compare_rates(before, after, by=...)`` answers "did the failure rate change?" for each
group (model, provider, day...) with

- the difference of the rates (``after - before``) and its 95% interval by Newcombe's
  hybrid score method (method 10 of Newcombe 1998), built from the two Wilson intervals,
  which behaves at 0%, 100% and for small groups where the Wald interval does not;
- a two-sided test of equal rates: the pooled two-proportion z-test, or Fisher's exact
  test when a cell's expected count is under 5;
- p-values adjusted across the groups by Holm's step-down method, which keeps the chance
  of any false "changed" at 5% however many groups are compared.

``compare_latency(before, after, by=...)`` compares latency percentiles, with percentile
bootstrap intervals of the difference (resampling each selection separately), made
simultaneous across the comparisons by Bonferroni's correction.

Overlapping confidence intervals of the two rates do **not** mean "no change": two 95%
intervals can overlap while the difference is clearly significant. Read the interval of
the difference and the adjusted p-value, never the overlap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from comply_lab.lab.stats import By, latency_stats, safety_rates, wilson_interval, with_keys

ALPHA = 0.05
"""Significance level of ``changed``, after Holm's adjustment."""


@dataclass(frozen=True)
class Comparison:
    """Two selections compared (see `comply_lab.lab.summary.Stats.compare`).

    Attributes:
        rates: [`compare_rates`][comply_lab.lab.compare.compare_rates]: failure rates, their
            difference and its test.
        latency: [`compare_latency`][comply_lab.lab.compare.compare_latency]: latency
            percentiles and their differences.
    """

    rates: pd.DataFrame
    latency: pd.DataFrame

    def _repr_html_(self) -> str:
        return (
            "<h4>Failure rate</h4>"
            + self.rates.to_html(index=False)
            + "<h4>Latency</h4>"
            + self.latency.to_html(index=False)
            + "<p><i>Overlapping confidence intervals of two rates do not mean no change: "
            "read the interval of the difference and the Holm-adjusted p-value.</i></p>"
        )


def compare_rates(before: pd.DataFrame, after: pd.DataFrame, by: By = None) -> pd.DataFrame:
    """Compare the safety failure rates of two selections, overall or per group.

    Args:
        before: Entries of the first selection (the baseline).
        after: Entries of the second selection.
        by: Grouping, as
            [`comply_lab.lab.stats.safety_rates`][comply_lab.lab.stats.safety_rates] takes it.

    Returns:
        Per group: ``entries_before``, ``failures_before``, ``rate_before``, the same
        ``_after``, ``difference`` (after minus before), ``diff_ci_low``,
        ``diff_ci_high`` (Newcombe 95%), ``test`` (``"z"`` or ``"fisher"``),
        ``p_value``, ``p_holm`` and ``changed`` (``p_holm < 0.05``). A group present in
        only one selection has no difference and no test.
    """
    names = [] if by is None else [by] if isinstance(by, str) else list(by)
    columns = ["entries", "failures", "failure_rate"]
    a = safety_rates(before, by)[[*names, *columns]]
    b = safety_rates(after, by)[[*names, *columns]]
    if names:
        merged = a.merge(b, on=names, how="outer", suffixes=("_before", "_after"))
    else:
        merged = a.add_suffix("_before").join(b.add_suffix("_after"))
    merged = merged.rename(
        columns={"failure_rate_before": "rate_before", "failure_rate_after": "rate_after"}
    )
    rows = [_compare_one(row) for row in merged.to_dict("records")]
    tested = pd.DataFrame(rows, index=merged.index)
    result = pd.concat([merged, tested], axis=1)
    result["p_holm"] = holm(result["p_value"].to_numpy(dtype="float64"))
    result["changed"] = result["p_holm"] < ALPHA
    return result


def _compare_one(row: dict[object, object]) -> dict[str, object]:
    n1, k1 = _count(row["entries_before"]), _count(row["failures_before"])
    n2, k2 = _count(row["entries_after"]), _count(row["failures_after"])
    if not n1 or not n2:
        return {"difference": math.nan, "diff_ci_low": math.nan, "diff_ci_high": math.nan,
                "test": None, "p_value": math.nan}  # fmt: skip
    low, high = newcombe_interval(k1, n1, k2, n2)
    test, p_value = two_proportion_test(k1, n1, k2, n2)
    return {
        "difference": k2 / n2 - k1 / n1,
        "diff_ci_low": low,
        "diff_ci_high": high,
        "test": test,
        "p_value": p_value,
    }


def _count(value: object) -> int:
    """Return a count from a merged table, where a group missing on one side is NaN."""
    number = float(value) if isinstance(value, int | float | np.number) else math.nan
    return 0 if math.isnan(number) else int(number)


def newcombe_interval(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """Return Newcombe's hybrid score 95% interval of ``k2/n2 - k1/n1``.

    With Wilson intervals (l1, u1) and (l2, u2) of the two rates and d = p2 - p1, the
    interval is d - sqrt((p2-l2)^2 + (u1-p1)^2) to d + sqrt((u2-p2)^2 + (p1-l1)^2).
    """
    p1, p2 = k1 / n1, k2 / n2
    (l1, u1), (l2, u2) = (
        tuple(float(v) for v in wilson_interval(k, n)) for k, n in ((k1, n1), (k2, n2))
    )
    d = p2 - p1
    return (
        d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2),
        d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2),
    )


def two_proportion_test(k1: int, n1: int, k2: int, n2: int) -> tuple[str, float]:
    """Return the test used and its two-sided p-value for equal failure rates.

    Fisher's exact test when any cell of the 2x2 table expects fewer than 5 entries under
    equal rates, else the pooled two-proportion z-test.
    """
    pooled = (k1 + k2) / (n1 + n2)
    expected = [n * rate for n in (n1, n2) for rate in (pooled, 1 - pooled)]
    if min(expected) < 5:
        table = np.array([[k1, n1 - k1], [k2, n2 - k2]])
        return "fisher", float(scipy_stats.fisher_exact(table).pvalue)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (k2 / n2 - k1 / n1) / se
    return "z", float(2 * scipy_stats.norm.sf(abs(z)))


def holm(p_values: np.ndarray) -> np.ndarray:
    """Return Holm's step-down adjustment of ``p_values`` (NaN stays NaN, ignored)."""
    adjusted = np.full(len(p_values), np.nan)
    present = np.flatnonzero(~np.isnan(p_values))
    order = present[np.argsort(p_values[present], kind="stable")]
    m, running = len(order), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[index])))
        adjusted[index] = running
    return adjusted


def compare_latency(
    before: pd.DataFrame,
    after: pd.DataFrame,
    by: By = None,
    percentiles: tuple[int, ...] = (50, 95),
    resamples: int = 1999,
    seed: int = 0,
) -> pd.DataFrame:
    """Compare latency percentiles of two selections, with bootstrap intervals.

    The intervals of the differences are simultaneous: each is a percentile-bootstrap
    interval at level 1 - 0.05/m for the m comparisons made (groups times percentiles,
    Bonferroni), so the chance that any ``changed`` is a false alarm stays under 5%.

    Args:
        before: Entries of the first selection.
        after: Entries of the second selection.
        by: Grouping, as
            [`comply_lab.lab.stats.latency_stats`][comply_lab.lab.stats.latency_stats] takes it.
        percentiles: Which percentiles.
        resamples: Bootstrap resamples (each selection resampled separately).
        seed: Seed of the resampling, so a report can be reproduced.

    Returns:
        Per group and percentile: ``percentile``, ``before_ms``, ``after_ms``,
        ``difference_ms`` and its ``ci_low_ms``/``ci_high_ms``, and ``changed`` (the
        interval excludes 0).
    """
    names = [] if by is None else [by] if isinstance(by, str) else list(by)
    keyed_a = _groups(before, by, names)
    keyed_b = _groups(after, by, names)
    rng = np.random.default_rng(seed)
    rows, draws = [], []
    for key in sorted(set(keyed_a) & set(keyed_b), key=str):
        a, b = keyed_a[key], keyed_b[key]
        for q in percentiles:
            here, there = float(np.percentile(a, q)), float(np.percentile(b, q))
            rows.append(
                {
                    **dict(zip(names, key, strict=True)),
                    "percentile": q,
                    "before_ms": here,
                    "after_ms": there,
                    "difference_ms": there - here,
                }
            )
            draws.append(_bootstrap(a, b, q, resamples, rng))
    tail = 100 * ALPHA / (2 * max(len(rows), 1))
    for row, differences in zip(rows, draws, strict=True):
        low, high = np.percentile(differences, [tail, 100 - tail])
        row.update(ci_low_ms=float(low), ci_high_ms=float(high), changed=not low <= 0 <= high)
    columns = [*names, "percentile", "before_ms", "after_ms", "difference_ms"]
    return pd.DataFrame(rows, columns=[*columns, "ci_low_ms", "ci_high_ms", "changed"])


def _groups(frame: pd.DataFrame, by: By, names: list[str]) -> dict[tuple[object, ...], np.ndarray]:
    """Return each group's known latencies, keyed by the group's values."""
    latency_stats(frame, by)  # refuses an unknown grouping, as every statistic does
    keyed, keys = with_keys(frame.assign(_all=0), by)
    groups: dict[tuple[object, ...], np.ndarray] = {}
    for key, group in keyed.groupby(keys or ["_all"], dropna=False, sort=False):
        values = group["latency_ms"].dropna().to_numpy(dtype="float64")
        if len(values):
            groups[tuple(key) if keys else ()] = values
    return groups


def _bootstrap(
    a: np.ndarray, b: np.ndarray, q: int, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Return bootstrap draws of ``percentile(b) - percentile(a)``, each side resampled.

    Resamples are drawn in batches of about two million values, so memory stays bounded.
    """
    batch = max(1, 2_000_000 // max(len(a), len(b)))
    differences = []
    for start in range(0, resamples, batch):
        size = min(batch, resamples - start)
        here = np.percentile(a[rng.integers(0, len(a), (size, len(a)))], q, axis=1)
        there = np.percentile(b[rng.integers(0, len(b), (size, len(b)))], q, axis=1)
        differences.append(there - here)
    return np.concatenate(differences)
