"""Mergeable quantile sketch for latency percentiles over partitioned data.

Exact percentiles need every value in one place; over a Dask DataFrame of billions of
rows they are estimated instead from a logarithmic histogram (the DDSketch idea): a
value ``x > 0`` falls in bucket ``ceil(log(x) / log(GAMMA))``, whose bounds differ by a
factor ``GAMMA = (1 + ALPHA) / (1 - ALPHA)``; values ``<= 0`` share bucket ``ZERO``.
Partitions report, per bucket, the count, sum, smallest and largest of their values;
buckets from all partitions merge (adding counts and sums, taking the extremes), so the
result does not depend on how the data was split.

A percentile is then read the way pandas computes it (linear interpolation between the
order statistics around rank ``q * (n - 1)``), each order statistic replaced by its
bucket's representative: the value itself when the bucket holds one distinct value
(whole-millisecond latencies, zeros), else the bucket's relative midpoint
``2 * GAMMA**i / (GAMMA + 1)``, which is within ``ALPHA`` of every value in the bucket. The
estimate is therefore within ``ALPHA`` (0.5%) relative error of the exact percentile.
Values ``<= 0`` are represented by their mean (zero when, as logged latencies are, they
are all zero).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

ALPHA = 0.005
GAMMA = (1 + ALPHA) / (1 - ALPHA)
ZERO = np.iinfo(np.int64).min
"""The bucket of values <= 0."""


def bucket_of(values: pd.Series) -> np.ndarray:
    """Return the bucket of each value (no missing values)."""
    x = values.to_numpy(dtype="float64")
    index = np.full(x.shape, ZERO, dtype="int64")
    positive = x > 0
    index[positive] = np.ceil(np.log(x[positive]) / math.log(GAMMA)).astype("int64")
    return index


def percentile(merged: pd.DataFrame, q: float) -> float:
    """Return the ``q`` quantile (0..1) from ``bucket``/``n``/``total``/``lo``/``hi`` rows.

    The rows may come from several partitions; rows of the same bucket are merged.
    """
    table = merged.groupby("bucket", sort=True).agg(
        n=("n", "sum"), total=("total", "sum"), lo=("lo", "min"), hi=("hi", "max")
    )
    counts = table["n"].to_numpy()
    n = int(counts.sum())
    if n == 0:
        return math.nan
    index = table.index.to_numpy()
    midpoint = 2 * np.power(GAMMA, np.where(index == ZERO, 0, index)) / (GAMMA + 1)
    single = table["lo"].to_numpy() == table["hi"].to_numpy()
    values = np.where(single, table["lo"].to_numpy(), midpoint)
    values = np.where(index == ZERO, table["total"].to_numpy() / counts, values)
    ends = np.cumsum(counts)  # order statistics 0 .. ends[i] - 1 are in buckets 0..i
    position = q * (n - 1)
    below = math.floor(position)
    low = values[np.searchsorted(ends, below, side="right")]
    high = values[np.searchsorted(ends, min(below + 1, n - 1), side="right")]
    return float(low + (position - below) * (high - low))
