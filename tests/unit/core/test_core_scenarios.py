"""Named scenarios of the compiled core: the behaviours a trader relies on, one per test."""

from __future__ import annotations

import pytest

from oms_core.core import OmsCore
from oms_core.enums import (
    Alert,
    EventType,
    ExitReason,
    KillMode,
    Limit,
    OrderStatus,
    OrderType,
    Reject,
    Side,
    TimeInForce,
)

BUY, SELL = Side.BUY, Side.SELL
LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET
GTC = TimeInForce.GTC
PX = 5_000_000  # 50,000.00
USDT, BTC = 0, 1


@pytest.fixture
def core() -> OmsCore:
    c = OmsCore(max_orders=1024)
    c.add_asset(USDT, "USDT", 8)
    c.add_asset(BTC, "BTC", 8)
    # price precision 2, qty precision 5, tick 0.01, lot 0.00001, min notional 5 USDT
    c.add_instrument(0, "BTCUSDT", 0, BTC, USDT, 2, 5, 1, 1, 1, 10**10, 5 * 10**8)
    c.add_account(0)
    c.add_account(1)
    c.add_strategy(1)
    c.deposit(0, USDT, 1_000_000 * 10**8)
    c.set_price(0, PX, PX - 1, PX + 1, 1)
    c.drain_events()
    return c


def buy(c, clid, price=PX, qty=100_000, account=0, ts=10, otype=LIMIT, **kw):
    return c.submit(account, 1, 0, clid, BUY, otype, GTC, price if otype == LIMIT else 0, 0,
                    qty, 0, 0, ts, **kw)


def sell(c, clid, price=PX, qty=100_000, account=0, ts=10, otype=LIMIT):
    return c.submit(account, 1, 0, clid, SELL, otype, GTC, price if otype == LIMIT else 0, 0,
                    qty, 0, 0, ts)


def test_fill_after_cancel_request_is_booked_and_closes_the_order(core):
    code, oid = buy(core, 1)
    core.on_ack(oid, 11)
    assert core.cancel(0, oid, 12) == Reject.OK
    assert core.order(oid)["status"] == OrderStatus.PENDING_CANCEL
    assert core.on_fill(oid, 7, 100_000, PX, 0, USDT, 1, 13) == Reject.OK
    assert core.order(oid)["status"] == OrderStatus.FILLED
    assert core.on_canceled(oid, 14) == Reject.INVALID_TRANSITION  # too late: it filled
    assert core.position(0, 0)["qty"] == 100_000


def test_late_fill_after_cancel_confirm_still_moves_the_position(core):
    code, oid = buy(core, 1)
    core.on_ack(oid, 11)
    core.cancel(0, oid, 12)
    core.on_canceled(oid, 13)
    assert core.on_fill(oid, 8, 40_000, PX, 0, USDT, 1, 14) == Reject.OK
    assert core.order(oid)["status"] == OrderStatus.CANCELED
    assert core.position(0, 0)["qty"] == 40_000


def test_duplicate_trade_id_is_not_counted_twice(core):
    code, oid = buy(core, 1)
    assert core.on_fill(oid, 9, 50_000, PX, 0, USDT, 1, 11) == Reject.OK
    assert core.on_fill(oid, 9, 50_000, PX, 0, USDT, 1, 12) == Reject.DUPLICATE_FILL
    assert core.order(oid)["filled"] == 50_000
    assert core.duplicate_fills == 1


def test_overfill_is_refused_loudly_and_halts_the_account(core):
    code, oid = buy(core, 1)
    core.on_fill(oid, 1, 90_000, PX, 0, USDT, 1, 11)
    assert core.on_fill(oid, 2, 20_000, PX, 0, USDT, 1, 12) == Reject.OVERFILL
    assert core.order(oid)["filled"] == 90_000
    alerts = [e for e in core.drain_events() if e[0] == EventType.ALERT]
    assert alerts[-1][1] == Alert.OVERFILL
    assert core.account_state(0)["kill"] == KillMode.HALT
    assert buy(core, 2)[0] == Reject.ACCOUNT_HALTED


def test_ack_arriving_after_fill_does_not_regress_status(core):
    code, oid = buy(core, 1)
    core.on_fill(oid, 1, 30_000, PX, 0, USDT, 1, 11)
    assert core.order(oid)["status"] == OrderStatus.PARTIALLY_FILLED
    assert core.on_ack(oid, 12) == Reject.OK
    assert core.order(oid)["status"] == OrderStatus.PARTIALLY_FILLED


def test_position_flips_through_zero_and_closes_the_round_trip(core):
    code, a = buy(core, 1, qty=100_000)
    core.on_fill(a, 1, 100_000, PX, 0, USDT, 1, 11)
    code, b = sell(core, 2, price=PX + 100, qty=300_000)
    core.drain_events()
    core.on_fill(b, 2, 300_000, PX + 100, 0, USDT, 1, 12)
    pos = core.position(0, 0)
    assert pos["qty"] == -200_000
    # realized: 1 BTC * 1.00 USDT; units: quote precision 8
    assert pos["realized"] == 100_000 * 100 * 10
    closed = [e for e in core.drain_events() if e[0] == EventType.TRADE_CLOSED]
    assert closed and closed[0][1] == ExitReason.FLIP
    assert core.position(0, 0)["entry_ts"] == 12


def test_spot_order_locks_funds_and_insufficient_balance_rejects(core):
    core.set_limit(1, Limit.CHECK_BALANCE, 1)
    core.deposit(1, USDT, 100 * 10**8)  # 100 USDT
    code, oid = buy(core, 1, account=1, qty=100)  # 0.001 BTC = 50 USDT
    assert code == Reject.OK
    assert core.balance(1, USDT) == (100 * 10**8, 50 * 10**8)
    assert buy(core, 2, account=1, qty=200)[0] == Reject.INSUFFICIENT_BALANCE
    core.cancel(1, oid, 11)
    core.on_canceled(oid, 12)
    assert core.balance(1, USDT) == (100 * 10**8, 0)


def test_self_trade_prevention_uses_best_resting_price(core):
    code, resting = sell(core, 1, price=PX + 500)
    assert buy(core, 2, price=PX + 400)[0] == Reject.OK
    assert buy(core, 3, price=PX + 500)[0] == Reject.SELF_TRADE
    assert buy(core, 4, otype=MARKET)[0] == Reject.SELF_TRADE
    # another account may trade against it
    assert buy(core, 5, price=PX + 500, account=1)[0] == Reject.OK


def test_price_collar_and_stale_reference(core):
    core.set_limit(0, Limit.COLLAR_BPS, 100)  # 1 %
    assert buy(core, 1, price=PX * 101 // 100)[0] == Reject.OK
    assert buy(core, 2, price=PX * 101 // 100 + 1)[0] == Reject.PRICE_COLLAR
    core.set_price(0, PX, PX - 1, PX + 1, 20, True)
    assert buy(core, 3, otype=MARKET, ts=21)[0] == Reject.STALE_REFERENCE_PRICE


def test_book_without_a_trade_is_the_reference_until_the_first_trade():
    """Right after start the gateways know the book before any trade: market orders are
    checked against the mid instead of refused for want of a last price."""
    from oms_core.reference import ReferenceModel

    for c in (OmsCore(max_orders=64), ReferenceModel(max_orders=64)):
        c.add_asset(USDT, "USDT", 8)
        c.add_asset(BTC, "BTC", 8)
        c.add_instrument(0, "BTCUSDT", 0, BTC, USDT, 2, 5, 1, 1, 1, 10**10, 5 * 10**8)
        c.add_account(0)
        c.add_strategy(1)
        c.deposit(0, USDT, 1_000_000 * 10**8)
        c.set_limit(0, Limit.COLLAR_BPS, 100)
        assert buy(c, 1, otype=MARKET)[0] == Reject.NO_REFERENCE_PRICE
        c.set_price(0, 0, PX - 100, PX + 100, 5)  # book only
        assert buy(c, 2, otype=MARKET)[0] == Reject.OK
        assert buy(c, 3, price=PX * 101 // 100)[0] == Reject.OK  # collar around the mid
        assert buy(c, 4, price=PX * 102 // 100)[0] == Reject.PRICE_COLLAR
        c.set_price(0, PX * 2, PX - 100, PX + 100, 6)  # a trade: last is the reference again
        assert buy(c, 5, price=PX * 102 // 100)[0] == Reject.OK


def test_max_position_counts_open_orders(core):
    core.set_limit(0, Limit.MAX_POSITION, 250_000)
    assert buy(core, 1, qty=100_000)[0] == Reject.OK
    assert buy(core, 2, qty=100_000)[0] == Reject.OK
    assert buy(core, 3, qty=100_000)[0] == Reject.MAX_POSITION


def test_duplicate_client_order_id_never_creates_a_second_order(core):
    code, oid = buy(core, 42)
    assert buy(core, 42)[0] == Reject.DUPLICATE_CLIENT_ORDER_ID
    assert core.order_id_by_client_id(0, 42) == oid
    assert buy(core, 42, account=1)[0] == Reject.OK  # unique per account


def test_oco_partial_fill_resizes_the_other_leg_and_full_fill_cancels_it(core):
    core.on_fill(buy(core, 1, qty=100_000)[1], 1, 100_000, PX, 0, USDT, 1, 11)
    code, tp, sl = core.submit_oco(0, 1, 0, 2, 3, SELL, LIMIT, PX + 1000, 0,
                                   OrderType.STOP_MARKET, 0, PX - 1000, 100_000, GTC, 12)
    assert code == Reject.OK
    core.on_ack(tp, 13)
    core.on_fill(tp, 2, 40_000, PX + 1000, 0, USDT, 1, 14)
    assert core.order(sl)["qty"] == 60_000  # held by the engine: resized in place
    core.on_fill(tp, 3, 60_000, PX + 1000, 0, USDT, 1, 15)
    assert core.order(sl)["status"] == OrderStatus.CANCELED


def test_bracket_children_wait_for_the_entry_and_are_sized_to_its_fill(core):
    code, entry, tp, sl = core.submit_bracket(0, 1, 0, 1, 2, 3, BUY, LIMIT, PX, 100_000,
                                              PX + 1000, PX - 1000, GTC, 10)
    assert code == Reject.OK
    assert core.order(tp)["hold"] == 1 and core.order(sl)["hold"] == 1
    core.on_fill(entry, 1, 30_000, PX, 0, USDT, 1, 11)
    core.cancel(0, entry, 12)
    core.on_canceled(entry, 13)
    assert core.order(tp)["qty"] == 30_000 and core.order(tp)["hold"] == 0
    assert core.order(sl)["qty"] == 30_000 and core.order(sl)["hold"] == 2  # engine-held stop
    core.drain_events()
    core.set_price(0, PX - 1000, 0, 0, 14)  # stop-loss triggers
    events = core.drain_events()
    # the take-profit is at the venue: it is canceled first, the stop waits for that
    assert [e[5] for e in events if e[0] == EventType.SEND_ORDER] == []
    assert [e[5] for e in events if e[0] == EventType.SEND_CANCEL] == [tp]
    core.on_canceled(tp, 15)
    sends = [e for e in core.drain_events() if e[0] == EventType.SEND_ORDER]
    assert [e[5] for e in sends] == [sl]


def test_trailing_stop_follows_the_market_then_fires_on_the_retrace(core):
    core.on_fill(buy(core, 1)[1], 1, 100_000, PX, 0, USDT, 1, 11)
    code, ts_id = core.submit(0, 1, 0, 2, SELL, OrderType.TRAILING_STOP, GTC, 0, 0, 100_000,
                              0, 0, 12, 500)
    assert code == Reject.OK
    core.set_price(0, PX + 2000, 0, 0, 13)
    assert core.order(ts_id)["trail_anchor"] == PX + 2000
    core.drain_events()
    core.set_price(0, PX + 1600, 0, 0, 14)
    assert not [e for e in core.drain_events() if e[0] == EventType.SEND_ORDER]
    core.set_price(0, PX + 1500, 0, 0, 15)
    assert [e[5] for e in core.drain_events() if e[0] == EventType.SEND_ORDER] == [ts_id]


def test_gtd_order_expires_through_a_cancel_and_ends_expired(core):
    code, oid = core.submit(0, 1, 0, 1, BUY, LIMIT, TimeInForce.GTD, PX, 0, 100_000, 0, 1000,
                            10)
    core.on_ack(oid, 11)
    assert core.on_timer(999) == 0
    assert core.on_timer(1000) == 1
    assert core.order(oid)["status"] == OrderStatus.PENDING_CANCEL
    core.on_canceled(oid, 1001)
    assert core.order(oid)["status"] == OrderStatus.EXPIRED


def test_daily_loss_breaker_halts_the_account(core):
    core.set_limit(0, Limit.MAX_DAILY_LOSS, 10 * 10**8)  # 10 USDT
    core.on_fill(buy(core, 1)[1], 1, 100_000, PX, 0, USDT, 1, 11)  # 1 BTC
    core.set_price(0, PX - 2000, 0, 0, 12)  # -20 USDT unrealized
    core.mark_to_market(13)
    assert core.account_state(0)["kill"] == KillMode.HALT
    assert buy(core, 2)[0] == Reject.ACCOUNT_HALTED
    assert core.set_kill(1, 0, KillMode.OFF) == Reject.OK  # an operator resumes it


def test_reduce_only_kill_switch_allows_only_reducing_orders(core):
    core.on_fill(buy(core, 1)[1], 1, 100_000, PX, 0, USDT, 1, 11)
    core.set_kill(0, 0, KillMode.REDUCE_ONLY)
    assert buy(core, 2)[0] == Reject.REDUCE_ONLY_MODE
    assert sell(core, 3, qty=50_000)[0] == Reject.OK
    assert sell(core, 4, qty=60_000)[0] == Reject.REDUCE_ONLY_MODE


@pytest.mark.parametrize("qty", [0, -1, -(2**63), 10**15 + 1, 2**63 - 1])
def test_bad_quantities_are_rejected_not_crashes(core, qty):
    assert buy(core, 1, qty=qty)[0] == Reject.INVALID_QUANTITY
    assert core.open_order_count() == 0


def test_out_of_range_ids_and_prices_are_rejected(core):
    assert core.submit(63, 1, 0, 1, BUY, LIMIT, GTC, PX, 0, 100, 0, 0, 10)[0] == (
        Reject.UNKNOWN_ACCOUNT)
    assert core.submit(2**32 - 1, 1, 0, 1, BUY, LIMIT, GTC, PX, 0, 100, 0, 0, 10)[0] == (
        Reject.UNKNOWN_ACCOUNT)
    assert core.submit(0, 1, 2**32 - 1, 1, BUY, LIMIT, GTC, PX, 0, 100, 0, 0, 10)[0] == (
        Reject.UNKNOWN_INSTRUMENT)
    assert core.submit(0, 1, 0, 1, 9, LIMIT, GTC, PX, 0, 100, 0, 0, 10)[0] == Reject.INVALID_SIDE
    assert buy(core, 1, price=-5)[0] == Reject.INVALID_PRICE
    assert buy(core, 1, price=2**62)[0] == Reject.INVALID_PRICE
    assert core.cancel(0, 2**64 - 1, 10) == Reject.UNKNOWN_ORDER
    assert core.on_fill(2**64 - 1, 1, 1, 1, 0, 0, 1, 10) == Reject.UNKNOWN_ORDER
    with pytest.raises(OverflowError):
        buy(core, 1, qty=2**64)  # not an int64: refused at the Python edge


def test_other_accounts_resting_orders_are_not_self_trades(core):
    # many resting bids of another account at crossing prices: only the own book counts
    for i in range(500):
        assert buy(core, 1000 + i, price=PX - 1 - i, account=1, ts=10 + i)[0] == Reject.OK
    assert sell(core, 1, price=PX)[0] == Reject.OK


@pytest.mark.parametrize("model", ["core", "reference"])
@pytest.mark.parametrize("clamp", [0, 1])
def test_single_entry_sell_above_the_held_quantity_is_refused_or_clamped(model, clamp):
    from oms_core.reference import ReferenceModel

    c = OmsCore(max_orders=64) if model == "core" else ReferenceModel(max_orders=64)
    c.add_asset(USDT, "USDT", 8)
    c.add_asset(BTC, "BTC", 8)
    c.add_instrument(0, "BTCUSDT", 0, BTC, USDT, 2, 5, 1, 1, 1, 10**10, 5 * 10**8)
    c.add_account(0)
    c.add_strategy(1, True)
    c.set_price(0, PX, PX - 1, PX + 1, 1)
    if clamp:
        assert c.set_limit(0, Limit.CLAMP_SINGLE_ENTRY_SELL, 1) == Reject.OK
    code, oid = buy(c, 1, qty=100_000)
    assert c.on_fill(oid, 1, 100_000, PX, 0, USDT, 1, 11) == Reject.OK
    # holding 1.0 BTC: a sell of 1.5 was passed before (only a sell of nothing was refused)
    code, oid = sell(c, 2, qty=150_000, otype=MARKET)
    if clamp:
        assert code == Reject.OK and c.order(oid)["qty"] == 100_000
    else:
        assert (code, oid) == (Reject.SINGLE_ENTRY, 0)
        code, oid = sell(c, 3, qty=100_000, otype=MARKET)
        assert code == Reject.OK  # what is held may be sold
    assert sell(c, 4, qty=10_000, otype=MARKET)[0] == Reject.SINGLE_ENTRY  # nothing free


@pytest.mark.parametrize("model", ["core", "reference"])
def test_a_retried_client_order_id_is_refused_after_its_order_left_the_table(model):
    from oms_core.reference import ReferenceModel

    kind = OmsCore if model == "core" else ReferenceModel
    c = kind(max_orders=16, max_day_orders=64)
    c.add_asset(USDT, "USDT", 8)
    c.add_asset(BTC, "BTC", 8)
    c.add_instrument(0, "BTCUSDT", 0, BTC, USDT, 2, 5, 1, 1, 1, 10**10, 5 * 10**8)
    c.add_account(0)
    c.add_strategy(1)
    c.set_price(0, PX, PX - 1, PX + 1, 1)
    code, first = buy(c, 1)
    c.on_fill(first, 1, 100_000, PX, 0, USDT, 1, 11)  # filled: closed, may be forgotten
    for clid in range(2, 40):  # more orders than slots: the first is evicted
        code, oid = sell(c, clid, price=PX + 100)
        assert code == Reject.OK
        c.cancel(0, oid, 12)
        c.on_canceled(oid, 13)
    assert c.order(first) is None and c.order_id_by_client_id(0, 1) == 0
    # the client retries cl 1 (its ack was lost): it must not trade a second time
    assert buy(c, 1) == (Reject.DUPLICATE_CLIENT_ORDER_ID, 0)
    c.start_of_day(14)  # a new trading day: ids may be used again
    assert buy(c, 1)[0] == Reject.OK


@pytest.mark.parametrize("model", ["core", "reference"])
def test_the_day_id_rule_covers_the_day_s_orders_only_and_counts_every_one(model):
    from oms_core.reference import ReferenceModel

    kind = OmsCore if model == "core" else ReferenceModel
    c = kind(max_orders=4, max_day_orders=8)
    c.add_asset(USDT, "USDT", 8)
    c.add_asset(BTC, "BTC", 8)
    c.add_instrument(0, "BTCUSDT", 0, BTC, USDT, 2, 5, 1, 1, 1, 10**10, 5 * 10**8)
    c.add_account(0)
    c.add_strategy(1)
    c.set_price(0, PX, PX - 1, PX + 1, 1)

    def closed_sell(clid: int) -> None:
        code, oid = sell(c, clid, price=PX + 100)
        assert code == Reject.OK
        c.cancel(0, oid, 12)
        c.on_canceled(oid, 13)

    for clid in (1, 2, 3, 4):  # yesterday's orders, closed, still in the table
        closed_sell(clid)
    c.start_of_day(14)
    for clid in (5, 6, 7, 8):  # today's orders evict yesterday's
        closed_sell(clid)
    assert c.order_id_by_client_id(0, 1) == 0
    closed_sell(1)  # yesterday's id, its order gone: free again today
    for clid in (5, 6):  # today's, evicted by now: refused
        assert sell(c, clid, price=PX + 100) == (Reject.DUPLICATE_CLIENT_ORDER_ID, 0)
    assert sell(c, 8, price=PX + 100) == (Reject.DUPLICATE_CLIENT_ORDER_ID, 0)  # in the table
    closed_sell(9)
    closed_sell(10)
    closed_sell(11)
    # eight orders today (5..11 and 1): the day's id budget is spent
    assert sell(c, 12, price=PX + 100) == (Reject.TABLE_FULL, 0)
    c.start_of_day(15)
    closed_sell(12)


@pytest.mark.parametrize("model", ["core", "reference"])
def test_day_orders_and_day_brackets_expire_at_the_end_of_the_utc_day(model):
    from oms_core.reference import ReferenceModel

    day = 86_400 * 10**9
    c = OmsCore(max_orders=64) if model == "core" else ReferenceModel(max_orders=64)
    c.add_asset(USDT, "USDT", 8)
    c.add_asset(BTC, "BTC", 8)
    c.add_instrument(0, "BTCUSDT", 0, BTC, USDT, 2, 5, 1, 1, 1, 10**10, 5 * 10**8)
    c.add_account(0)
    c.add_strategy(1)
    t = 20_000 * day + 5 * 3_600 * 10**9  # 05:00 UTC
    c.set_price(0, PX, PX - 1, PX + 1, t)
    # a direct DAY order needs no expiry from the client: it is the end of the UTC day
    code, oid = c.submit(0, 1, 0, 1, BUY, LIMIT, TimeInForce.DAY, PX - 100, 0, 100_000, 0, 0,
                         t)
    assert code == Reject.OK and c.order(oid)["expire_ts"] == 20_001 * day
    # a DAY bracket: entry and children expire with the day
    code, entry, tp, sl = c.submit_bracket(0, 1, 0, 2, 3, 4, BUY, LIMIT, PX - 200, 100_000,
                                           PX + 1000, PX - 1000, TimeInForce.DAY, t + 1)
    assert code == Reject.OK
    assert [c.order(i)["expire_ts"] for i in (entry, tp, sl)] == [20_001 * day] * 3
    assert c.order(tp)["tif"] == TimeInForce.DAY
    # a GTD bracket: its expiry is the client's
    code, entry, tp, sl = c.submit_bracket(0, 1, 0, 5, 6, 7, BUY, LIMIT, PX - 300, 100_000,
                                           PX + 1000, PX - 1000, TimeInForce.GTD, t + 2, 0,
                                           t + 10**9)
    assert code == Reject.OK
    assert [c.order(i)["expire_ts"] for i in (entry, tp, sl)] == [t + 10**9] * 3
    c.drain_events()
    assert c.on_timer(20_001 * day) >= 2  # the DAY order and bracket entry (and the GTD one)
    assert c.order(oid)["status"] == OrderStatus.PENDING_CANCEL
    assert c.order(tp)["status"] in (OrderStatus.CANCELED, OrderStatus.EXPIRED)


@pytest.mark.parametrize("model", ["core", "reference"])
def test_spot_bracket_children_sell_what_the_base_fee_left(model):
    # a spot buy of 1.0 BTC that pays 0.001 BTC in fee holds 0.999 BTC: its take-profit and
    # stop-loss sell 0.999 (the venue would refuse 1.0 for want of balance)
    from oms_core.reference import ReferenceModel

    c = OmsCore(max_orders=64) if model == "core" else ReferenceModel(max_orders=64)
    c.add_asset(USDT, "USDT", 8)
    c.add_asset(BTC, "BTC", 8)
    c.add_instrument(0, "BTCUSDT", 0, BTC, USDT, 2, 5, 1, 1, 1, 10**10, 5 * 10**8)
    c.add_account(0)
    c.add_strategy(1)
    c.deposit(0, USDT, 1_000_000 * 10**8)
    assert c.set_limit(0, Limit.CHECK_BALANCE, 1) == Reject.OK
    c.set_price(0, PX, PX - 1, PX + 1, 1)
    code, entry, tp, sl = c.submit_bracket(0, 1, 0, 1, 2, 3, BUY, MARKET, 0, 100_000,
                                           PX + 1000, PX - 1000, GTC, 10)
    assert code == Reject.OK
    assert c.on_fill(entry, 1, 100_000, PX, 100_000, BTC, 2, 11) == Reject.OK  # 0.001 BTC
    assert c.balance(0, BTC) == (99_900_000, 99_900_000)  # 0.999 BTC, locked by the exits
    assert c.order(tp)["qty"] == c.order(sl)["qty"] == 99_900
