"""The project's Binance gateway, unchanged, against the simulated exchange (gateways/sim).

Only the base URLs differ from production. Real parts throughout: the in-process simulator
(aiohttp REST + websockets on loopback), the gateway's own websocket/REST clients, and real
ZeroMQ sockets to a stand-in engine (gw_engine.Engine).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gw_engine import Engine
from sim_fixtures import SimHandle, sim_config, start_sim, wait_for

from gateways.binance import BinanceGateway
from gateways.config import GatewayConfig, Instrument
from gateways.engine_link import EngineLink, ExecType, GatewayState
from gateways.sim import constants as c
from oms_core.enums import OrderType, Side, TimeInForce

pytestmark = pytest.mark.timeout(60)

# BTCUSDT in the simulator: tick 0.01, step 0.00001
INST = Instrument(id=7, symbol="BTCUSDT", price_decimals=2, qty_decimals=5)
PX_SCALE = 10 ** (8 - INST.price_decimals)  # simulator units (1e-8) per gateway price unit
QTY_SCALE = 10 ** (8 - INST.qty_decimals)
DETAIL_BOOK = 1000 + INST.id
DETAIL_USER = 2


def sim_book(h: SimHandle) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The simulator's own book, best first, at the gateway's precision."""
    assert h.server is not None
    bids, asks = h.server.ex.markets["BTCUSDT"].book.depth()
    return ([(p // PX_SCALE, q // QTY_SCALE) for p, q in bids],
            [(p // PX_SCALE, q // QTY_SCALE) for p, q in asks])


def counterparty(h: SimHandle, side: int, px: str, qty: str) -> int:
    """An order by the simulator's own participant (funded without limit)."""
    assert h.server is not None
    ex = h.server.ex
    ex.ledger.deposit(ex.sim_account, ex.asset_index["BTC"], 10**12)
    ex.ledger.deposit(ex.sim_account, ex.asset_index["USDT"], 10**16)
    return ex.sim_submit("BTCUSDT", side, c.OT_LIMIT, c.TIF_GTC, c.to_fixed(px), c.to_fixed(qty))


def in_sync(gw: BinanceGateway, h: SimHandle) -> bool:
    book = gw.md["BTCUSDT"].book
    bids, asks = sim_book(h)
    return book.synced and book.bids() == bids and book.asks() == asks


def is_status(state: GatewayState, detail: int) -> Any:
    return lambda e: (e.msg_type.name == "GW_STATUS" and e.state == state
                      and e.detail == detail)


def exec_of(exec_type: ExecType, order_id: int) -> Any:
    return lambda e: getattr(e, "exec_type", 0) == exec_type and e.order_id == order_id


@pytest.fixture
async def env(monkeypatch) -> AsyncIterator[tuple[SimHandle, Engine, BinanceGateway]]:
    # a 20 ms diff-depth interval keeps the tests quick; market off: the tests drive the book
    h = await start_sim(sim_config(depth_interval_ms=20))
    assert h.server is not None
    key, secret = h.keys[0]
    monkeypatch.setenv("SIM_GW_KEY", key)
    monkeypatch.setenv("SIM_GW_SECRET", secret)
    # a resting book before the gateway connects: the snapshot must carry it
    for i in range(5):
        counterparty(h, c.SIDE_BUY, f"{49_990 - i}.00", "0.5")
        counterparty(h, c.SIDE_SELL, f"{50_010 + i}.00", "0.5")
    engine = Engine()
    cfg = GatewayConfig(kind="binance", instruments=[INST], engine=engine.endpoints,
                        rest_url=h.base_url, ws_url=h.ws_url, api_key_env="SIM_GW_KEY",
                        api_secret_env="SIM_GW_SECRET", request_timeout_s=2.0,
                        reconnect_base_s=0.05, reconnect_max_s=0.2, stale_after_s=30.0)
    link = EngineLink(cfg.engine, cfg.gateway_id, ctx=engine.ctx)
    await engine.join(link._md)  # so the first GW_MARKET_DATA is not lost to the slow joiner
    gw = BinanceGateway(cfg, link)
    await gw.start()
    try:
        await engine.wait_event(is_status(GatewayState.HEALTHY, DETAIL_USER), timeout=10)
        await wait_for(lambda: in_sync(gw, h), timeout_s=10)
        yield h, engine, gw
    finally:
        await gw.stop()
        link.close()
        await h.server.stop()
        engine.close()


async def test_book_builds_and_stays_in_sync(env):
    h, engine, gw = env
    book = gw.md["BTCUSDT"].book
    assert book.best_bid == (4_999_000, 50_000) and book.best_ask == (5_001_000, 50_000)
    md = await engine.wait_md(lambda m: m.bid == 4_999_000 and m.ask == 5_001_000)
    assert md.instrument == INST.id and md.bid_qty == 50_000 and not md.md_flags
    # new levels, a better bid, a level taken out by a trade: the book follows every diff
    counterparty(h, c.SIDE_BUY, "49995.00", "0.25")
    counterparty(h, c.SIDE_SELL, "50020.00", "1.5")
    await wait_for(lambda: in_sync(gw, h), timeout_s=5)
    md = await engine.wait_md(lambda m: m.bid == 4_999_500)
    assert md.bid_qty == 25_000 and md.ask == 5_001_000
    counterparty(h, c.SIDE_SELL, "49995.00", "0.25")  # trades the whole 49995 bid away
    await wait_for(lambda: in_sync(gw, h), timeout_s=5)
    assert gw.md["BTCUSDT"].book.best_bid == (4_999_000, 50_000)
    # the simulator's trade stream sets the last price
    md = await engine.wait_md(lambda m: m.last == 4_999_500)
    assert md.last_qty == 25_000
    applied = book.n_applied
    for i in range(20):  # a burst of changes
        counterparty(h, c.SIDE_BUY, f"{49_900 + i}.00", "0.01")
    await wait_for(lambda: in_sync(gw, h) and book.n_applied > applied, timeout_s=5)
    assert book.n_gaps == 0 and gw.n_malformed == 0


async def test_order_ack_fill_via_user_stream(env):
    h, engine, gw = env
    await engine.send_order(order_id=1, price=5_000_000, quantity=3_000, account=1,
                            instrument=INST.id, side=Side.BUY, order_type=OrderType.LIMIT,
                            tif=TimeInForce.GTC)
    ack = await engine.wait_event(exec_of(ExecType.ACK, 1))
    assert ack.exch_order_id > 0
    # resting at 50000.00 in the simulator's book, and in the gateway's book
    await wait_for(lambda: in_sync(gw, h) and gw.md["BTCUSDT"].book.best_bid[0] == 5_000_000)
    counterparty(h, c.SIDE_SELL, "50000.00", "0.01")  # fills 0.01 of 0.03
    f1 = await engine.wait_event(exec_of(ExecType.FILL, 1))
    assert f1.last_qty == 1_000 and f1.last_price == 5_000_000
    assert f1.cum_qty == 1_000 and f1.leaves_qty == 2_000 and f1.trade_id > 0
    counterparty(h, c.SIDE_SELL, "49000.00", "0.05")  # fills the rest at our price
    f2 = await engine.wait_event(lambda e: getattr(e, "exec_type", 0) == ExecType.FILL
                                 and e.order_id == 1 and e.trade_id != f1.trade_id)
    assert f2.last_qty == 2_000 and f2.cum_qty == 3_000 and f2.leaves_qty == 0
    await engine.drain(0.3)
    assert len(engine.execs(ExecType.FILL)) == 2


async def test_cancel_and_exchange_reject(env):
    h, engine, gw = env
    await engine.send_order(order_id=2, price=4_900_000, quantity=1_000, account=1,
                            instrument=INST.id, side=Side.BUY, order_type=OrderType.LIMIT,
                            tif=TimeInForce.GTC)
    await engine.wait_event(exec_of(ExecType.ACK, 2))
    from bindings.wire import records as wire

    await engine.orders.send(wire.encode("GW_CANCEL", order_id=2, account=1,
                                         instrument=INST.id))
    await engine.wait_event(exec_of(ExecType.CANCELED, 2))
    # below min notional (5 USDT): the simulator's filter rejects, the code comes through
    await engine.send_order(order_id=3, price=100, quantity=1_000, account=1,
                            instrument=INST.id, side=Side.BUY, order_type=OrderType.LIMIT,
                            tif=TimeInForce.GTC)
    rej = await engine.wait_event(exec_of(ExecType.REJECT, 3))
    assert rej.exch_code == -1013


async def test_depth_gap_resyncs(env):
    h, engine, gw = env
    assert h.server is not None
    book = gw.md["BTCUSDT"].book
    snaps = book.n_gaps
    # the skip counter is shared by the 20 ms and the 1 s feed: skip two so the 20 ms feed
    # (the gateway's) loses at least one event whichever feed fires first
    h.server.fault(depth_skip=2)
    for i in range(4):
        counterparty(h, c.SIDE_BUY, f"{49_980 - i}.00", "0.1")
        await asyncio.sleep(0.05)
    await engine.wait_event(is_status(GatewayState.STALE, DETAIL_BOOK), timeout=5)
    await engine.wait_event(is_status(GatewayState.HEALTHY, DETAIL_BOOK), timeout=5)
    assert book.n_gaps == snaps + 1
    counterparty(h, c.SIDE_SELL, "50005.00", "0.2")
    await wait_for(lambda: in_sync(gw, h), timeout_s=5)
    md = await engine.wait_md(lambda m: m.ask == 5_000_500 and not m.md_flags)
    assert md.ask_qty == 20_000


async def test_market_socket_drop_reconnects_and_resyncs(env):
    h, engine, gw = env
    assert h.server is not None
    assert h.server.drop_ws(match="btcusdt@depth") == 1
    counterparty(h, c.SIDE_BUY, "49996.00", "0.3")  # while the market stream is down
    await wait_for(lambda: gw.md_conn.n_connects >= 2 and in_sync(gw, h), timeout_s=10)
    assert gw.md["BTCUSDT"].book.best_bid == (4_999_600, 30_000)
    await engine.wait_md(lambda m: m.bid == 4_999_600 and not m.md_flags)


async def test_user_stream_drop_no_lost_or_duplicated_fill(env):
    h, engine, gw = env
    assert h.server is not None
    await engine.send_order(order_id=5, price=5_000_000, quantity=3_000, account=1,
                            instrument=INST.id, side=Side.BUY, order_type=OrderType.LIMIT,
                            tif=TimeInForce.GTC)
    await engine.wait_event(exec_of(ExecType.ACK, 5))
    counterparty(h, c.SIDE_SELL, "50000.00", "0.01")
    f1 = await engine.wait_event(exec_of(ExecType.FILL, 5))
    # drop the user stream (TCP abort), then trade while the gateway is away
    assert h.server.drop_ws(match=gw._listen_key) == 1
    counterparty(h, c.SIDE_SELL, "50000.00", "0.01")
    await engine.wait_event(lambda e: getattr(e, "exec_type", 0) == ExecType.FILL
                            and e.order_id == 5 and e.trade_id != f1.trade_id, timeout=10)
    assert gw.user_conn.n_connects >= 2
    await engine.wait_event(lambda e: e.msg_type.name == "GW_STATUS"
                            and e.state == GatewayState.HEALTHY and e.detail == DETAIL_USER
                            and engine.received.index(e) > engine.received.index(f1))
    counterparty(h, c.SIDE_SELL, "50000.00", "0.01")  # after the reconnect, over the stream
    await engine.wait_event(lambda e: getattr(e, "exec_type", 0) == ExecType.FILL
                            and e.order_id == 5 and e.leaves_qty == 0)
    await engine.drain(0.5)
    fills = engine.execs(ExecType.FILL)
    ids = [f.trade_id for f in fills]
    assert len(ids) == 3 and len(set(ids)) == 3, ids
    assert sum(f.last_qty for f in fills) == 3_000
    assert fills[-1].cum_qty == 3_000 and fills[-1].leaves_qty == 0


async def test_lost_ack_resolved_by_query_never_resent(env):
    h, engine, gw = env
    assert h.server is not None
    # the order is placed, then the simulator aborts the HTTP connection: outcome unknown
    h.server.fault(lose_ack=1, lose_ack_mode="drop")
    await engine.send_order(order_id=9, price=4_900_000, quantity=1_000, account=1,
                            instrument=INST.id, side=Side.BUY, order_type=OrderType.LIMIT,
                            tif=TimeInForce.GTC)
    ack = await engine.wait_event(exec_of(ExecType.ACK, 9), timeout=10)
    assert ack.exch_order_id > 0
    await engine.drain(0.3)
    # exactly one order reached the simulator (never re-sent blind)
    assert len(h.server.ex.open_orders(0, "BTCUSDT")) == 1
    assert len(engine.execs(ExecType.ACK)) == 1
    assert engine.execs(ExecType.STATUS)  # the engine heard the outcome was unknown


async def test_order_in_flight_during_a_user_stream_catch_up_is_not_given_up(env):
    h, engine, gw = env
    assert h.server is not None
    # the venue places the order late: the catch-up after the reconnect below runs while the
    # submit is in flight, so the venue does not list the order yet; placed, it takes the ask
    h.server.fault(delay_orders=1, delay_orders_s=1.5)
    await engine.send_order(order_id=21, price=5_001_000, quantity=1_000, account=1,
                            instrument=INST.id, side=Side.BUY, order_type=OrderType.LIMIT,
                            tif=TimeInForce.GTC)
    await wait_for(lambda: gw.cid_for(21) in gw.orders, timeout_s=5)
    n = len(engine.received)
    assert h.server.drop_ws(match=gw.first.listen_key) == 1
    await engine.wait_event(lambda e: engine.received.index(e) >= n
                            and is_status(GatewayState.HEALTHY, DETAIL_USER)(e), timeout=10)
    assert not engine.execs(ExecType.ACK), "the catch-up ran after the order was placed"
    await engine.wait_event(exec_of(ExecType.ACK, 21), timeout=10)
    fill = await engine.wait_event(exec_of(ExecType.FILL, 21), timeout=10)
    assert fill.leaves_qty == 0
    assert not [e for e in engine.received if getattr(e, "exec_type", 0) in (
        ExecType.UNKNOWN_ORDER, ExecType.REJECT)]


async def test_rate_limited_order_rejected_with_binance_code(env):
    h, engine, gw = env
    assert h.server is not None
    h.server.fault(rate_limit=1)
    await engine.send_order(order_id=11, price=4_900_000, quantity=1_000, account=1,
                            instrument=INST.id, side=Side.BUY, order_type=OrderType.LIMIT,
                            tif=TimeInForce.GTC)
    rej = await engine.wait_event(exec_of(ExecType.REJECT, 11), timeout=5)
    assert rej.exch_code == -1003 and gw.rest.limiter.n_429 == 1


def venue_records(h: SimHandle, cid: str) -> list[Any]:
    """The simulator's records under one client order id, oldest first."""
    assert h.server is not None
    return sorted((r for r in h.server.ex.accounts[0].records.values()
                   if r.client_order_id == cid), key=lambda r: r.order_id)


async def _resting(engine: Engine, order_id: int, price: int, flags: int = 0) -> None:
    await engine.send_order(order_id=order_id, price=price, quantity=3_000, account=1,
                            instrument=INST.id, side=Side.BUY, order_type=OrderType.LIMIT,
                            tif=TimeInForce.GTC, order_flags=flags)
    await engine.wait_event(exec_of(ExecType.ACK, order_id))


async def test_replace_is_one_cancel_replace(env):
    h, engine, gw = env
    from bindings.wire import records as wire

    await _resting(engine, 21, 4_999_500)
    # 0.01 of 0.03 fills, then the order is amended to 0.05 at 49996.00
    counterparty(h, c.SIDE_SELL, "49995.00", "0.01")
    await engine.wait_event(exec_of(ExecType.FILL, 21))
    await engine.orders.send(wire.encode("GW_REPLACE", order_id=21, price=4_999_600,
                                         quantity=5_000, account=1, instrument=INST.id))
    rep = await engine.wait_event(exec_of(ExecType.REPLACED, 21))
    assert (rep.price, rep.quantity, rep.cum_qty, rep.leaves_qty) == (4_999_600, 5_000, 1_000,
                                                                      4_000)
    old, new = venue_records(h, "oms-21")
    assert old.status == c.ST_CANCELED and old.filled == c.to_fixed("0.01")
    assert (new.status, new.price, new.qty) == (c.ST_NEW, c.to_fixed("49996"),
                                                c.to_fixed("0.04"))
    assert rep.exch_order_id == new.order_id
    # fills of the new venue order count on from what the old one filled
    counterparty(h, c.SIDE_SELL, "49996.00", "0.01")
    f2 = await engine.wait_event(lambda e: getattr(e, "exec_type", 0) == ExecType.FILL
                                 and e.order_id == 21 and e.cum_qty == 2_000)
    assert f2.leaves_qty == 3_000
    # a second amend, to 0.06 in all: 0.04 left for the third venue order
    await engine.orders.send(wire.encode("GW_REPLACE", order_id=21, price=4_999_700,
                                         quantity=6_000, account=1, instrument=INST.id))
    rep2 = await engine.wait_event(lambda e: getattr(e, "exec_type", 0) == ExecType.REPLACED
                                   and e.order_id == 21 and e.quantity == 6_000)
    assert (rep2.cum_qty, rep2.leaves_qty) == (2_000, 4_000)
    third = venue_records(h, "oms-21")[-1]
    assert (third.qty, third.price) == (c.to_fixed("0.04"), c.to_fixed("49997"))
    counterparty(h, c.SIDE_SELL, "49997.00", "0.04")
    done = await engine.wait_event(lambda e: getattr(e, "exec_type", 0) == ExecType.FILL
                                   and e.order_id == 21 and e.leaves_qty == 0)
    assert done.cum_qty == 6_000
    assert "oms-21" not in gw.orders  # filled in all: the gateway forgets it
    await engine.drain(0.3)
    assert not engine.execs(ExecType.CANCELED)  # the old venue order's end is not the order's


async def test_replace_whose_new_order_fails_reports_reject_then_canceled(env):
    h, engine, gw = env
    from bindings.wire import records as wire

    await _resting(engine, 22, 4_999_500, flags=2)  # post-only: LIMIT_MAKER
    assert venue_records(h, "oms-22")[0].otype == c.OT_LIMIT_MAKER
    # amended across the ask: the cancel half runs, the LIMIT_MAKER would take (-2021)
    await engine.orders.send(wire.encode("GW_REPLACE", order_id=22, price=5_001_000,
                                         quantity=3_000, account=1, instrument=INST.id))
    rej = await engine.wait_event(exec_of(ExecType.REPLACE_REJECT, 22))
    assert rej.exch_code == -2010
    await engine.wait_event(exec_of(ExecType.CANCELED, 22))
    assert [r.status for r in venue_records(h, "oms-22")] == [c.ST_CANCELED]
    assert "oms-22" not in gw.orders


async def test_cancel_meeting_two_rate_limits_is_sent_again(env):
    h, engine, gw = env
    assert h.server is not None
    from bindings.wire import records as wire

    await _resting(engine, 23, 4_900_000)
    h.server.fault(rate_limit=2)  # the cancel and the next request both meet HTTP 429
    await engine.orders.send(wire.encode("GW_CANCEL", order_id=23, account=1,
                                         instrument=INST.id))
    await engine.wait_event(exec_of(ExecType.CANCELED, 23), timeout=15)
    assert venue_records(h, "oms-23")[-1].status == c.ST_CANCELED
    assert gw.rest.limiter.n_429 == 2


async def test_cancel_of_order_not_held_goes_to_the_venue(env):
    h, engine, gw = env
    assert h.server is not None
    from bindings.wire import records as wire

    # placed under our id before this gateway process started (it does not hold it)
    h.server.ex.place_order(0, "BTCUSDT", "BUY", "LIMIT", "0.01", "48000.00", "GTC",
                            client_order_id="oms-24")
    await engine.drain(0.2)
    await engine.orders.send(wire.encode("GW_CANCEL", order_id=24, account=1,
                                         instrument=INST.id))
    await engine.wait_event(exec_of(ExecType.CANCELED, 24))
    assert venue_records(h, "oms-24")[-1].status == c.ST_CANCELED
    assert not engine.execs(ExecType.CANCEL_REJECT)


async def test_replace_whose_answer_is_lost_is_resolved_by_query(env):
    h, engine, gw = env
    assert h.server is not None
    from bindings.wire import records as wire

    await _resting(engine, 25, 4_999_500)
    h.server.fault(lose_ack=1, lose_ack_mode="drop")  # both halves run; the answer is lost
    await engine.orders.send(wire.encode("GW_REPLACE", order_id=25, price=4_999_400,
                                         quantity=2_000, account=1, instrument=INST.id))
    rep = await engine.wait_event(exec_of(ExecType.REPLACED, 25), timeout=10)
    old, new = venue_records(h, "oms-25")
    assert old.status == c.ST_CANCELED and new.qty == c.to_fixed("0.02")
    assert rep.exch_order_id == new.order_id and rep.quantity == 2_000
    counterparty(h, c.SIDE_SELL, "49994.00", "0.02")
    done = await engine.wait_event(lambda e: getattr(e, "exec_type", 0) == ExecType.FILL
                                   and e.order_id == 25 and e.leaves_qty == 0)
    assert done.cum_qty == 2_000
    await engine.drain(0.3)
    assert not engine.execs(ExecType.CANCELED) and not engine.execs(ExecType.REPLACE_REJECT)
