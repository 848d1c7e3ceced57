"""Signals -> per-client orders: the pure planner, and apply_signal against a real OmsCore."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bindings.wire.spec import SignalMode
from oms_core.config import OrderParams, build_core, load_config, parse_config
from oms_core.enums import KillMode, OrderStatus, OrderType, Reject, Side, TimeInForce
from oms_core.signals import (
    ClOrdIds,
    InstrumentSpec,
    MarketState,
    Signal,
    apply_signal,
    instrument_spec,
    plan_signal,
    volatility_ppb,
)

D, Q, W = SignalMode.DIRECTION, SignalMode.TARGET_QTY, SignalMode.TARGET_WEIGHT
# price 2 decimals, qty 4 decimals, quote asset 8 decimals: notional_mult 100
INST = InstrumentSpec(id=0, tick=1, lot=10, min_qty=10, max_qty=10**8, notional_mult=100)
MKT = MarketState(open=100_00, prev_close=99_50, vol_ppb=10_000_000)  # 1% per bar
BAL = 10_000 * 10**8  # 10 000 USDT
FIXED = OrderParams(long_only=False, sizing="fixed", fixed_qty={0: 5_000})  # 0.5


def sig(kind: SignalMode, value: int) -> Signal:
    return Signal(strategy=1, instrument=0, kind=kind, value=value, ts=10)


# ---------------------------------------------------------------------- pure planning
def test_volatility_matches_numpy_and_needs_a_full_window():
    closes = [100, 101, 99, 102, 103, 101]
    r = np.diff(closes) / np.array(closes[:-1])
    assert volatility_ppb(closes, 5) == round(np.std(r, ddof=1) * 1e9)
    assert volatility_ppb(closes, 6) == 0
    assert volatility_ppb(closes[-4:], 3) == round(np.std(r[-3:], ddof=1) * 1e9)


def test_direction_fixed_market_entry_from_previous_close():
    p = plan_signal(sig(D, 1), FIXED, INST, MKT, position=0, balance=BAL)
    assert p.code == Reject.OK and p.target == 5_000 and p.cancel_first
    (it,) = p.intents
    assert (it.side, it.order_type, it.qty, it.price, it.bracket) == (
        Side.BUY, OrderType.MARKET, 5_000, 0, False)


def test_long_only_turns_minus_one_into_flat_and_long_short_goes_short():
    lo = replace(FIXED, long_only=True)
    assert plan_signal(sig(D, -1), lo, INST, MKT, 0, BAL).intents == ()
    p = plan_signal(sig(D, -1), lo, INST, MKT, 3_000, BAL)
    assert [(i.side, i.qty) for i in p.intents] == [(Side.SELL, 3_000)]
    p = plan_signal(sig(D, -1), FIXED, INST, MKT, 0, BAL)
    assert [(i.side, i.qty) for i in p.intents] == [(Side.SELL, 5_000)]


def test_flip_is_a_close_then_an_opening_entry():
    p = plan_signal(sig(D, -1), FIXED, INST, MKT, 2_000, BAL)
    assert [(i.side, i.qty, i.order_type) for i in p.intents] == [
        (Side.SELL, 2_000, OrderType.MARKET), (Side.SELL, 5_000, OrderType.MARKET)]
    assert p.target == -5_000


def test_zero_flattens_and_rebalance_trades_only_the_difference():
    p = plan_signal(sig(Q, 0), FIXED, INST, MKT, -1_230, BAL)
    assert [(i.side, i.qty) for i in p.intents] == [(Side.BUY, 1_230)]
    p = plan_signal(sig(Q, 8_000), FIXED, INST, MKT, 5_000, BAL)
    assert [(i.side, i.qty) for i in p.intents] == [(Side.BUY, 3_000)]
    p = plan_signal(sig(Q, 2_000), FIXED, INST, MKT, 5_000, BAL)
    assert [(i.side, i.qty, i.order_type) for i in p.intents] == [
        (Side.SELL, 3_000, OrderType.MARKET)]
    p = plan_signal(sig(Q, 5_000), FIXED, INST, MKT, 5_000, BAL)
    assert p.intents == () and p.code == Reject.OK and not p.cancel_first
    assert plan_signal(sig(Q, 1_005), FIXED, INST, MKT, 0, BAL).code == (
        Reject.QUANTITY_NOT_LOT_MULTIPLE)


def test_target_weight_and_balance_share_sizing():
    # 25% of 10 000 USDT at 99.50 = 25.1256... -> floor to the lot of 0.001 -> 25.125
    p = plan_signal(sig(W, 250_000), FIXED, INST, MKT, 0, BAL)
    assert p.target == 251_250
    assert plan_signal(sig(W, -250_000), FIXED, INST, MKT, 0, BAL).target == -251_250
    share = replace(FIXED, sizing="balance_share", balance_share_ppm=100_000)
    p = plan_signal(sig(D, 1), share, INST, MKT, 0, BAL)
    assert p.target == 100_500  # 1000 USDT / 99.50 = 10.0502 -> 10.050


def test_volatility_targeted_size():
    vt = replace(FIXED, sizing="vol_target", vol_target_ppm=1_000)  # 0.1% of balance per bar
    p = plan_signal(sig(D, 1), vt, INST, MKT, 0, BAL)
    # 10 USDT risk / (99.50 * 1%) = 10.050 units
    assert p.target == 100_500
    p = plan_signal(sig(D, 1), vt, INST, replace(MKT, vol_ppb=0), 0, BAL)
    assert p.code == Reject.NOT_ENOUGH_BARS and "volatility" in p.reason
    capped = replace(vt, max_qty={0: 2_000})
    assert plan_signal(sig(D, 1), capped, INST, MKT, 0, BAL).target == 2_000


def test_limit_entry_offsets_and_bracket_prices():
    lim = replace(FIXED, entry_type=OrderType.LIMIT, entry_ref="open", offset_ticks=3,
                  take_profit="pct", take_profit_ppm=20_000, stop_loss="vol",
                  stop_loss_ppm=2 * 10**6, tif=TimeInForce.IOC)
    (it,) = plan_signal(sig(D, 1), lim, INST, MKT, 0, BAL).intents
    assert it.price == 100_00 - 3 and it.tif == TimeInForce.IOC
    assert it.tp_price == 101_97  # 99.97 + 2% (1.9994, rounded away to 2.00)
    assert it.sl_trigger == 97_97  # 99.97 - 2 x 1% volatility (1.9994 -> 2.00)
    (it,) = plan_signal(sig(D, -1), replace(lim, offset_ticks=0, offset_bps=50), INST, MKT,
                        0, BAL).intents
    assert it.side == Side.SELL and it.price == 100_50  # 0.5% above the open
    assert it.tp_price < it.price < it.sl_trigger


def test_bad_direction_and_missing_price():
    assert plan_signal(sig(D, 2), FIXED, INST, MKT, 0, BAL).code == Reject.INVALID_SIDE
    p = plan_signal(sig(D, 1), FIXED, INST, MarketState(), 0, BAL)
    assert p.code == Reject.NO_REFERENCE_PRICE


def test_single_entry_passes_entries_and_exits_to_the_core():
    p = plan_signal(sig(D, 1), FIXED, INST, MKT, 5_000, BAL, single_entry=True)
    assert [(i.side, i.qty) for i in p.intents] == [(Side.BUY, 5_000)] and not p.cancel_first
    p = plan_signal(sig(D, -1), FIXED, INST, MKT, 5_000, BAL, single_entry=True)
    assert [(i.side, i.qty) for i in p.intents] == [(Side.SELL, 5_000)]
    # nothing held: -1 is "stay flat" (the core would refuse a sell that opens a position)
    p = plan_signal(sig(D, -1), FIXED, INST, MKT, 0, BAL, single_entry=True)
    assert p.code == Reject.OK and p.intents == () and p.cancel_first


# -------------------------------------------------------------------- with a real core
CONFIG = """
[assets]
USDT = { precision = 8 }
BTC = { precision = 8 }
[exchanges.sim]
kind = "sim"
[instruments.BTCUSDT]
base = "BTC"
quote = "USDT"
tick = "0.01"
lot = "0.0001"
max_qty = "100"
[strategies.trend]
instruments = ["BTCUSDT"]
[strategies.once]
instruments = ["BTCUSDT"]
single_entry = true

[defaults.limits]
max_reference_age_s = "0"
[clients.alice]
strategies = ["trend", "once"]
cash = { USDT = "100000" }
[clients.alice.exchange_accounts.sim]
[clients.alice.orders]
direction = "long_only"
sizing = "fixed"
fixed_qty = "0.5"
take_profit = "pct"
take_profit_value = "0.02"
stop_loss = "vol"
stop_loss_value = "2"
vol_window = 5

[clients.bob]
strategies = ["trend"]
cash = { USDT = "1000" }
[clients.bob.exchange_accounts.sim]
[clients.bob.limits]
max_position = "0.2"
[clients.bob.orders]
direction = "long_short"
sizing = "fixed"
fixed_qty = "0.5"

[clients.carol]
strategies = ["trend"]
cash = { USDT = "20000" }
[clients.carol.exchange_accounts.sim]
[clients.carol.orders]
direction = "long_short"
entry = "limit"
limit_offset_bps = 10
sizing = "balance_share"
balance_share = "0.5"
"""
PRICE = 20_000_00  # 20 000.00
CLOSES = [19_800_00, 20_100_00, 19_900_00, 20_200_00, 20_000_00, 20_000_00]


@pytest.fixture()
def env():
    cfg = parse_config(CONFIG, file="t.toml")
    core = build_core(cfg)
    core.set_price(0, PRICE, PRICE - 1, PRICE + 1, 1)
    return cfg, core


def fill(core, order_id: int, price: int, trade: int, ts: int = 20) -> None:
    o = core.order(order_id)
    core.on_ack(order_id, ts)
    assert core.on_fill(order_id, trade, o["qty"], price, 0, 0, 2, ts) == Reject.OK


def test_one_answer_per_follower_with_ids_or_reasons(env):
    cfg, core = env
    market = MarketState(open=PRICE, prev_close=PRICE)
    answers = apply_signal(core, cfg, Signal(1, 0, D, 1, ts=10), market, closes=CLOSES,
                           cl_ids=ClOrdIds())
    by = {a.client: a for a in answers}
    assert list(by) == ["alice", "bob", "carol"]
    # alice: bracket of entry + take-profit + stop-loss
    a = by["alice"]
    assert a.accepted and len(a.order_ids) == 3 and a.target == 5_000
    entry, tp, sl = (core.order(i) for i in a.order_ids)
    assert entry["qty"] == 5_000 and entry["order_type"] == OrderType.MARKET
    assert tp["price"] == PRICE + PRICE * 2 // 100
    assert sl["trigger"] < PRICE
    # bob: 0.5 BTC above his max_position of 0.2
    assert not by["bob"].accepted and by["bob"].code == Reject.MAX_POSITION
    assert by["bob"].reason.startswith("position including open orders")
    # carol: half of 20 000 USDT at a limit 10 bps below 20 000
    c = by["carol"]
    assert c.accepted and len(c.order_ids) == 1
    o = core.order(c.order_ids[0])
    assert o["price"] == PRICE - PRICE // 1000 and o["qty"] == 5_000
    assert o["order_type"] == OrderType.LIMIT


def test_fills_then_flatten_and_single_entry(env):
    cfg, core = env
    ids = ClOrdIds()
    market = MarketState(open=PRICE, prev_close=PRICE)
    once = cfg.ids.strategies["once"]
    (a,) = apply_signal(core, cfg, Signal(once, 0, D, 1, 10), market, CLOSES, cl_ids=ids)
    assert a.accepted and len(a.order_ids) == 3
    fill(core, a.order_ids[0], PRICE, trade=1)
    assert core.strategy_position(0, once, 0)["qty"] == 5_000
    # a second buy while holding: the core rejects it for this client
    (a2,) = apply_signal(core, cfg, Signal(once, 0, D, 1, 30), market, CLOSES, cl_ids=ids)
    assert not a2.accepted and a2.code == Reject.SINGLE_ENTRY
    # flatten: the bracket exits are canceled first, then a market sell is sent
    tp_id = a.order_ids[1]
    (f,) = apply_signal(core, cfg, Signal(once, 0, D, 0, 40), market, cl_ids=ids)
    assert f.canceled >= 1
    if not f.accepted:
        # the take-profit rests at the venue: its quantity stays reserved until the venue
        # confirms the cancel; after that the flatten goes through
        assert f.code in (Reject.LONG_ONLY, Reject.SINGLE_ENTRY)
        core.on_canceled(tp_id, 41)
        (f,) = apply_signal(core, cfg, Signal(once, 0, D, 0, 42), market, cl_ids=ids)
    assert f.accepted and len(f.order_ids) == 1
    sell = core.order(f.order_ids[0])
    assert sell["side"] == Side.SELL and sell["qty"] == 5_000
    fill(core, f.order_ids[0], PRICE + 100, trade=2, ts=50)
    assert core.strategy_position(0, once, 0)["qty"] == 0
    # -1 while holding nothing: accepted, no order, nothing reaches the core's checks
    (s,) = apply_signal(core, cfg, Signal(once, 0, D, -1, 60), market, cl_ids=ids)
    assert s.accepted and s.order_ids == () and s.reason == "already flat"
    assert core.strategy_position(0, once, 0)["qty"] == 0


def test_rebalance_to_target_quantity_trades_the_difference(env):
    cfg, core = env
    market = MarketState(open=PRICE, prev_close=PRICE)
    ids = ClOrdIds()
    answers = apply_signal(core, cfg, Signal(1, 0, Q, 3_000, 10), market, CLOSES, cl_ids=ids)
    carol = next(a for a in answers if a.client == "carol")
    fill(core, carol.order_ids[0], PRICE - 20_00, trade=7)
    answers = apply_signal(core, cfg, Signal(1, 0, Q, -1_000, 30), market, CLOSES, cl_ids=ids)
    carol = next(a for a in answers if a.client == "carol")
    assert carol.accepted and carol.target == -1_000
    orders = [core.order(i) for i in carol.order_ids]
    assert [(o["side"], o["qty"]) for o in orders] == [(Side.SELL, 3_000), (Side.SELL, 1_000)]
    alice = next(a for a in answers if a.client == "alice")
    assert alice.accepted and alice.target == 0  # long-only: a short target means flat


def test_halted_client_and_strategy_are_answered_with_the_reason(env):
    cfg, core = env
    market = MarketState(open=PRICE, prev_close=PRICE)
    ids = ClOrdIds()
    core.set_kill(1, cfg.ids.accounts["carol"], KillMode.HALT)
    answers = apply_signal(core, cfg, Signal(1, 0, D, 1, 10), market, CLOSES, cl_ids=ids)
    carol = next(a for a in answers if a.client == "carol")
    assert carol.code == Reject.ACCOUNT_HALTED and carol.reason == "account is halted"
    core.set_kill(2, 1, KillMode.HALT)
    answers = apply_signal(core, cfg, Signal(1, 0, D, 1, 11), market, CLOSES, cl_ids=ids)
    assert [a.code for a in answers] == [Reject.STRATEGY_HALTED, Reject.STRATEGY_HALTED,
                                         Reject.ACCOUNT_HALTED]


def test_unknown_strategy_and_instrument_spec(env):
    cfg, core = env
    (a,) = apply_signal(core, cfg, Signal(9, 0, D, 1, 10), MarketState(PRICE, PRICE),
                        cl_ids=ClOrdIds())
    assert not a.accepted and a.code == Reject.UNKNOWN_STRATEGY
    spec = instrument_spec(cfg, 0)
    assert (spec.tick, spec.lot, spec.notional_mult) == (1, 1, 100)
    assert core.order(1) is None or core.order(1)["status"] != OrderStatus.FILLED


def test_example_config_signal_reaches_each_follower():
    cfg = load_config(Path(__file__).resolve().parents[3] / "examples" / "oms.toml")
    core = build_core(cfg)
    eth = cfg.ids.instruments["ETHUSDT"]
    core.set_price(eth, 3_000_00, 2_999_99, 3_000_01, 1)
    closes = [3_000_00 + (15_00 if i % 2 else -15_00) for i in range(30)]
    answers = apply_signal(core, cfg, Signal(cfg.ids.strategies["breakout"], eth, D, 1, 10),
                           MarketState(3_000_00, 3_000_00), closes, cl_ids=ClOrdIds())
    assert [a.client for a in answers] == ["alice", "carol"]
    assert all(a.accepted for a in answers), answers
    alice, carol = answers
    assert len(alice.order_ids) == 3  # bracket: entry, take-profit, stop-loss
    assert len(carol.order_ids) == 2  # entry and stop-loss
    # alice: 10% of 100 000 USDT at 3000 = 3.333 ETH (lot 0.001, qty precision 4)
    assert core.order(alice.order_ids[0])["qty"] == 33_330
    # carol: 0.1% of 250 000 USDT = 250 per 1-sd bar; returns of +-1% (sd 1.026%) at 3000
    # -> 250 / 30.78 = 8.122 ETH (below her 10 ETH cap)
    assert core.order(carol.order_ids[0])["qty"] == 81_220


def test_example_config_trades_every_strategy_for_every_follower():
    """Each strategy of examples/oms.toml on each of its instruments, long then flat, at the
    paper market's starting prices: no follower is refused by its own configuration."""
    from oms_core.supervisor import PAPER_PRICES

    cfg = load_config(Path(__file__).resolve().parents[3] / "examples" / "oms.toml")
    core = build_core(cfg)
    ids, ts = ClOrdIds(), 10
    for sname, strategy in cfg.strategies.items():
        for iname in strategy.instruments:
            inst = cfg.instruments[iname]
            price = int(PAPER_PRICES[inst.base]) * 10**inst.price_precision
            core.set_price(inst.id, price, price - inst.tick, price + inst.tick, ts)
            closes = [price + (price // 100 if i % 2 else -price // 100) for i in range(30)]
            for direction in (-1, 1, -1):
                ts += 1
                answers = apply_signal(core, cfg, Signal(strategy.id, inst.id, D, direction, ts),
                                       MarketState(price, price), closes, cl_ids=ids)
                assert answers and all(a.accepted for a in answers), (sname, iname, direction,
                                                                      answers)
