"""Every order type reaches the venue: the real engine process, the Binance gateway, the
simulator (see venue_fixtures). Each check reads the simulator's own order records.

Stops held by the engine fire as MARKET (STOP_LIMIT as LIMIT at its limit price); with
``native_stops`` they rest at the venue as STOP_LOSS / STOP_LOSS_LIMIT / TAKE_PROFIT with
their stopPrice. Post-only is LIMIT_MAKER. An amend is one cancelReplace; the live leg of an
OCO shrinks at the venue after a partial fill of the other. A restarted gateway books the
fills of orders placed before it started, once, and sends their cancels to the venue.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from venue_fixtures import BTC, ETH, close_desk, open_desk

from bindings.wire.spec import MsgType
from gateways.sim import constants as c
from oms_core.enums import OrderFlag, OrderStatus, OrderType, Side, TimeInForce
from oms_core.journal import EVENT, JournalReader

pytestmark = pytest.mark.timeout(120)

BUY, SELL = int(Side.BUY), int(Side.SELL)
E8 = c.SCALE


def px(text: str) -> int:
    """A price at the instruments' 2 decimals."""
    return c.to_fixed(text) // 10**6


@pytest.fixture
async def desk(tmp_path: Path, monkeypatch: Any) -> Any:
    d = await open_desk(tmp_path, monkeypatch)
    try:
        yield d
    finally:
        await close_desk(d)


async def test_market_limit_and_post_only(desk: Any) -> None:
    m = await desk.order(BTC, 1, BUY, OrderType.MARKET, 100)
    rec = await desk.wait_venue(m.order_id, lambda r: r.status == c.ST_FILLED)
    assert rec.otype == c.OT_MARKET and rec.filled == c.to_fixed("0.001")
    await desk.wait_engine(1, lambda o: o.status == OrderStatus.FILLED and o.filled == 100)

    lim = await desk.order(BTC, 2, BUY, OrderType.LIMIT, 100, price=px("49500.00"))
    rec = await desk.wait_venue(lim.order_id, lambda r: r.status == c.ST_NEW)
    assert (rec.otype, rec.price, rec.tif) == (c.OT_LIMIT, c.to_fixed("49500"), c.TIF_GTC)

    ioc = await desk.order(BTC, 3, BUY, OrderType.LIMIT, 100, price=px("49600.00"),
                           tif=TimeInForce.IOC)
    rec = await desk.wait_venue(ioc.order_id, lambda r: r.status == c.ST_EXPIRED)
    assert rec.tif == c.TIF_IOC

    po = await desk.order(BTC, 4, BUY, OrderType.LIMIT, 100, price=px("49700.00"),
                          flags=OrderFlag.POST_ONLY)
    rec = await desk.wait_venue(po.order_id, lambda r: r.status == c.ST_NEW)
    assert rec.otype == c.OT_LIMIT_MAKER and rec.price == c.to_fixed("49700")
    # a post-only that would take is refused by the venue, not turned into a taker
    await desk.order(BTC, 5, BUY, OrderType.LIMIT, 100, price=px("55000.00"),
                     flags=OrderFlag.POST_ONLY)
    await desk.wait_engine(5, lambda o: o.status == OrderStatus.REJECTED)
    assert desk.ex.markets["BTCUSDT"].book.best(c.SIDE_SELL)[0] == c.to_fixed("55000")


async def test_engine_held_stops_fire_as_market_or_limit(desk: Any) -> None:
    sl = await desk.order(BTC, 11, SELL, OrderType.STOP_MARKET, 100, trigger=px("49800.00"))
    stl = await desk.order(BTC, 12, SELL, OrderType.STOP_LIMIT, 100, price=px("49750.00"),
                           trigger=px("49800.00"))
    tp = await desk.order(BTC, 13, SELL, OrderType.TAKE_PROFIT, 100, trigger=px("50200.00"))
    trail = await desk.order(BTC, 14, SELL, OrderType.TRAILING_STOP, 100, trail=px("500.00"))
    await asyncio.sleep(0.3)
    # held by the engine: nothing at the venue yet
    assert [desk.venue(o.order_id) for o in (sl, stl, tp, trail)] == [[], [], [], []]

    desk.rest(BTC, c.SIDE_BUY, "50250.00", "0.001")  # where the take-profit will sell
    desk.print_trade(BTC, "50300.00")  # take-profit reached; the trailing anchor moves up
    rec = await desk.wait_venue(tp.order_id, lambda r: r.status == c.ST_FILLED)
    assert rec.otype == c.OT_MARKET and rec.price == 0
    assert rec.fills[0]["price"] == "50250.00000000"
    await desk.wait_engine(13, lambda o: o.status == OrderStatus.FILLED)
    assert desk.venue(trail.order_id) == []

    desk.rest(BTC, c.SIDE_BUY, "49650.00", "0.002")
    desk.print_trade(BTC, "49700.00")  # the stops and the trailing stop (600 below its best)
    rec = await desk.wait_venue(sl.order_id, lambda r: r.status == c.ST_FILLED)
    assert rec.otype == c.OT_MARKET and rec.fills[0]["price"] == "49650.00000000"
    rec = await desk.wait_venue(trail.order_id, lambda r: r.status == c.ST_FILLED)
    assert rec.otype == c.OT_MARKET
    rec = await desk.wait_venue(stl.order_id, lambda r: r.status == c.ST_NEW)
    assert (rec.otype, rec.price, rec.stop_price) == (c.OT_LIMIT, c.to_fixed("49750"), 0)
    for cl in (11, 14):
        await desk.wait_engine(cl, lambda o: o.status == OrderStatus.FILLED and o.filled == 100)
    await desk.wait_engine(12, lambda o: o.status == OrderStatus.NEW)


async def test_native_stops_rest_at_the_venue(desk: Any) -> None:
    sl = await desk.order(ETH, 21, SELL, OrderType.STOP_MARKET, 100, trigger=px("2900.00"))
    stl = await desk.order(ETH, 22, SELL, OrderType.STOP_LIMIT, 100, price=px("2890.00"),
                           trigger=px("2900.00"))
    tp = await desk.order(ETH, 23, SELL, OrderType.TAKE_PROFIT, 100, trigger=px("3100.00"))
    recs = [await desk.wait_venue(o.order_id, lambda r: r.status == c.ST_NEW)
            for o in (sl, stl, tp)]
    assert [(r.otype, r.stop_price, r.price, r.working) for r in recs] == [
        (c.OT_STOP_LOSS, c.to_fixed("2900"), 0, False),
        (c.OT_STOP_LOSS_LIMIT, c.to_fixed("2900"), c.to_fixed("2890"), False),
        (c.OT_TAKE_PROFIT, c.to_fixed("3100"), 0, False)]
    for cl in (21, 22, 23):
        await desk.wait_engine(cl, lambda o: o.status == OrderStatus.NEW)

    desk.rest(ETH, c.SIDE_BUY, "3050.00", "0.01")
    desk.print_trade(ETH, "3110.00")  # the venue triggers the take-profit
    rec = await desk.wait_venue(tp.order_id, lambda r: r.status == c.ST_FILLED)
    assert rec.fills[0]["price"] == "3050.00000000"
    await desk.wait_engine(23, lambda o: o.status == OrderStatus.FILLED and o.filled == 100)
    assert [r.working for r in (desk.venue(sl.order_id)[-1], desk.venue(stl.order_id)[-1])] \
        == [False, False]
    desk.rest(ETH, c.SIDE_BUY, "2880.00", "0.01")
    desk.print_trade(ETH, "2895.00")  # and the stop-losses
    rec = await desk.wait_venue(sl.order_id, lambda r: r.status == c.ST_FILLED)
    assert rec.fills[0]["price"] == "2880.00000000"
    await desk.wait_engine(21, lambda o: o.status == OrderStatus.FILLED and o.filled == 100)
    rec = await desk.wait_venue(stl.order_id, lambda r: r.working)
    assert rec.status == c.ST_NEW and rec.price == c.to_fixed("2890")


async def test_amend_is_one_cancel_replace_and_the_oco_leg_shrinks(desk: Any) -> None:
    lim = await desk.order(BTC, 31, BUY, OrderType.LIMIT, 200, price=px("49500.00"))
    await desk.wait_engine(31, lambda o: o.status == OrderStatus.NEW)
    r = await desk.send("REPLACE", order_id=lim.order_id, price=px("49400.00"), quantity=300,
                        account=1)
    assert r.msg_type == MsgType.ACK, r
    rec = await desk.wait_venue(lim.order_id, lambda r: r.price == c.to_fixed("49400"))
    old, new = desk.venue(lim.order_id)
    assert old.status == c.ST_CANCELED and new.status == c.ST_NEW
    assert new.qty == c.to_fixed("0.003") and rec is new
    o = await desk.wait_engine(31, lambda o: o.status == OrderStatus.NEW and o.quantity == 300)
    assert o.price == px("49400.00")

    # OCO of two sells at the venue: 0.001 of leg A fills, leg B shrinks to 0.001 there
    r = await desk.send("NEW_OCO", a_client_order_id=32, b_client_order_id=33, quantity=200,
                        a_price=px("50500.00"), b_price=px("50600.00"), account=1, strategy=1,
                        instrument=BTC.id, side=SELL, a_type=OrderType.LIMIT,
                        b_type=OrderType.LIMIT, tif=TimeInForce.GTC)
    assert r.msg_type == MsgType.ACK, r
    a, b = r.order_id, r.leg2_order_id
    await desk.wait_venue(b, lambda r: r.status == c.ST_NEW)
    desk.rest(BTC, c.SIDE_BUY, "50500.00", "0.001")
    await desk.wait_engine(32, lambda o: o.filled == 100)
    rec = await desk.wait_venue(b, lambda r: r.qty == c.to_fixed("0.001"))
    assert rec.status == c.ST_NEW and rec.price == c.to_fixed("50600")
    assert [x.status for x in desk.venue(b)] == [c.ST_CANCELED, c.ST_NEW]
    await desk.wait_engine(33, lambda o: o.quantity == 100 and o.status == OrderStatus.NEW)
    assert desk.venue(a)[-1].status == c.ST_PARTIALLY_FILLED


async def test_restarted_gateway_books_missed_fill_once_and_cancels_old_order(
        desk: Any) -> None:
    lim = await desk.order(BTC, 41, BUY, OrderType.LIMIT, 300, price=px("49500.00"))
    await desk.wait_venue(lim.order_id, lambda r: r.status == c.ST_NEW)
    desk.rest(BTC, c.SIDE_SELL, "49500.00", "0.001")
    await desk.wait_engine(41, lambda o: o.filled == 100)

    await desk.stop_gateway()  # the gateway dies: its order map is gone
    desk.rest(BTC, c.SIDE_SELL, "49500.00", "0.001")  # a fill nobody reports live
    assert desk.venue(lim.order_id)[-1].filled == c.to_fixed("0.002")
    await desk.start_gateway()

    o = await desk.wait_engine(41, lambda o: o.filled == 200)
    assert o.status == OrderStatus.PARTIALLY_FILLED
    r = await desk.send("CANCEL", order_id=lim.order_id, account=1)
    assert r.msg_type == MsgType.ACK, r
    rec = await desk.wait_venue(lim.order_id, lambda r: r.status == c.ST_CANCELED)
    assert rec.filled == c.to_fixed("0.002")
    await desk.wait_engine(41, lambda o: o.status == OrderStatus.CANCELED and o.filled == 200)
    desk.engine.stop()
    fills = []
    reader = JournalReader(str(desk.tmp / "journal"))
    from bindings.wire import records as wire

    for jr in reader:
        if jr.rtype == EVENT:
            ev = wire.decode(bytes(jr.payload))
            if ev.msg_type == MsgType.FILL and ev.order_id == lim.order_id:
                fills.append(ev.trade_id)
    reader.close()
    assert len(fills) == 2 and len(set(fills)) == 2  # each venue trade booked once


async def test_native_bracket_stop_shrinks_at_the_venue_after_a_partial_take_profit(
        desk: Any) -> None:
    desk.print_trade(ETH, "3450.00")
    desk.rest(ETH, c.SIDE_SELL, "3450.00", "0.02")  # the entry's counterparty
    await asyncio.sleep(0.3)
    r = await desk.send("NEW_BRACKET", entry_client_order_id=51, tp_client_order_id=52,
                        sl_client_order_id=53, entry_price=px("3450.00"), quantity=200,
                        tp_price=px("3480.00"), sl_trigger_price=px("3400.00"), account=1,
                        strategy=1, instrument=ETH.id, side=BUY, entry_type=OrderType.LIMIT,
                        tif=TimeInForce.GTC)
    assert r.msg_type == MsgType.ACK, r
    tp, sl = r.leg2_order_id, r.leg3_order_id
    await desk.wait_engine(51, lambda o: o.status == OrderStatus.FILLED)
    rec = await desk.wait_venue(sl, lambda r: r.status == c.ST_NEW)
    assert (rec.otype, rec.stop_price, rec.qty) == (c.OT_STOP_LOSS, c.to_fixed("3400"),
                                                    c.to_fixed("0.02"))
    await desk.wait_venue(tp, lambda r: r.status == c.ST_NEW)
    await desk.wait_engine(53, lambda o: o.status == OrderStatus.NEW)
    desk.rest(ETH, c.SIDE_BUY, "3480.00", "0.01")  # half the take-profit fills
    await desk.wait_engine(52, lambda o: o.filled == 100)
    rec = await desk.wait_venue(sl, lambda r: r.qty == c.to_fixed("0.01"))
    assert (rec.otype, rec.stop_price, rec.status) == (c.OT_STOP_LOSS, c.to_fixed("3400"),
                                                       c.ST_NEW)
    o = await desk.wait_engine(53, lambda o: o.quantity == 100 and o.status == OrderStatus.NEW)
    assert o.trigger_price == px("3400.00")


@pytest.mark.slow
async def test_gateway_process_killed_and_restarted_loses_no_fill(desk: Any) -> None:
    await desk.stop_gateway()  # the gateway runs as its own process from here on
    first = await desk.start_gateway_process()
    try:
        lim = await desk.order(BTC, 61, BUY, OrderType.LIMIT, 300, price=px("49500.00"),
                               priced_within_s=10)
        await desk.wait_venue(lim.order_id, lambda r: r.status == c.ST_NEW)
        desk.rest(BTC, c.SIDE_SELL, "49500.00", "0.001")
        await desk.wait_engine(61, lambda o: o.filled == 100)
    finally:
        first.kill()  # kill -9: no clean close, its order map is gone
        first.wait(10)
    desk.rest(BTC, c.SIDE_SELL, "49500.00", "0.001")  # while no gateway runs
    second = await desk.start_gateway_process()
    try:
        await desk.wait_engine(61, lambda o: o.filled == 200, timeout_s=20)
        r = await desk.send("CANCEL", order_id=lim.order_id, account=1)
        assert r.msg_type == MsgType.ACK, r
        rec = await desk.wait_venue(lim.order_id, lambda r: r.status == c.ST_CANCELED)
        assert rec.filled == c.to_fixed("0.002")
        await desk.wait_engine(61, lambda o: o.status == OrderStatus.CANCELED and
                               o.filled == 200)
    finally:
        second.kill()
        second.wait(10)
    desk.engine.stop()
    from bindings.wire import records as wire

    reader = JournalReader(str(desk.tmp / "journal"))
    fills = [ev.trade_id for ev in (wire.decode(bytes(jr.payload)) for jr in reader
                                    if jr.rtype == EVENT)
             if ev.msg_type == MsgType.FILL and ev.order_id == lim.order_id]
    reader.close()
    assert len(fills) == 2 and len(set(fills)) == 2  # each venue trade booked once


async def test_native_trailing_stop_trails_at_the_venue(desk: Any) -> None:
    # 150.00 below the best price, at a last of 3000.00: trailingDelta 500 BIPS
    trail = await desk.order(ETH, 71, SELL, OrderType.TRAILING_STOP, 100, trail=px("150.00"))
    rec = await desk.wait_venue(trail.order_id, lambda r: r.status == c.ST_NEW)
    assert (rec.otype, rec.trailing_delta, rec.working) == (c.OT_STOP_LOSS, 500, False)
    book = desk.ex.markets["ETHUSDT"].book
    assert book.order(rec.order_id)["stop_price"] == c.to_fixed("2850")
    await desk.wait_engine(71, lambda o: o.status == OrderStatus.NEW)
    desk.print_trade(ETH, "3100.00")  # the venue raises the stop to 2945.00
    assert book.order(rec.order_id)["stop_price"] == c.to_fixed("2945")
    desk.rest(ETH, c.SIDE_BUY, "2930.00", "0.01")
    desk.print_trade(ETH, "2940.00")  # the retrace fires it
    rec = await desk.wait_venue(trail.order_id, lambda r: r.status == c.ST_FILLED)
    assert rec.fills[0]["price"] == "2930.00000000"
    await desk.wait_engine(71, lambda o: o.status == OrderStatus.FILLED and o.filled == 100)


async def test_fired_engine_stop_waits_for_its_take_profit_cancel_at_the_venue(
        desk: Any, monkeypatch: Any) -> None:
    # what reaches the simulator, in the order it arrives (its own methods, called through)
    arrivals: list[tuple[str, str]] = []
    ex = desk.ex
    submit, cancel = ex.submit_terms, ex.cancel_order

    def submit_terms(account: int, terms: Any, client_order_id: str | None) -> Any:
        out = submit(account, terms, client_order_id)
        arrivals.append(("new", out["clientOrderId"]))
        return out

    def cancel_order(account: int, symbol: str, order_id: str | None,
                     client_id: str | None) -> Any:
        out = cancel(account, symbol, order_id, client_id)
        arrivals.append(("cancel", out["origClientOrderId"]))
        return out

    monkeypatch.setattr(ex, "submit_terms", submit_terms)
    monkeypatch.setattr(ex, "cancel_order", cancel_order)

    desk.rest(BTC, c.SIDE_SELL, "50000.00", "0.002")  # the entry's counterparty
    r = await desk.send("NEW_BRACKET", entry_client_order_id=81, tp_client_order_id=82,
                        sl_client_order_id=83, entry_price=px("50000.00"), quantity=200,
                        tp_price=px("50300.00"), sl_trigger_price=px("49800.00"), account=1,
                        strategy=1, instrument=BTC.id, side=BUY, entry_type=OrderType.LIMIT,
                        tif=TimeInForce.GTC)
    assert r.msg_type == MsgType.ACK, r
    entry, tp, sl = r.order_id, r.leg2_order_id, r.leg3_order_id
    await desk.wait_engine(81, lambda o: o.status == OrderStatus.FILLED and o.filled == 200)
    await desk.wait_venue(tp, lambda r: r.status == c.ST_NEW)  # the take-profit rests there
    await desk.wait_engine(82, lambda o: o.status == OrderStatus.NEW)
    assert desk.venue(sl) == []  # the stop-loss is held by the engine

    desk.rest(BTC, c.SIDE_BUY, "49650.00", "0.002")  # where the stop's market order sells
    desk.print_trade(BTC, "49700.00")  # the stop-loss fires
    rec = await desk.wait_venue(sl, lambda r: r.status == c.ST_FILLED)
    assert rec.otype == c.OT_MARKET and rec.filled == c.to_fixed("0.002")
    assert desk.venue(tp)[-1].status == c.ST_CANCELED and desk.venue(tp)[-1].filled == 0
    # the take-profit was canceled at the venue before the stop's market order arrived there
    tp_cid, sl_cid = f"oms-{tp}", f"oms-{sl}"
    ours = [a for a in arrivals if a[1] in (tp_cid, sl_cid)]
    assert ours == [("new", tp_cid), ("cancel", tp_cid), ("new", sl_cid)], arrivals
    await desk.wait_engine(83, lambda o: o.status == OrderStatus.FILLED and o.filled == 200)
    await desk.wait_engine(82, lambda o: o.status == OrderStatus.CANCELED)
    # flat at the venue, never short: the account's trades net to zero
    net = 0
    for o in (entry, tp, sl):
        for v in desk.venue(o):
            net += v.filled if v.side == c.SIDE_BUY else -v.filled
    assert net == 0
