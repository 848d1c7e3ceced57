"""The compiled live bars (oms_core/bars.pyx) against their plain-Python twin
(oms_core/bars_ref.py): every interval, every instrument, after any sequence of trades (clock
steps back included), the same current bar, completed closes and signal view; a snapshot
round trip keeps them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oms_core.bars import BarView, LiveBars
from oms_core.bars_ref import BarsRef

INTERVALS = (1_000, 5_000, 60_000)  # ns: small numbers keep the generated times short
KEPT = 7  # a small ring, so that the generated walks wrap it

trades = st.lists(st.tuples(st.integers(0, 2), st.integers(-2_000, 20_000),
                            st.integers(-5, 1_000)), max_size=200)


def _walk(steps: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """(instrument, ts, price) with ts a random walk that mostly moves forward."""
    ts, out = 10**6, []
    for inst, dt, price in steps:
        ts += dt
        out.append((inst, ts, price))
    return out


@settings(max_examples=300, deadline=None)
@given(trades, st.integers(0, 30_000))
def test_live_bars_equal_the_reference(steps: list[tuple[int, int, int]], later: int) -> None:
    live = LiveBars(INTERVALS, 3, kept=KEPT)
    refs = {iv: BarsRef(iv, kept=KEPT) for iv in INTERVALS}
    walk = _walk(steps)
    for inst, ts, price in walk:
        live.trade(inst, ts, price)
        for r in refs.values():
            r.trade(inst, ts, price)
    now = (walk[-1][1] if walk else 10**6) + later
    for iv, r in refs.items():
        for inst in range(3):
            assert live.completed(iv, inst) == list(r.closes.get(inst, ()))
            cur = r.current.get(inst)
            assert live.current(iv, inst) == (tuple(cur) if cur else None)
            assert live.seen(iv, inst) == (cur is not None)
            assert live.view(iv, inst, now, 777) == r.view(inst, now, 777)
    again = LiveBars(INTERVALS, 3, kept=KEPT)
    again.restore(live.state())
    assert again.state() == live.state()


def test_open_is_the_first_trade_and_close_the_last() -> None:
    bars = LiveBars([10], 1)
    for ts, px in ((100, 50), (103, 58), (105, 41), (109, 52), (110, 60), (112, 61)):
        bars.trade(0, ts, px)
    assert bars.completed(10, 0) == [52]
    assert bars.current(10, 0) == (11, 60, 61, 60, 61)
    assert bars.view(10, 0, 115, 99) == BarView(60, 52, [52])
    # once the current bar's interval has passed, it counts as completed
    assert bars.view(10, 0, 120, 99) == BarView(99, 61, [52, 61])
    # trades of instruments without bars and prices <= 0 are ignored
    bars.trade(5, 121, 70)
    bars.trade(0, 121, 0)
    assert bars.n_trades == 6


def test_restore_drops_unknown_series_and_keeps_the_last_closes() -> None:
    bars = LiveBars([10, 20], 2, kept=3)
    bars.restore({"10": {"0": {"bar": [9, 1, 2, 1, 2], "closes": [5, 6, 7, 8]},
                         "7": {"bar": [1, 1, 1, 1, 1], "closes": []}},
                  "30": {"0": {"bar": [1, 1, 1, 1, 1], "closes": []}}})
    assert bars.completed(10, 0) == [6, 7, 8]
    assert bars.current(10, 0) == (9, 1, 2, 1, 2)
    assert bars.current(20, 0) is None


def test_intervals_must_be_positive() -> None:
    with pytest.raises(ValueError):
        LiveBars([0], 1)
