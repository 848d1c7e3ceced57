"""The ccxt gateway publishes the venue's trades (issue 10 item 14) and keeps its cancel
retries and its venue-id map bounded.

Real parts: ccxt's own binance class against the simulator (URLs overridden; its REST class,
so public trades are polled with ``fetch_trades``), real ZeroMQ to a stand-in engine, and for
the held stop the real engine process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any

import pytest
import zmq
from gw_engine import Engine
from sim_fixtures import SimHandle, ccxt_binance, sim, wait_for  # noqa: F401
from test_ccxt_order_types import INST, env, exec_of, order, records  # noqa: F401
from test_sim_ccxt import seed_asks

from bindings.client import Ack, OmsClient
from bindings.wire import records as wire
from bindings.wire.spec import MdFlag, MsgType
from gateways import ccxt_gateway
from gateways.ccxt_gateway import CcxtGateway
from gateways.config import EngineEndpoints, GatewayConfig, Instrument
from gateways.engine_link import EngineLink, ExecType
from gateways.sim import constants as c
from oms_core.engine.process import EngineProcess, base_config
from oms_core.enums import OrderType, Side

pytestmark = pytest.mark.timeout(60)


def _is_trade(price: int, instrument: int = INST.id) -> Any:
    return lambda m: (m.instrument == instrument and m.md_flags & MdFlag.TRADE
                      and m.last == price)


async def test_each_venue_trade_is_one_market_data_record_flagged_trade(
        env: Any) -> None:  # noqa: F811
    h, engine, gw = env
    assert h.server is not None
    ex = h.server.ex
    ex.place_order(1, "BTCUSDT", "BUY", "MARKET", "0.1")  # at 50000.00, the best ask
    ex.place_order(1, "BTCUSDT", "SELL", "MARKET", "0.2")  # at 49990.00, the best bid
    buy = await engine.wait_md(_is_trade(5_000_000), timeout=10)
    sell = await engine.wait_md(_is_trade(4_999_000), timeout=10)
    assert (buy.last_qty, sell.last_qty) == (100_000, 200_000)  # 6 quantity decimals
    assert buy.bid and buy.ask  # the top of book rides along
    # book-only records carry the last trade unflagged; no trade is published twice
    with contextlib.suppress(TimeoutError):
        await engine.wait_md(lambda m: False, timeout=1.5)
    trades = [m for m in engine.md_received
              if m.md_flags & MdFlag.TRADE and m.instrument == INST.id]
    assert [m.last for m in trades] == [5_000_000, 4_999_000]


def _ccxt_pro_binance(h: SimHandle) -> Any:
    """ccxt.pro's binance (websocket streams) pointed at the simulator."""
    import ccxt.pro as ccxtpro

    key, secret = h.keys[0]
    ex = ccxtpro.binance({"apiKey": key, "secret": secret, "enableRateLimit": False,
                          "options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]},
                                      "fetchCurrencies": False, "fetchMargins": False}})
    api = {**ex.urls["api"], "public": h.rest_url, "private": h.rest_url,
           "v1": h.base_url + "/api/v1"}
    api["ws"] = {**api["ws"], "spot": h.ws_url + "/ws"}
    ex.urls["api"] = api
    return ex


async def test_watch_trades_publishes_each_streamed_trade(sim: SimHandle) -> None:  # noqa: F811
    assert sim.server is not None
    seed_asks(sim)
    engine = Engine()
    cfg = GatewayConfig(kind="ccxt", instruments=[INST], engine=engine.endpoints,
                        user_stream=False, stale_after_s=0.4, reconnect_max_s=0.5)
    link = EngineLink(cfg.engine, 1, ctx=engine.ctx)
    gw = CcxtGateway(cfg, link, exchange=_ccxt_pro_binance(sim))
    assert gw.ex.has.get("watchTrades")
    task = asyncio.get_running_loop().create_task(gw.run())
    try:
        await engine.wait_md(lambda m: m.instrument == INST.id and m.ask, timeout=10)
        await asyncio.sleep(0.5)  # the trade stream subscribed
        ex = sim.server.ex
        ex.place_order(1, "BTCUSDT", "BUY", "MARKET", "0.7")  # 0.5 at 50000.00, 0.2 at 50001.00
        first = await engine.wait_md(_is_trade(5_000_000), timeout=10)
        second = await engine.wait_md(_is_trade(5_000_100), timeout=10)
        assert (first.last_qty, second.last_qty) == (500_000, 200_000)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        link.close()
        engine.close()


async def test_a_cancel_the_venue_never_answers_is_left_for_reconciliation(
        env: Any, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        caplog: pytest.LogCaptureFixture) -> None:
    h, engine, gw = env
    assert h.server is not None
    monkeypatch.setattr(ccxt_gateway, "CANCEL_GIVE_UP_S", 1.5)
    await order(engine, 11, 4_900_000, 10_000)
    await engine.wait_event(exec_of(ExecType.ACK, 11))
    h.server.fault(rate_limit=10**6)  # every request answered 429
    t0 = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="gateways.ccxt"):
        await engine.orders.send(wire.encode("GW_CANCEL", order_id=11, account=1,
                                             instrument=INST.id))
        await wait_for(lambda: any("left for reconciliation" in r.getMessage()
                                   for r in caplog.records), timeout_s=15)
    assert time.monotonic() - t0 < 10
    h.server.fault(clear=True)
    # neither canceled nor refused: still open at the venue, and still followed
    assert [r.status for r in records(h, 11)] == [c.ST_NEW]
    assert "oms-11" in gw.live
    assert not [e for e in engine.execs(ExecType.CANCELED) + engine.execs(
        ExecType.CANCEL_REJECT) if e.order_id == 11]


async def test_venue_ids_of_ended_orders_are_pruned(
        env: Any, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    h, engine, gw = env
    monkeypatch.setattr(ccxt_gateway, "VENUE_IDS_KEPT", 2)
    for oid in (21, 22, 23, 24):
        await order(engine, oid, 4_900_000, 10_000)
        await engine.wait_event(exec_of(ExecType.ACK, oid))
        await engine.orders.send(wire.encode("GW_CANCEL", order_id=oid, account=1,
                                             instrument=INST.id))
        await engine.wait_event(exec_of(ExecType.CANCELED, oid), timeout=10)
    await order(engine, 25, 4_900_000, 10_000)  # live: never pruned
    await engine.wait_event(exec_of(ExecType.ACK, 25))
    # an order filled in full is final too
    await order(engine, 26, 5_000_000, 10_000)
    await engine.wait_event(exec_of(ExecType.FILL, 26), timeout=10)
    await wait_for(lambda: "oms-26" not in gw.live, timeout_s=5)
    assert sorted(gw.venue_ids.values()) == [24, 25, 26]
    assert sorted(gw.cids.values()) == [25]


async def test_an_engine_held_stop_fires_on_the_ccxt_last_trade(sim: SimHandle,  # noqa: F811
                                                                tmp_path: Path) -> None:
    """The engine holds a sell stop at 49,950.00; the venue trades through it at 49,900.00
    (another account sweeps the bids); the ccxt gateway's trade record fires the stop, and
    its market order reaches the venue."""
    assert sim.server is not None
    ex = sim.server.ex
    seed_asks(sim)
    ex.sim_submit("BTCUSDT", c.SIDE_BUY, c.OT_LIMIT, c.TIF_GTC, c.to_fixed("49900"),
                  c.to_fixed("1"))
    e = EngineProcess(base_config(tmp_path, "ipc"), tmp_path).start()
    cfg = GatewayConfig(
        kind="ccxt", gateway_id=1, account_id=1, user_stream=False, stale_after_s=0.4,
        instruments=[Instrument(id=1, symbol="BTC/USDT", price_decimals=2, qty_decimals=5)],
        engine=EngineEndpoints(orders=e.endpoints["gateway_orders_1"],
                               events=e.endpoints["gateway_events"],
                               market_data=e.endpoints["gateway_md"], bind=False))
    link = EngineLink(cfg.engine, cfg.gateway_id)
    gw = CcxtGateway(cfg, link, exchange=ccxt_binance(sim))
    task = asyncio.get_running_loop().create_task(gw.run())
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(e.endpoints["public"])
    heard: list[Any] = []

    async def hear(pred: Any, timeout: float) -> Any:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            while sub.poll(0):
                heard.extend(r for r in wire.decode_frame(sub.recv())
                             if r.msg_type == MsgType.GW_MARKET_DATA)
            hit = next((m for m in heard if pred(m)), None)
            if hit is not None:
                return hit
            await asyncio.sleep(0.02)
        raise AssertionError("no such market data from the engine")

    try:
        await hear(lambda m: m.bid == 4_999_000, 10)
        with OmsClient(e.endpoints["client"], account=1, timeout=5) as client:
            stop = client.submit(1, Side.SELL, 1000, 0, order_type=OrderType.STOP_MARKET,
                                 trigger_price=4_995_000, client_order_id=1)
            assert isinstance(stop, Ack), stop
        await asyncio.sleep(0.3)
        assert not [r for r in ex.accounts[0].records.values()
                    if r.client_order_id == f"oms-{stop.order_id}"]  # held by the engine
        # account 1 sells 3 BTC: 2.5 at 49,990.00 .. 49,986.00, the rest at 49,900.00
        ex.place_order(1, "BTCUSDT", "SELL", "MARKET", "3")
        md = await hear(_is_trade(4_990_000, 1), 10)
        assert md.last_qty == 50_000
        await wait_for(lambda: any(r.client_order_id == f"oms-{stop.order_id}"
                                   for r in ex.accounts[0].records.values()), timeout_s=10)
        (rec,) = [r for r in ex.accounts[0].records.values()
                  if r.client_order_id == f"oms-{stop.order_id}"]
        assert (rec.otype, rec.side, rec.qty) == (c.OT_MARKET, c.SIDE_SELL, c.to_fixed("0.01"))
        assert rec.filled == c.to_fixed("0.01")
    finally:
        sub.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        link.close()
        e.stop()
