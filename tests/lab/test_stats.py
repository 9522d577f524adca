"""Statistics checked against independent computations on generated data and edge cases."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from comply_lab import AuditLogger, InvalidQueryError, open_log
from comply_lab.audit import MemoryStorage
from comply_lab.lab import stats
from comply_lab.sample import write_sample

END = datetime(2026, 1, 31, tzinfo=UTC)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    storage = MemoryStorage()
    write_sample(lambda clock: AuditLogger(storage, clock=clock), 4000, 14, end=END, seed=11)
    return open_log(storage).entries()


def _wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    z = 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


class TestWilson:
    @pytest.mark.parametrize(
        ("k", "n", "low", "high"),
        [
            (0, 10, 0.0, 0.27753),
            (5, 10, 0.23659, 0.76341),
            (10, 10, 0.72247, 1.0),
            (1, 1, 0.20655, 1.0),
        ],
    )
    def test_known_values(self, k: int, n: int, low: float, high: float):
        """The interval matches published Wilson bounds, including at 0% and 100%."""
        lo, hi = stats.wilson_interval(k, n)
        assert (round(float(lo), 5), round(float(hi), 5)) == (low, high)

    def test_empty_group_is_nan(self):
        """No entries: no interval."""
        lo, hi = stats.wilson_interval(0, 0)
        assert math.isnan(float(lo)) and math.isnan(float(hi))


class TestSafety:
    def test_rates_by_model_match_pandas(self, frame: pd.DataFrame):
        """Per-model counts, rates and intervals equal a groupby done by hand."""
        result = stats.safety_rates(frame, by="model").set_index("model")
        for model, group in frame.groupby("model"):
            failures = int((~group["safety_passed"].astype(bool)).sum())
            row = result.loc[model]
            assert (row["entries"], row["failures"]) == (len(group), failures)
            assert row["failure_rate"] == pytest.approx(failures / len(group))
            assert (row["ci_low"], row["ci_high"]) == pytest.approx(
                _wilson_by_hand(failures, len(group))
            )

    def test_overall_by_day_and_metadata_key(self, frame: pd.DataFrame):
        """Overall, per day and per metadata key, the groups add up to the whole."""
        overall = stats.safety_rates(frame)
        assert overall["entries"][0] == len(frame)
        by_day = stats.safety_rates(frame, by="day")
        assert by_day["entries"].sum() == len(frame)
        assert str(by_day["day"].dtype) == "datetime64[us, UTC]"
        by_department = stats.safety_rates(frame, by="department")
        assert by_department["failures"].sum() == overall["failures"][0]
        assert set(by_department["department"]) <= {
            "finance",
            "legal",
            "hr",
            "engineering",
            "support",
            "research",
        }
        two = stats.safety_rates(frame, by=["provider", "model"])
        assert two["entries"].sum() == len(frame)

    def test_edge_cases(self, frame: pd.DataFrame):
        """Empty, single and all-blocked frames give exact, finite-where-defined results."""
        empty = stats.safety_rates(frame.iloc[0:0])
        assert empty["entries"][0] == 0 and math.isnan(empty["failure_rate"][0])
        single = stats.safety_rates(frame.iloc[0:1])
        assert single["entries"][0] == 1
        blocked = frame[frame["safety_passed"] == False]  # noqa: E712
        all_blocked = stats.safety_rates(blocked)
        assert all_blocked["failure_rate"][0] == 1.0
        assert all_blocked["ci_high"][0] == 1.0

    def test_unknown_group_is_an_error(self, frame: pd.DataFrame):
        """Grouping by something neither a column nor readable metadata is refused."""
        with pytest.raises(InvalidQueryError, match="cannot group by 'nope'"):
            stats.safety_rates(frame.drop(columns="metadata"), by="nope")

    def test_detectors_reasons_and_alerts(self, frame: pd.DataFrame):
        """Detector counts, co-occurrence, block reasons and alerts match loops by hand."""
        lists = [list(d) for d in frame["detectors_triggered"]]
        counts = stats.detector_counts(frame).set_index("detector")["entries"]
        for name in counts.index:
            assert counts[name] == sum(name in d for d in lists)
        pairs = stats.detector_cooccurrence(frame)
        a, b = pairs.index[0], pairs.index[1]
        assert pairs.loc[a, b] == sum(a in d and b in d for d in lists) == pairs.loc[b, a]
        assert pairs.loc[a, a] == counts[a]
        reasons = stats.block_reasons(frame, top=3)
        assert len(reasons) == 3
        assert reasons["entries"][0] == frame["block_reason"].value_counts().iloc[0]
        alerts = stats.alert_counts(frame)
        assert alerts["entries"].sum() >= 1


class TestLatencyAndTokens:
    def test_percentiles_match_numpy(self, frame: pd.DataFrame):
        """p50/p90/p95/p99, mean and max equal numpy's, overall and by safety outcome."""
        overall = stats.latency_stats(frame).iloc[0]
        values = frame["latency_ms"].to_numpy()
        for p in (50, 90, 95, 99):
            assert overall[f"p{p}_ms"] == pytest.approx(np.percentile(values, p))
        assert overall["mean_ms"] == pytest.approx(values.mean())
        assert overall["max_ms"] == values.max()
        split = stats.latency_stats(frame, by="safety_passed")
        assert split["count"].sum() == len(frame)

    def test_empty_and_single(self, frame: pd.DataFrame):
        """An empty frame has count 0; one entry is its own percentile."""
        assert stats.latency_stats(frame.iloc[0:0])["count"][0] == 0
        one = stats.latency_stats(frame.iloc[3:4]).iloc[0]
        assert one["p99_ms"] == one["p50_ms"] == frame["latency_ms"].iloc[3]

    def test_tokens(self, frame: pd.DataFrame):
        """Token totals and means equal sums by hand; unknown counts are not zeros."""
        result = stats.token_stats(frame).iloc[0]
        assert result["input_tokens_total"] == frame["input_tokens"].sum()
        assert result["output_tokens_mean"] == pytest.approx(frame["output_tokens"].mean())
        by_model = stats.token_stats(frame, by="model")
        assert by_model["entries"].sum() == len(frame)


class TestVolumeAndHealth:
    def test_volume_fills_empty_periods(self, frame: pd.DataFrame):
        """Entries per day add up, and days without traffic appear as zeros."""
        daily = stats.volume(frame, "D")
        assert daily["entries"].sum() == len(frame)
        assert daily["period"].is_monotonic_increasing
        hourly = stats.volume(frame, "h")
        assert (hourly["entries"] == 0).any()
        assert (
            len(hourly)
            == (hourly["period"].iloc[-1] - hourly["period"].iloc[0]) / pd.Timedelta("1h") + 1
        )

    def test_gaps_find_a_silent_stretch(self):
        """Three weeks of steady traffic with a six-hour outage yield exactly that gap."""
        start = datetime(2026, 1, 5, tzinfo=UTC)
        stamps = [start + timedelta(minutes=5 * i) for i in range(12 * 24 * 21)]
        outage = (start + timedelta(days=10, hours=2), start + timedelta(days=10, hours=8))
        kept = [s for s in stamps if not outage[0] < s < outage[1]]
        found = stats.gaps(pd.DataFrame({"timestamp": pd.to_datetime(kept, utc=True)}))
        assert len(found) == 1
        assert found["gap_start"][0] == outage[0]
        assert found["duration"][0] == timedelta(hours=6)
        # The same hours of the other two weeks carried 12 entries an hour: 2 x 12 x 6 / 3.
        assert found["expected_entries"][0] == pytest.approx(48, abs=2)

    def test_health_metrics(self, frame: pd.DataFrame):
        """The tutorial's metrics: total, last hour's volume and failures."""
        last = frame["timestamp"].max()
        result = stats.health(frame, now=last.to_pydatetime()).iloc[0]
        recent = frame[frame["timestamp"] > last - pd.Timedelta(hours=1)]
        assert result["total_entries"] == len(frame)
        assert result["hourly_volume"] == len(recent)
        assert result["safety_failures"] == int((recent["safety_passed"] == False).sum())  # noqa: E712


class TestNoSilentWrongAnswers:
    def test_a_misspelt_grouping_names_the_closest(self, frame: pd.DataFrame):
        """by="modle" is an error suggesting "model", never a table of nulls."""
        with pytest.raises(
            InvalidQueryError, match=r"cannot group by 'modle' \(did you mean 'model'"
        ):
            stats.safety_rates(frame, by="modle")
        with pytest.raises(InvalidQueryError, match="did you mean 'department'"):
            stats.latency_stats(frame, by="departmnt")
        with pytest.raises(InvalidQueryError, match="did you mean 'week'"):
            stats.token_stats(frame, by="weeks")

    def test_weeks_and_months(self, frame: pd.DataFrame):
        """by="week" starts weeks on Monday, by="month" on the first; volume takes both."""
        weekly = stats.safety_rates(frame, by="week")
        assert all(day.weekday() == 0 and day.hour == 0 for day in weekly["week"])
        assert weekly["entries"].sum() == frame["safety_passed"].notna().sum()
        monthly = stats.volume(frame, "MS")
        assert list(monthly["period"].dt.day) == [1] * len(monthly)
        assert stats.volume(frame, "W")["entries"].sum() == len(frame)
        with pytest.raises(InvalidQueryError, match="period 'Y'"):
            stats.volume(frame, "Y")


class TestGaps:
    @pytest.mark.parametrize(
        "seed",
        [pytest.param(3, marks=pytest.mark.slow), 7, pytest.param(11, marks=pytest.mark.slow)],
    )
    def test_the_demo_rhythm_has_no_gaps_and_an_outage_is_found(self, seed: int):
        """Night and weekend lulls of the demo's traffic are no gaps; a 3-hour outage is."""
        storage = MemoryStorage()
        write_sample(lambda c: AuditLogger(storage, clock=c), 20_000, 30, end=END, seed=seed)
        traffic = open_log(storage).entries(columns=["timestamp", "conversation_id"])
        assert stats.gaps(traffic).empty
        outage = pd.Timestamp("2026-01-21T10:00:00Z")  # a Wednesday morning
        silent = (traffic["timestamp"] >= outage) & (
            traffic["timestamp"] < outage + pd.Timedelta(hours=3)
        )
        found = stats.gaps(traffic[~silent])
        assert len(found) == 1
        gap = found.iloc[0]
        assert gap["gap_start"] < outage and gap["gap_end"] >= outage + pd.Timedelta(hours=3)
        assert gap["hours_observed"] < gap["hours_expected"]
        assert gap["expected_entries"] > gap["expected_arrivals"] >= math.log(30 * 24 / 0.01)
