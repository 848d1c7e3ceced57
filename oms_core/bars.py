"""Bars of a strategy's interval, built while the engine runs from its timestamped price samples.

Signals are sized and priced on bars (``oms_core/signals.py``: the open of the current bar or
the close of the previous one, volatility over the last ``vol_window`` bar closes). In a replay
the data are bars already; live, the engine samples each instrument's last trade price at every
mark-to-market (a journaled input, so recovery samples the same prices at the same times) and
:class:`Bars` cuts those samples into bars of one interval: a bar's open is its first sample,
its close its last. Cold code, plain Python, integers only.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

BARS_KEPT = 1024  # completed closes kept per instrument (the longest volatility window)


@dataclass(frozen=True, slots=True)
class BarView:
    """What a signal at ``ts`` sees of one instrument's bars."""

    open: int  # open of the bar ``ts`` falls in (the price now when nothing was sampled in it)
    prev_close: int  # close of the previous bar (the price now before a first bar has ended)
    closes: list[int]  # closes of the completed bars, oldest first


class Bars:
    """Bars of ``interval_ns`` per instrument from ``sample(instrument, ts, price)`` calls."""

    def __init__(self, interval_ns: int) -> None:
        if interval_ns <= 0:
            raise ValueError("a bar interval must be positive")
        self.interval_ns = interval_ns
        self.closes: dict[int, deque[int]] = {}
        self.current: dict[int, list[int]] = {}  # instrument -> [bar index, open, close]

    def sample(self, instrument: int, ts: int, price: int) -> None:
        """Add one price sample; a sample in a later interval closes the bar before it."""
        if price <= 0:
            return
        index = ts // self.interval_ns
        cur = self.current.get(instrument)
        if cur is not None and cur[0] >= index:
            cur[2] = price
            return
        if cur is not None:
            self.closes.setdefault(instrument, deque(maxlen=BARS_KEPT)).append(cur[2])
        self.current[instrument] = [index, price, price]

    def view(self, instrument: int, ts: int, price: int) -> BarView:
        """The bars of ``instrument`` as a signal at ``ts`` sees them; ``price`` (the last
        trade, or the mid) stands in for what no sample has told yet."""
        closes = list(self.closes.get(instrument, ()))
        cur = self.current.get(instrument)
        if cur is None:
            return BarView(price, price, closes)
        if cur[0] < ts // self.interval_ns:  # the sampled bar has ended
            closes.append(cur[2])
            return BarView(price, cur[2], closes)
        return BarView(cur[1], closes[-1] if closes else price, closes)

    # -- the engine's snapshot keeps this beside the core's
    def state(self) -> dict[str, Any]:
        return {"closes": {str(k): list(v) for k, v in self.closes.items()},
                "current": {str(k): list(v) for k, v in self.current.items()}}

    def restore(self, state: dict[str, Any]) -> None:
        self.closes = {int(k): deque((int(x) for x in v), maxlen=BARS_KEPT)
                       for k, v in state.get("closes", {}).items()}
        self.current = {int(k): [int(x) for x in v] for k, v in state.get("current", {}).items()}


__all__ = ["BARS_KEPT", "BarView", "Bars"]
