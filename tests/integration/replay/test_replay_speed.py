"""Replay's fast path gives the results of the step-by-step path, bit for bit.

The fast path (``Replayer(fast=True)``, the default) plays quiet spans of bar times as one
market-data frame and keeps the venue's quotes lazy; ``fast=False`` plays every bar time step
by step and places every quote, as replay did before the fast path existed. Both must give the
same event records (digest), fills, positions, and the same recent-closes samples in the
engine (volatility sizing reads them). The pinned digests were recorded with the step-by-step
replay before the fast path was written (they change when the engine's records change).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from replay_fixtures import SMALL_TOML, small_config, small_market

from bindings.wire import records as wire
from oms_core.config import parse_config
from oms_core.enums import OrderType, Side, TimeInForce
from replay import BarVenue, Replayer, run_replay

pytestmark = pytest.mark.timeout(120)

# recorded with the step-by-step replay (run_replay(fast=False)), same engine; a change of
# the engine's records changes them (the fast and step-by-step paths must still agree)
PINNED = {
    (4, 17): "9d6de20e29160a13eed168f78bab780a9e73ef36cad35574c9e7ed0b353ca1d9",
    (26, 7): "f298ee392c7662f8c997a2b9b88edb1de51a4ec619d1233716ac17fe5a3e7bf7",
}

# SMALL_TOML plus clients that make the engine hold orders and timers and read the closes:
# volatility-targeted size with brackets (take-profit by volatility, stop-loss by percent,
# held by the engine), and limit entries that expire (GTD timers) under a limit on the age of
# the reference price (a close given the wrong time would show)
VARIED_TOML = SMALL_TOML + """
[clients.dave]
strategies = ["trend"]
cash = { USDT = "200000" }
[clients.dave.exchange_accounts.sim]
api_key_env = "X_UNUSED_KEY"
api_secret_env = "X_UNUSED_SECRET"
[clients.dave.orders]
direction = "long_short"
sizing = "vol_target"
vol_target = "0.001"
vol_window = 30
max_qty = { BTCUSDT = "1", ETHUSDT = "10" }
take_profit = "vol"
take_profit_value = "3"
stop_loss = "pct"
stop_loss_value = "0.002"

[clients.erin]
strategies = ["breakout"]
cash = { USDT = "200000" }
[clients.erin.exchange_accounts.sim]
api_key_env = "X_UNUSED_KEY"
api_secret_env = "X_UNUSED_SECRET"
[clients.erin.limits]
max_reference_age_s = "100"
[clients.erin.orders]
direction = "long_short"
entry = "limit"
limit_offset_ticks = 3
time_in_force = "gtd"
expire_after_s = "420"
sizing = "fixed"
fixed_qty = { ETHUSDT = "0.3", SOLUSDT = "2" }
"""


@pytest.mark.parametrize(("hours", "every"), sorted(PINNED))
def test_digest_equals_the_one_recorded_before_the_fast_path(hours, every):
    bars, sigs = small_market(hours=hours, every=every)
    fast = run_replay(small_config(), bars, sigs)
    assert fast.digest == PINNED[(hours, every)]


def _gappy(bars: pa.Table, seed: int = 3) -> pa.Table:
    """Drop 3% of the bars at random and SOLUSDT (id 2) for three hours."""
    ts = bars.column("ts").to_numpy()
    inst = bars.column("instrument").to_numpy()
    rng = np.random.default_rng(seed)
    keep = rng.random(len(ts)) > 0.03
    t0 = int(ts[0]) + 5 * 3_600_000_000_000
    keep &= ~((inst == 2) & (ts >= t0) & (ts < t0 + 3 * 3_600_000_000_000))
    return bars.filter(pa.array(keep))


def _run(cfg, bars, sigs, fast: bool, mark_every_s: int):
    rp = Replayer(cfg, record_fills=True, mark_every_s=mark_every_s, fast=fast)
    res = rp.run(bars, sigs)
    closes = {k: list(v) for k, v in rp.engine._closes.items()}
    return res, closes, rp.quotes


@pytest.mark.parametrize("case", ["varied", "gappy", "small"])
def test_fast_path_equals_step_by_step(case):
    cfg = parse_config(VARIED_TOML if case != "small" else SMALL_TOML, "varied.toml")
    bars, sigs = small_market(hours=26, every=23)
    mark = 600
    if case == "gappy":
        bars = _gappy(bars)
        mark = 0
    a, closes_a, (asked, placed) = _run(cfg, bars, sigs, True, mark)
    b, closes_b, (asked_b, placed_b) = _run(cfg, bars, sigs, False, mark)
    assert a.fills > 50 and a.events > 200 and a.signals == sigs.num_rows
    assert a.digest == b.digest
    assert a.fills_list == b.fills_list
    assert a.positions == b.positions
    assert (a.events, a.fills, a.acks, a.rejects, a.orders) == (
        b.events, b.fills, b.acks, b.rejects, b.orders)
    assert closes_a == closes_b and len(closes_a) == 3
    assert all(len(v) == 1024 for v in closes_a.values())
    assert asked == asked_b == placed_b and placed < asked  # the lazy venue placed fewer


def _orders(v: BarVenue, script: list) -> list[bytes]:
    out = []
    for step in script:
        if step[0] == "quote":
            v.quote(0, step[1], step[2])
        else:
            oid, side, price, qty, ot = step[1:]
            v.on_engine(wire.decode(wire.encode(
                "GW_NEW_ORDER", order_id=oid, price=price, quantity=qty, account=oid % 3,
                instrument=0, side=int(side), order_type=int(ot), tif=int(TimeInForce.GTC))))
        out.append(v.take_reports())
    return out


def test_lazy_venue_reports_what_the_eager_venue_reports():
    """Same reports, byte for byte (exchange order ids and trade ids included), when quotes
    are skipped, superseded, placed before an order and placed because they cross."""
    from replay_fixtures import tiny_config

    rng = np.random.default_rng(5)
    script: list = []
    px = 10_000
    for k in range(400):
        px = max(100, px + int(rng.integers(-12, 13)))
        script.append(("quote", px, int(rng.integers(1, 4)) * 10))
        if k % 7 == 3:
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            limit = rng.random() < 0.7
            off = int(rng.integers(0, 6))
            price = (px - off if side == Side.BUY else px + off) if limit else 0
            script.append(("new", 100 + k, side, price, int(rng.integers(1, 60)),
                           OrderType.LIMIT if limit else OrderType.MARKET))
    lazy, eager = BarVenue(tiny_config()), BarVenue(tiny_config(), lazy=False)
    got, want = _orders(lazy, script), _orders(eager, script)
    assert got == want
    assert sum(len(wire.decode_frame(r)) for r in want if r) > 100
    assert lazy.n_placed < lazy.n_quotes // 2 and eager.n_placed == eager.n_quotes
