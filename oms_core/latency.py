"""Latency percentiles (p50, p99, p99.9) from an HdrHistogram: ``oms status``, the demo and
every benchmark report them through :class:`Latencies` (cold code)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from hdrh.histogram import HdrHistogram

LOWEST_NS = 1
HIGHEST_NS = 60 * 10**9  # a longer sample counts as a minute
SIGNIFICANT_DIGITS = 3  # each percentile within 0.1% of the sample it stands for
QUANTILES = (50.0, 99.0, 99.9)


class Latencies(HdrHistogram):
    """Latency samples in nanoseconds, recorded one by one (``record_value``) or at once
    (``record_all``); memory does not grow with the number of samples."""

    def __init__(self, samples: Iterable[int] = ()) -> None:
        super().__init__(LOWEST_NS, HIGHEST_NS, SIGNIFICANT_DIGITS)
        self.record_all(samples)

    def record_value(self, value: int, count: int = 1) -> bool:
        """Record ``value`` ns ``count`` times; values outside 0..HIGHEST_NS are clamped."""
        return bool(super().record_value(min(max(int(value), 0), HIGHEST_NS), count))

    def record_all(self, samples: Iterable[int]) -> None:
        """Record every sample of a sequence or numpy array of nanoseconds."""
        ns = samples if isinstance(samples, np.ndarray) else np.fromiter(samples, np.int64)
        values, counts = np.unique(ns, return_counts=True)
        for value, count in zip(values.tolist(), counts.tolist(), strict=True):
            self.record_value(value, count)

    def percentile_ns(self, q: float) -> int:
        """The value at percentile ``q`` (0..100) in ns; 0 without samples."""
        return int(self.get_value_at_percentile(q)) if self.get_total_count() else 0

    def p50_p99_p999(self) -> tuple[int, int, int]:
        """p50, p99 and p99.9 in ns (one pass over the histogram); zeros without samples."""
        if not self.get_total_count():
            return 0, 0, 0
        by_q = self.get_percentile_to_value_dict(list(QUANTILES))
        p50, p99, p999 = (int(by_q[q]) for q in QUANTILES)
        return p50, p99, p999

    def p50_p99_p999_us(self) -> tuple[float, float, float]:
        """p50, p99 and p99.9 in microseconds."""
        p50, p99, p999 = self.p50_p99_p999()
        return p50 / 1000, p99 / 1000, p999 / 1000


__all__ = ["HIGHEST_NS", "QUANTILES", "Latencies"]
