"""oms_core.latency: the percentiles every report prints, from an HdrHistogram, held to the
exact nearest-rank order statistic within the histogram's 3 significant digits."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from oms_core.latency import HIGHEST_NS, QUANTILES, Latencies


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 10**10), min_size=1, max_size=3000))
def test_percentiles_are_the_order_statistic_within_a_thousandth(samples: list[int]) -> None:
    lat = Latencies(samples)
    assert lat.get_total_count() == len(samples)
    got = lat.p50_p99_p999()
    n, s = len(samples), sorted(samples)
    for q, value in zip(QUANTILES, got, strict=True):
        # the nearest rank, or hdrh's rank rounded half up: either is the sample asked for
        ranks = {max(1, math.ceil(q / 100 * n)), max(1, min(n, int(q / 100 * n + 0.5)))}
        exact = [s[r - 1] for r in ranks]
        assert any(x <= value <= x + max(1, x // 1000) for x in exact), (q, value, exact)
        assert lat.percentile_ns(q) == value
    assert lat.p50_p99_p999_us() == tuple(v / 1000 for v in got)


def test_a_list_an_array_and_one_by_one_give_the_same_answer() -> None:
    rng = np.random.default_rng(7)
    samples = rng.integers(500, 5_000_000, 20_000)
    one_by_one = Latencies()
    for x in samples.tolist():
        one_by_one.record_value(x)
    assert (Latencies(samples).p50_p99_p999() == Latencies(samples.tolist()).p50_p99_p999()
            == one_by_one.p50_p99_p999())
    assert Latencies(samples).percentile_ns(50) == one_by_one.percentile_ns(50)


def test_no_samples_report_zero_and_outliers_are_clamped_not_lost() -> None:
    assert Latencies().p50_p99_p999() == (0, 0, 0)
    assert Latencies().percentile_ns(99) == 0
    lat = Latencies([-5, 10 * HIGHEST_NS])
    assert lat.get_total_count() == 2
    assert lat.percentile_ns(0) == 0
    assert HIGHEST_NS <= lat.percentile_ns(100) <= HIGHEST_NS * 1.001
