"""The reference twin of :class:`oms_core.bars.LiveBars`: one interval, plain Python dicts.

The same rule, stated once more in the plainest code: a trade at engine time ``ts`` belongs to
the bar ``ts // interval_ns``; a bar's open is its first trade, its close its last; a trade in a
later interval completes the bar before it. ``tests/unit/core/test_bars.py`` holds the compiled
bars to these answers. Cold code, integers only.
"""

from __future__ import annotations

from collections import deque

from oms_core.bars import BARS_KEPT, BarView


class BarsRef:
    """Bars of ``interval_ns`` per instrument from ``trade(instrument, ts, price)`` calls."""

    def __init__(self, interval_ns: int, kept: int = BARS_KEPT) -> None:
        if interval_ns <= 0:
            raise ValueError("a bar interval must be positive")
        self.interval_ns = interval_ns
        self.kept = kept
        self.closes: dict[int, deque[int]] = {}
        self.current: dict[int, list[int]] = {}  # instrument -> [index, open, high, low, close]

    def trade(self, instrument: int, ts: int, price: int) -> None:
        if price <= 0:
            return
        index = ts // self.interval_ns
        cur = self.current.get(instrument)
        if cur is not None and cur[0] >= index:
            cur[2], cur[3], cur[4] = max(cur[2], price), min(cur[3], price), price
            return
        if cur is not None:
            self.closes.setdefault(instrument, deque(maxlen=self.kept)).append(cur[4])
        self.current[instrument] = [index, price, price, price, price]

    def view(self, instrument: int, ts: int, price: int) -> BarView:
        closes = list(self.closes.get(instrument, ()))
        cur = self.current.get(instrument)
        if cur is None:
            return BarView(price, price, closes)
        if cur[0] < ts // self.interval_ns:
            closes.append(cur[4])
            return BarView(price, cur[4], closes)
        return BarView(cur[1], closes[-1] if closes else price, closes)


__all__ = ["BarsRef"]
