"""Matching engine of the simulated exchange: correctness, funds, STP, stops, vs reference."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateways.sim import constants as c
from gateways.sim.ledger import Ledger
from gateways.sim.matching import Book, enum_values
from gateways.sim.reference import ReferenceBook

S = c.SCALE
BASE, QUOTE = 0, 1
BUY, SELL = c.SIDE_BUY, c.SIDE_SELL


def make(n_accounts: int = 4, maker_bps: int = 0, taker_bps: int = 0) -> tuple[Book, Ledger]:
    led = Ledger(n_accounts, 2)
    for a in range(n_accounts):
        led.deposit(a, BASE, 1_000 * S)
        led.deposit(a, QUOTE, 1_000_000 * S)
    return Book(led, BASE, QUOTE, maker_bps=maker_bps, taker_bps=taker_bps), led


def limit(b: Book, acct: int, side: int, px: float, qty: float, tif: int = c.TIF_GTC,
          stp: int = c.STP_NONE) -> int:
    return b.submit(acct, side, c.OT_LIMIT, tif, int(px * S), int(qty * S), 0, stp)


def trades(events: list[tuple]) -> list[tuple[int, int, int, int]]:
    """(price, qty, order_id, is_maker) of every trade event."""
    return [(e[6], e[7], e[1], e[13]) for e in events if e[0] == c.EV_TRADE]


def test_enum_mirror_matches_engine() -> None:
    for name, value in enum_values().items():
        assert getattr(c, name) == value, name


def test_fixed_point_edges() -> None:
    assert c.to_fixed("0.001") == 100_000
    assert c.to_fixed("12") == 12 * S
    assert c.fmt(c.to_fixed("1.5")) == "1.50000000"
    with pytest.raises(ValueError):
        c.to_fixed("1.000000001")
    with pytest.raises(ValueError):
        c.to_fixed("abc")


def test_price_time_priority_and_partial_fills() -> None:
    b, _ = make()
    a1 = limit(b, 1, SELL, 100, 1)
    a2 = limit(b, 2, SELL, 100, 1)
    a3 = limit(b, 3, SELL, 99, 1)
    assert b.level_orders(SELL, 100 * S) == [a1, a2]
    b.clear_events()
    t = limit(b, 0, BUY, 100, 2.5)
    ev = b.events()
    # best price first, then time priority inside the level
    assert [(p, q, o) for p, q, o, m in trades(ev) if m] == [
        (99 * S, S, a3), (100 * S, S, a1), (100 * S, S // 2, a2)]
    assert b.order(a2)["filled"] == S // 2
    assert b.order(a2)["status"] == c.ST_PARTIALLY_FILLED
    assert b.order(t) is None  # fully filled
    assert b.best(SELL) == (100 * S, S // 2)
    assert b.last_price == 100 * S
    b.check_invariants()


def test_ioc_expires_rest_and_fok_all_or_nothing() -> None:
    b, _ = make()
    limit(b, 1, SELL, 100, 1)
    b.clear_events()
    oid = limit(b, 0, BUY, 100, 3, tif=c.TIF_IOC)
    ev = b.events()
    assert trades(ev)[0][:2] == (100 * S, S)
    assert ev[-1][0] == c.EV_EXPIRED and ev[-1][1] == oid and ev[-1][10] == S
    assert b.best(BUY) is None
    limit(b, 1, SELL, 101, 1)
    oid = limit(b, 0, BUY, 101, 2, tif=c.TIF_FOK)
    ev = b.events()
    assert trades(ev) == [] and ev[-1][0] == c.EV_EXPIRED
    assert b.best(SELL) == (101 * S, S)
    limit(b, 0, BUY, 101, 1, tif=c.TIF_FOK)
    assert [t[:2] for t in trades(b.events())] == [(101 * S, S), (101 * S, S)]


def test_limit_maker_rejects_when_crossing() -> None:
    b, _ = make()
    limit(b, 1, SELL, 100, 1)
    assert b.submit(0, BUY, c.OT_LIMIT_MAKER, c.TIF_GTC, 100 * S, S) == -c.REJ_WOULD_TAKE
    oid = b.submit(0, BUY, c.OT_LIMIT_MAKER, c.TIF_GTC, 99 * S, S)
    assert oid > 0 and b.best(BUY) == (99 * S, S)


def test_market_orders_and_fees_and_balances() -> None:
    b, led = make(maker_bps=10, taker_bps=20)
    limit(b, 1, SELL, 100, 2)
    assert led.locked(1, BASE) == 2 * S
    b.clear_events()
    oid = b.submit(0, BUY, c.OT_MARKET, c.TIF_GTC, 0, S)
    ev = b.events()
    assert trades(ev) == [(100 * S, S, oid, 0), (100 * S, S, 1, 1)]
    taker_fee = [e[9] for e in ev if e[0] == c.EV_TRADE and e[1] == oid][0]
    assert taker_fee == S * 20 // 10_000  # in base, received by the buyer
    assert led.free(0, BASE) == 1_000 * S + S - taker_fee
    assert led.free(0, QUOTE) == 1_000_000 * S - 100 * S
    assert led.locked(0, QUOTE) == 0  # market buy released the unused lock
    assert led.free(1, QUOTE) == 1_000_000 * S + 100 * S - 100 * S * 10 // 10_000
    assert led.locked(1, BASE) == S
    # market sell on an empty bid side expires
    b.clear_events()
    oid = b.submit(0, SELL, c.OT_MARKET, c.TIF_GTC, 0, S)
    assert b.events()[-1][:2] == (c.EV_EXPIRED, oid)


def test_buy_limit_lock_released_when_filling_better() -> None:
    b, led = make()
    limit(b, 1, SELL, 90, 1)
    limit(b, 0, BUY, 100, 2)  # 1 @ 90 fills, 1 rests @ 100
    assert led.locked(0, QUOTE) == 100 * S
    assert led.free(0, QUOTE) == 1_000_000 * S - 90 * S - 100 * S
    assert b.cancel(2, 0) == 0
    assert led.locked(0, QUOTE) == 0 and led.free(0, QUOTE) == 1_000_000 * S - 90 * S


def test_insufficient_balance_and_cancel_rules() -> None:
    b, led = make()
    assert limit(b, 0, SELL, 100, 2_000) == -c.REJ_INSUFFICIENT_BALANCE
    assert limit(b, 0, BUY, 100_000, 100) == -c.REJ_INSUFFICIENT_BALANCE
    oid = limit(b, 0, BUY, 100, 1)
    assert b.cancel(oid, 1) == -c.REJ_UNKNOWN_ORDER  # other account
    assert b.cancel(oid, 0) == 0
    assert b.cancel(oid, 0) == -c.REJ_UNKNOWN_ORDER
    assert led.locked(0, QUOTE) == 0


@pytest.mark.parametrize(
    "mode,maker_left,taker_trades",
    [(c.STP_EXPIRE_TAKER, True, 0), (c.STP_EXPIRE_MAKER, False, 1), (c.STP_EXPIRE_BOTH, False, 0),
     (c.STP_NONE, False, 1)],
)
def test_self_trade_prevention(mode: int, maker_left: bool, taker_trades: int) -> None:
    b, _ = make()
    own = limit(b, 0, SELL, 100, 1)
    other = limit(b, 1, SELL, 101, 1)
    b.clear_events()
    t = limit(b, 0, BUY, 101, 1, tif=c.TIF_IOC, stp=mode)
    ev = b.events()
    assert (b.order(own) is not None) == maker_left
    taker_fills = [x for x in trades(ev) if x[2] == t]
    assert len(taker_fills) == taker_trades
    if mode == c.STP_EXPIRE_MAKER:
        assert taker_fills[0][0] == 101 * S and b.order(other) is None
    if mode in (c.STP_EXPIRE_TAKER, c.STP_EXPIRE_BOTH):
        assert [e for e in ev if e[1] == t][-1][4] == c.ST_EXPIRED_IN_MATCH
    if mode in (c.STP_EXPIRE_MAKER, c.STP_EXPIRE_BOTH):
        assert [e for e in ev if e[1] == own][-1][4] == c.ST_EXPIRED_IN_MATCH
    b.check_invariants()


def test_stop_orders_trigger_on_last_price() -> None:
    b, led = make()
    limit(b, 1, SELL, 100, 1)
    limit(b, 2, BUY, 100, 1)  # trade at 100, last = 100
    assert b.last_price == 100 * S
    # a buy stop-loss at or below last would trigger at once
    assert b.submit(0, BUY, c.OT_STOP_LOSS, c.TIF_GTC, 0, S, 100 * S) == -c.REJ_WOULD_TRIGGER
    stop = b.submit(0, BUY, c.OT_STOP_LOSS_LIMIT, c.TIF_GTC, 106 * S, S, 105 * S)
    tp = b.submit(0, SELL, c.OT_TAKE_PROFIT, c.TIF_GTC, 0, S, 104 * S)
    assert stop > 0 and tp > 0 and b.n_stops == 2
    assert led.locked(0, QUOTE) == 106 * S and led.locked(0, BASE) == S
    assert b.order(stop)["working"] is False
    limit(b, 3, SELL, 105, 1)
    limit(b, 3, SELL, 106, 1)
    b.clear_events()
    limit(b, 1, BUY, 105, 1)  # trades at 105: triggers both
    ev = b.events()
    kinds = [(e[0], e[1]) for e in ev]
    assert (c.EV_TRIGGERED, stop) in kinds and (c.EV_TRIGGERED, tp) in kinds
    assert b.n_stops == 0
    # the stop-limit bought the 106 ask; the take-profit sold into the bid side (empty: expired)
    assert any(e[0] == c.EV_TRADE and e[1] == stop and e[6] == 106 * S for e in ev)
    assert [e for e in ev if e[1] == tp][-1][0] == c.EV_EXPIRED
    assert led.locked(0, QUOTE) == 0 and led.locked(0, BASE) == 0


def test_trailing_stop_follows_the_last_price_and_fires_on_the_retrace() -> None:
    b, led = make()
    limit(b, 1, SELL, 100, 1)
    limit(b, 2, BUY, 100, 1)  # last = 100
    # a sell stop-loss trailing by 500 BIPS (5%): stop at 95, raised with every new high
    assert b.submit(0, SELL, c.OT_STOP_LOSS, c.TIF_GTC, 0, S, 95 * S, 0, 500) == \
        -c.REJ_BAD_PARAM  # an activation price is not modelled
    assert b.submit(0, SELL, c.OT_TAKE_PROFIT, c.TIF_GTC, 0, S, 0, 0, 500) == -c.REJ_BAD_PARAM
    stop = b.submit(0, SELL, c.OT_STOP_LOSS, c.TIF_GTC, 0, S, 0, 0, 500)
    assert stop > 0 and b.order(stop)["stop_price"] == 95 * S
    assert b.order(stop)["trailing_delta"] == 500
    limit(b, 1, SELL, 110, 1)
    limit(b, 2, BUY, 110, 1)  # last = 110: stop 104.5
    assert b.order(stop)["stop_price"] == 1045 * S // 10 and b.order(stop)["working"] is False
    limit(b, 1, SELL, 106, 1)
    limit(b, 2, BUY, 106, 1)  # a fall to 106 does not lower it, nor trigger it
    assert b.order(stop)["stop_price"] == 1045 * S // 10
    limit(b, 2, BUY, 100, 1)  # a bid for the stop's market sell
    b.clear_events()
    limit(b, 1, SELL, 104, 1)
    limit(b, 3, BUY, 104, 1)  # last = 104 <= 104.5: fires, sells into the 100 bid
    ev = b.events()
    assert (c.EV_TRIGGERED, stop) in [(e[0], e[1]) for e in ev]
    assert any(e[0] == c.EV_TRADE and e[1] == stop and e[6] == 100 * S for e in ev)
    assert b.n_stops == 0


def test_cancel_pending_stop_releases_lock() -> None:
    b, led = make()
    stop = b.submit(0, SELL, c.OT_STOP_LOSS_LIMIT, c.TIF_GTC, 90 * S, S, 95 * S)
    assert led.locked(0, BASE) == S
    assert b.cancel(stop) == 0 and b.n_stops == 0 and led.locked(0, BASE) == 0


def test_capacity_is_bounded_and_reused() -> None:
    led = Ledger(1, 2)
    led.deposit(0, BASE, 10**12)
    b = Book(led, BASE, QUOTE, max_orders=4, max_levels=2)
    ids = [b.submit(0, SELL, c.OT_LIMIT, c.TIF_GTC, 100 * S, S) for _ in range(4)]
    assert all(i > 0 for i in ids)
    assert b.submit(0, SELL, c.OT_LIMIT, c.TIF_GTC, 100 * S, S) == -c.REJ_FULL
    for i in ids:
        assert b.cancel(i) == 0
    assert b.n_orders == 0
    assert b.submit(0, SELL, c.OT_LIMIT, c.TIF_GTC, 100 * S, S) > 0
    assert b.submit(0, SELL, c.OT_LIMIT, c.TIF_GTC, 101 * S, S) > 0
    b.clear_events()
    # level array full: a GTC at a third price expires instead of resting
    oid = b.submit(0, SELL, c.OT_LIMIT, c.TIF_GTC, 102 * S, S)
    assert b.events()[-1][:2] == (c.EV_EXPIRED, oid) and led.locked(0, BASE) == 2 * S


op = st.one_of(
    st.tuples(st.just("limit"), st.integers(0, 2), st.sampled_from([BUY, SELL]),
              st.integers(95, 105), st.integers(1, 5), st.sampled_from([0, 1, 2]),
              st.sampled_from([0, 1, 2, 3])),
    st.tuples(st.just("market"), st.integers(0, 2), st.sampled_from([BUY, SELL]),
              st.just(0), st.integers(1, 8), st.just(0), st.sampled_from([0, 1, 2, 3])),
    st.tuples(st.just("maker"), st.integers(0, 2), st.sampled_from([BUY, SELL]),
              st.integers(95, 105), st.integers(1, 5), st.just(0), st.just(0)),
    st.tuples(st.just("cancel"), st.integers(1, 60), st.just(0), st.just(0), st.just(0),
              st.just(0), st.just(0)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(op, max_size=60))
def test_matches_reference_model(ops: list[tuple]) -> None:
    b, _ = make(n_accounts=3)
    ref = ReferenceBook()
    got: list[tuple[int, int, int, int]] = []
    for kind, a, side, px, qty, tif, stp in ops:
        if kind == "cancel":
            assert b.cancel(a) == ref.cancel(a)
            continue
        otype = {"limit": c.OT_LIMIT, "market": c.OT_MARKET, "maker": c.OT_LIMIT_MAKER}[kind]
        r1 = b.submit(a, side, otype, tif, px * S, qty * S, 0, stp)
        r2 = ref.submit(a, side, otype, tif, px * S, qty * S, stp)
        assert r1 == r2
        got += [(e[5], e[6], e[7], e[1]) for e in b.events() if e[0] == c.EV_TRADE and not e[13]]
        b.check_invariants()
    assert got == [(t[0], t[1], t[2], t[3]) for t in ref.trades]
    assert b.depth() == ref.depth()
