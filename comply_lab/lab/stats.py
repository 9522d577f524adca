"""Safety, latency, token, volume and health statistics over an entries DataFrame.

Every function takes a DataFrame as returned by
[`comply_lab.Log.entries`][comply_lab.lab.log.Log.entries] (only the columns it needs) and
returns a tidy DataFrame with explicit column names and units. ``by`` groups the result: a
column name (``"model"``, ``"provider"``, ``"conversation_id"``, ``"safety_passed"``...), a
period of the timestamp (``"hour"``, ``"day"``, ``"week"`` from Monday, ``"month"``; UTC), a
metadata key (read from the ``metadata`` column when it is not a column already), or a list of
these. A name that is none of these is an error naming the closest one, never a column of nulls.

Rates come with Wilson score 95% confidence intervals, which stay inside [0, 1] and
behave at 0 and 100% and for small groups, unlike the normal approximation.

[`safety_rates`][comply_lab.lab.stats.safety_rates],
[`latency_stats`][comply_lab.lab.stats.latency_stats] and
[`detector_counts`][comply_lab.lab.stats.detector_counts] also take a Dask DataFrame
([`comply_lab.Log.to_dask`][comply_lab.lab.log.Log.to_dask]): each partition is reduced to
counts where it lies, and the counts are added up, so the figures are those pandas gives on
the same rows (percentiles within 0.5%, see [`comply_lab.lab.sketch`][comply_lab.lab.sketch]).
The other functions need pandas.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from itertools import combinations
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from comply_lab._time import utc_now
from comply_lab.errors import InvalidQueryError
from comply_lab.lab import sketch
from comply_lab.lab.query import did_you_mean
from comply_lab.storage.arrow import metadata_dicts

if TYPE_CHECKING:
    from dask.dataframe import DataFrame as DaskFrame
else:
    DaskFrame = Any

Z95 = 1.959963984540054
By = str | Sequence[str] | None
PERCENTILES = (50, 90, 95, 99)
PERIODS = {"hour": "h", "day": "D", "week": "W", "month": "MS"}
"""Periods ``by`` accepts, and their frequencies."""
CALENDAR = {"W": "W-MON", "MS": "MS", "M": "MS", "ME": "MS"}
"""Calendar periods, and the pandas frequency that steps from one start to the next."""


def wilson_interval(
    failures: np.ndarray | int, n: np.ndarray | int, z: float = Z95
) -> tuple[np.ndarray, np.ndarray]:
    """Return the Wilson score interval for ``failures`` out of ``n`` (NaN where n = 0)."""
    k = np.asarray(failures, dtype="float64")
    total = np.asarray(n, dtype="float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / total
        denominator = 1 + z**2 / total
        centre = (p + z**2 / (2 * total)) / denominator
        half = z * np.sqrt(p * (1 - p) / total + z**2 / (4 * total**2)) / denominator
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def with_keys(frame: pd.DataFrame, by: By) -> tuple[pd.DataFrame, list[str]]:
    """Return a copy of ``frame`` with the grouping columns of ``by`` added, and their names."""
    names = _names(by)
    frame = frame.copy()
    parsed: list[dict[str, object]] | None = None
    for name in names:
        if name in PERIODS and name not in frame.columns:
            _need(frame, "timestamp", name)
            frame[name] = period_start(frame["timestamp"], PERIODS[name])
        elif name not in frame.columns:
            if "metadata" not in frame.columns:
                raise InvalidQueryError(
                    f"cannot group by {name!r}{did_you_mean(name, [*frame.columns, *PERIODS])}"
                    ": it is neither a column nor (without the metadata column) a metadata "
                    "key; read it with metadata_keys=[...]"
                )
            if parsed is None:
                ids = list(frame["id"]) if "id" in frame.columns else None
                parsed = metadata_dicts(list(frame["metadata"]), ids)
            values = [d.get(name) for d in parsed]
            frame[name] = pd.Series(
                [None if v is None else str(v) for v in values], index=frame.index, dtype="string"
            )
    return frame, names


def period_start(stamps: pd.Series, freq: str) -> pd.Series:
    """Return the start (UTC) of the period each timestamp falls in.

    Args:
        stamps: Aware UTC timestamps.
        freq: A fixed pandas frequency (``"h"``, ``"D"``, ``"15min"``...), ``"W"``
            (weeks from Monday 00:00) or ``"MS"`` (calendar months; ``"M"`` too).

    Raises:
        InvalidQueryError: ``freq`` is none of these.
    """
    calendar = CALENDAR.get(freq)
    if calendar == "W-MON":
        days = stamps.dt.floor("D")
        return cast(pd.Series, days - pd.to_timedelta(days.dt.day_of_week, unit="D"))
    if calendar == "MS":
        naive = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        months = naive.dt.to_period("M").dt.start_time.dt.tz_localize("UTC")
        return cast(pd.Series, months.astype(stamps.dtype))
    try:
        return cast(pd.Series, stamps.dt.floor(freq))
    except ValueError:
        raise InvalidQueryError(
            f"period {freq!r}: use 'h', 'D', 'W' (weeks from Monday), 'MS' (months) or a "
            "fixed frequency such as '15min'"
        ) from None


def _period_range(first: pd.Timestamp, last: pd.Timestamp, freq: str) -> pd.DatetimeIndex:
    """Return every period start from ``first`` to ``last`` (both period starts)."""
    return pd.date_range(first, last, freq=CALENDAR.get(freq, freq))


def _found(frame: pd.DataFrame | DaskFrame, result: pd.DataFrame, names: list[str]) -> None:
    """Refuse a grouping by a metadata key no entry has: a column of nulls is no answer.

    Checked on the result, so it holds on Dask DataFrames too, where a key may be absent
    from some partitions.
    """
    for name in names:
        if name in frame.columns or name in PERIODS or not len(result):
            continue
        if result[name].isna().all():
            known = [*frame.columns, *PERIODS]
            if isinstance(frame, pd.DataFrame) and "metadata" in frame.columns:
                parsed = metadata_dicts(list(frame["metadata"]))
                known += sorted({key for record in parsed for key in record})
            raise InvalidQueryError(
                f"cannot group by {name!r}{did_you_mean(name, known)}: it is not a column, "
                "a period (hour, day, week, month) or a metadata key of these entries"
            )


def _names(by: By) -> list[str]:
    return [] if by is None else [by] if isinstance(by, str) else list(by)


def _need(frame: pd.DataFrame | DaskFrame, column: str, why: str) -> None:
    if column not in frame.columns:
        raise InvalidQueryError(f"{why} needs the {column!r} column; read it with columns=[...]")


def _pandas(frame: object, why: str) -> None:
    """Refuse a Dask DataFrame where only pandas is supported."""
    if not isinstance(frame, pd.DataFrame):
        raise InvalidQueryError(
            f"{why} takes a pandas DataFrame; on a Dask DataFrame use safety_rates, "
            "latency_stats or detector_counts, or .compute() a selection first"
        )


def _partials(
    frame: pd.DataFrame | DaskFrame, partial: Callable[[pd.DataFrame], pd.DataFrame]
) -> pd.DataFrame:
    """Apply ``partial`` to a DataFrame, or to every partition of a Dask DataFrame.

    The partial results of the partitions come back concatenated, to be added up.
    """
    if isinstance(frame, pd.DataFrame):
        return partial(frame)
    meta = partial(frame._meta)  # the empty pandas frame every Dask DataFrame carries
    result: pd.DataFrame = frame.map_partitions(partial, meta=meta).compute()  # type: ignore[no-untyped-call]
    # Dask may hand strings back in its own string dtype; keep the partial's dtypes.
    return result.astype(meta.dtypes.to_dict())


def _summed(
    frame: pd.DataFrame | DaskFrame,
    partial: Callable[[pd.DataFrame], pd.DataFrame],
    names: list[str],
) -> pd.DataFrame:
    """Apply ``partial`` (see `_partials`) and add up its counts per group."""
    parts = _partials(frame, partial)
    keys = names or ["_all"]
    combined = parts.groupby(keys, dropna=False, sort=True, observed=True).sum()
    return _tidy(combined, names)


def _grouped(frame: pd.DataFrame, names: list[str]) -> pd.core.groupby.DataFrameGroupBy:  # type: ignore[name-defined]
    if names:
        return frame.groupby(names, dropna=False, sort=True, observed=True)
    return frame.assign(_all=0).groupby("_all")


def _tidy(result: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    result = result.reset_index()
    return result.drop(columns="_all") if not names else result


def safety_rates(frame: pd.DataFrame | DaskFrame, by: By = None) -> pd.DataFrame:
    """Return entries, failures, failure rate and its Wilson 95% interval, per group.

    A failure is an entry with ``safety_passed`` False (blocked or flagged); entries with
    an unknown outcome are not counted. Exact on a Dask DataFrame too (counts per
    partition, added up).
    """
    _need(frame, "safety_passed", "safety_rates")
    names = _names(by)
    result = _summed(frame, lambda part: _safety_counts(part, by), names)
    _found(frame, result, names)
    result["failure_rate"] = result["failures"] / result["entries"]
    result["ci_low"], result["ci_high"] = wilson_interval(
        result["failures"].to_numpy(), result["entries"].to_numpy()
    )
    if not names and result.empty:
        result = pd.DataFrame(
            [
                {
                    "entries": 0,
                    "failures": 0,
                    "failure_rate": math.nan,
                    "ci_low": math.nan,
                    "ci_high": math.nan,
                }
            ]
        )
    return result.astype({"entries": "int64", "failures": "int64"})


def _safety_counts(frame: pd.DataFrame, by: By) -> pd.DataFrame:
    frame, names = with_keys(frame, by)
    known = frame[frame["safety_passed"].notna()].assign(
        _failed=lambda f: (~f["safety_passed"].astype(bool)).astype("int64")
    )
    counts = _grouped(known, names).agg(entries=("_failed", "size"), failures=("_failed", "sum"))
    result: pd.DataFrame = counts.reset_index()
    return result


def latency_stats(frame: pd.DataFrame | DaskFrame, by: By = None) -> pd.DataFrame:
    """Return count, mean, p50/p90/p95/p99 and max of ``latency_ms`` per group (ms).

    On a pandas DataFrame every figure is exact. On a Dask DataFrame count, mean and max are
    exact and the percentiles come from a mergeable sketch, within 0.5% of the exact value (see
    [`comply_lab.lab.sketch`][comply_lab.lab.sketch]).
    """
    _need(frame, "latency_ms", "latency_stats")
    columns = ["count", "mean_ms", *(f"p{p}_ms" for p in PERCENTILES), "max_ms"]
    names = _names(by)
    if isinstance(frame, pd.DataFrame):
        keyed, names = with_keys(frame, by)
        grouped = _grouped(keyed, names)["latency_ms"]
        result = grouped.agg(count="count", mean_ms="mean", max_ms="max")
        for p in PERCENTILES:
            result[f"p{p}_ms"] = grouped.quantile(p / 100)
        result = _tidy(result[columns], names)
    else:
        result = _sketched_latency(frame, by, names, columns)
    _found(frame, result, names)
    if not names and result.empty:
        result = pd.DataFrame([{c: (0 if c == "count" else math.nan) for c in columns}])
    return result.astype({"count": "int64"})


def _sketched_latency(
    frame: DaskFrame, by: By, names: list[str], columns: list[str]
) -> pd.DataFrame:
    keys = names or ["_all"]

    def partial(part: pd.DataFrame) -> pd.DataFrame:
        part = with_keys(part, by)[0].assign(_all=0)
        known = part[part["latency_ms"].notna()]
        latency = known["latency_ms"].astype("float64")
        rows = known[keys].assign(
            bucket=sketch.bucket_of(latency), n=1, total=latency, lo=latency, hi=latency
        )
        grouped = rows.groupby([*keys, "bucket"], dropna=False, sort=False, observed=True)
        return grouped.agg(
            n=("n", "sum"), total=("total", "sum"), lo=("lo", "min"), hi=("hi", "max")
        )

    parts = _partials(frame, lambda part: partial(part).reset_index())
    rows: list[dict[str, object]] = []
    for key, group in parts.groupby(keys, dropna=False, sort=True):
        n = int(group["n"].sum())
        row: dict[str, object] = dict(zip(names, _tuple(key), strict=False))
        row |= {"count": n, "mean_ms": group["total"].sum() / n if n else math.nan}
        row |= {f"p{p}_ms": sketch.percentile(group, p / 100) for p in PERCENTILES}
        rows.append(row | {"max_ms": group["hi"].max()})
    result = pd.DataFrame(rows, columns=[*names, *columns])
    return result.astype({name: parts[name].dtype for name in names})


def _tuple(key: object) -> tuple[object, ...]:
    return key if isinstance(key, tuple) else (key,)


def token_stats(frame: pd.DataFrame, by: By = None) -> pd.DataFrame:
    """Return token totals and per-entry mean, median and max, for input and output."""
    _pandas(frame, "token_stats")
    for column in ("input_tokens", "output_tokens"):
        _need(frame, column, "token_stats")
    keyed, names = with_keys(frame, by)
    aggregations = {}
    for side in ("input", "output"):
        column = f"{side}_tokens"
        aggregations.update(
            {
                f"{side}_tokens_total": (column, "sum"),
                f"{side}_tokens_mean": (column, "mean"),
                f"{side}_tokens_median": (column, "median"),
                f"{side}_tokens_max": (column, "max"),
                f"{side}_tokens_known": (column, "count"),
            }
        )
    numeric = keyed.astype({"input_tokens": "float64", "output_tokens": "float64"})
    result = _tidy(
        _grouped(numeric, names).agg(entries=("input_tokens", "size"), **aggregations), names
    )
    _found(frame, result, names)
    totals = [c for c in result.columns if c.endswith(("_total", "_known", "_max"))]
    return result.astype({c: "Int64" for c in totals} | {"entries": "int64"})


def _lists(frame: pd.DataFrame, column: str) -> list[list[str]]:
    _need(frame, column, f"{column} counts")
    return [
        list(v) if v is not None and not (isinstance(v, float) and math.isnan(v)) else []
        for v in frame[column].tolist()
    ]


def _most_common(counts: Counter[str]) -> list[tuple[str, int]]:
    """Return (value, count) pairs, most frequent first, ties by value."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def detector_counts(frame: pd.DataFrame | DaskFrame) -> pd.DataFrame:
    """Return, per detector, how many entries it fired on and its share of the failures.

    Exact on a Dask DataFrame too (counts per partition, added up).
    """
    _need(frame, "detectors_triggered", "detectors_triggered counts")
    parts = _partials(frame, _detector_counts)
    failures = int(parts.loc[parts["kind"] == "failures", "entries"].sum())
    fired = parts[parts["kind"] == "detector"].groupby("name")["entries"].sum()
    counts = Counter({str(name): int(n) for name, n in fired.items()})
    result = pd.DataFrame(_most_common(counts), columns=["detector", "entries"])
    result["share_of_failures"] = result["entries"] / failures if failures else math.nan
    return result.astype({"entries": "int64"})


def _detector_counts(frame: pd.DataFrame) -> pd.DataFrame:
    lists = _lists(frame, "detectors_triggered")
    counts: Counter[str] = Counter(d for fired in lists for d in set(fired))
    failures = int((frame["safety_passed"] == False).sum()) if "safety_passed" in frame else 0  # noqa: E712
    rows = [("detector", name, n) for name, n in counts.items()] + [("failures", "", failures)]
    return pd.DataFrame(rows, columns=["kind", "name", "entries"])


def detector_cooccurrence(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a detector x detector table: entries where both fired (diagonal: either)."""
    _pandas(frame, "detector_cooccurrence")
    lists = [sorted(set(fired)) for fired in _lists(frame, "detectors_triggered")]
    names = sorted({d for fired in lists for d in fired})
    pairs: Counter[tuple[str, str]] = Counter()
    for fired in lists:
        pairs.update((d, d) for d in fired)
        for a, b in combinations(fired, 2):
            pairs.update([(a, b), (b, a)])
    matrix = [[pairs[(a, b)] for b in names] for a in names]
    return pd.DataFrame(
        np.array(matrix, dtype="int64").reshape(len(names), len(names)),
        index=pd.Index(names, name="detector"),
        columns=names,
    )


def _top(frame: pd.DataFrame, values: list[str], name: str, top: int | None) -> pd.DataFrame:
    counts: Counter[str] = Counter(values)
    total = len(frame)
    rows = _most_common(counts)[:top]
    result = pd.DataFrame(rows, columns=[name, "entries"])
    result["share"] = result["entries"] / total if total else math.nan
    return result.astype({"entries": "int64"})


def block_reasons(frame: pd.DataFrame, top: int | None = 10) -> pd.DataFrame:
    """Return the most frequent block reasons with their entry counts and shares."""
    _pandas(frame, "block_reasons")
    _need(frame, "block_reason", "block_reasons")
    values = [v for v in frame["block_reason"].tolist() if isinstance(v, str)]
    return _top(frame, values, "block_reason", top)


def alert_counts(frame: pd.DataFrame, top: int | None = 10) -> pd.DataFrame:
    """Return the most frequent alerts with the number of entries that raised them."""
    _pandas(frame, "alert_counts")
    values = [a for alerts in _lists(frame, "alerts") for a in set(alerts)]
    return _top(frame, values, "alert", top)


def volume(frame: pd.DataFrame, freq: str = "D") -> pd.DataFrame:
    """Return entries and failures per period, periods without entries as zeros.

    ``freq`` is a period as [`period_start`][comply_lab.lab.stats.period_start] takes it:
    ``"h"``, ``"D"``, ``"W"``, ``"MS"`` or a fixed frequency.
    """
    _pandas(frame, "volume")
    _need(frame, "timestamp", "volume")
    periods = period_start(frame["timestamp"], freq)
    failed = (frame["safety_passed"] == False) if "safety_passed" in frame else None  # noqa: E712
    result = pd.DataFrame(
        {
            "period": periods,
            "entries": 1,
            "failures": 0 if failed is None else failed.astype("int64"),
        }
    )
    result = result.groupby("period").sum()
    if not result.empty:
        full = _period_range(result.index.min(), result.index.max(), freq)
        result = result.reindex(full, fill_value=0).rename_axis("period")
    return result.reset_index().astype({"entries": "int64", "failures": "int64"})


def gaps(
    frame: pd.DataFrame,
    min_gap: timedelta = timedelta(hours=1),
    min_expected: float | None = None,
) -> pd.DataFrame:
    """Return silences in logging where traffic was expected.

    Expected traffic follows the log's own daily and weekly rhythm: for each hour of the
    week (Monday 09:00, Sunday 03:00...), the mean count over the times that hour occurs
    in the data. Traffic is counted in independent arrivals: a conversation's turns come
    in a burst after its first entry, so each conversation counts once, at its start
    (entries without a conversation id count each). A silence between two entries is a
    gap when it lasts at least ``min_gap`` and at least ``min_expected`` arrivals were
    expected in it. By default that is ln(hours / 0.01) for a log of so many hours (11.2
    for 30 days): random (Poisson) arrivals would leave a silence that unlikely somewhere
    in the log less than once in a hundred logs of its length, so ordinary quiet stretches
    are not flagged however long the log. Night and weekend lulls expect few arrivals, so
    they are not gaps; an outage in working hours is.

    Returns:
        ``gap_start``, ``gap_end`` (the entries on either side), ``duration``,
        ``expected_arrivals`` and ``expected_entries`` in the silence, and for the whole
        hours it touches ``hours_expected`` and ``hours_observed`` entries (what the
        rhythm predicts there, and what was logged).
    """
    _pandas(frame, "gaps")
    _need(frame, "timestamp", "gaps")
    columns = [
        "gap_start",
        "gap_end",
        "duration",
        "expected_arrivals",
        "expected_entries",
        "hours_expected",
        "hours_observed",
    ]
    stamps = frame["timestamp"].sort_values().reset_index(drop=True)
    if len(stamps) < 2:
        return pd.DataFrame(columns=columns)
    hours = stamps.dt.floor("h")
    every_hour = pd.date_range(hours.iloc[0], hours.iloc[-1], freq="h")
    occurrences = pd.Series(every_hour.map(_slot)).value_counts()
    entries_per_slot = hours.map(_slot).value_counts() / occurrences
    arrivals_per_slot = _arrivals(frame).dt.floor("h").map(_slot).value_counts() / occurrences
    per_hour = hours.value_counts()
    threshold = math.log(len(every_hour) / 0.01) if min_expected is None else min_expected
    rows = []
    for before, after in zip(stamps.iloc[:-1], stamps.iloc[1:], strict=True):
        if after - before < min_gap:
            continue
        arrivals = _expected(before, after, arrivals_per_slot)
        if arrivals >= threshold:
            touched = pd.date_range(before.floor("h"), after.floor("h"), freq="h")
            rows.append(
                (
                    before,
                    after,
                    after - before,
                    arrivals,
                    _expected(before, after, entries_per_slot),
                    float(sum(entries_per_slot.get(_slot(h), 0.0) for h in touched)),
                    int(per_hour.reindex(touched, fill_value=0).sum()),
                )
            )
    return pd.DataFrame(rows, columns=columns)


def _arrivals(frame: pd.DataFrame) -> pd.Series:
    """Return the times of independent arrivals: conversation starts and lone entries."""
    if "conversation_id" not in frame.columns:
        return frame["timestamp"]
    ids = frame["conversation_id"]
    lone = frame.loc[ids.isna(), "timestamp"]
    starts = frame.loc[ids.notna()].groupby("conversation_id", sort=False)["timestamp"].min()
    return pd.concat([lone, starts], ignore_index=True)


def _slot(moment: datetime) -> int:
    """Return the hour of the week: 0 for Monday 00:00-01:00 ... 167 for Sunday 23:00."""
    return moment.weekday() * 24 + moment.hour


def _expected(start: datetime, end: datetime, per_slot: pd.Series) -> float:
    total, cursor = 0.0, start
    while cursor < end:
        step_end = min(end, cursor.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1))
        total += float(per_slot.get(_slot(cursor), 0.0)) * (
            (step_end - cursor) / timedelta(hours=1)
        )
        cursor = step_end
    return total


def health(frame: pd.DataFrame, now: datetime | None = None) -> pd.DataFrame:
    """Return the tutorial's health metrics: total entries, last hour's volume and failures."""
    _pandas(frame, "health")
    _need(frame, "timestamp", "health")
    moment = pd.Timestamp(now if now is not None else utc_now()).tz_convert("UTC")
    recent = frame[frame["timestamp"] > moment - pd.Timedelta(hours=1)]
    failures = int((recent["safety_passed"] == False).sum()) if "safety_passed" in recent else 0  # noqa: E712
    return pd.DataFrame(
        [
            {
                "total_entries": len(frame),
                "hourly_volume": len(recent),
                "safety_failures": failures,
                "as_of": moment,
            }
        ]
    )
