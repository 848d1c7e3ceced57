"""Binance gateway against a loopback Binance-compatible server, with real ZeroMQ to the engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest
from gw_engine import Engine
from gw_fake_binance import API_KEY, API_SECRET, FakeBinance

from bindings.wire import records as wire
from gateways.binance import BinanceGateway
from gateways.config import GatewayConfig, Instrument
from gateways.engine_link import EngineLink, ExecType, GatewayState
from oms_core.enums import OrderType, Side, TimeInForce

pytestmark = pytest.mark.timeout(30)

INST = Instrument(id=7, symbol="BTCUSDT", price_decimals=2, qty_decimals=4)


def diff(U: int, u: int, b=(), a=()) -> bytes:
    return orjson.dumps({"stream": "btcusdt@depth@100ms", "data": {
        "e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": U, "u": u,
        "b": [list(x) for x in b], "a": [list(x) for x in a]}})


@pytest.fixture
async def env(monkeypatch) -> AsyncIterator[tuple[FakeBinance, Engine, BinanceGateway]]:
    monkeypatch.setenv("T_KEY", API_KEY)
    monkeypatch.setenv("T_SECRET", API_SECRET)
    fake = FakeBinance()
    await fake.start()
    engine = Engine()
    cfg = GatewayConfig(kind="binance", instruments=[INST], engine=engine.endpoints,
                        rest_url=fake.rest_url, ws_url=fake.ws_url, api_key_env="T_KEY",
                        api_secret_env="T_SECRET", request_timeout_s=0.5, recv_window_ms=300,
                        reconnect_base_s=0.05, reconnect_max_s=0.2, stale_after_s=1.0)
    link = EngineLink(cfg.engine, cfg.gateway_id, ctx=engine.ctx)
    gw = BinanceGateway(cfg, link)
    await gw.start()
    await engine.wait_event(lambda e: e.msg_type.name == "GW_STATUS"
                            and e.state == GatewayState.HEALTHY and e.detail == 2)
    async with asyncio.timeout(5):
        while not fake.md_clients or not gw.md["BTCUSDT"].book.synced:
            await asyncio.sleep(0.01)
    try:
        yield fake, engine, gw
    finally:
        await gw.stop()
        link.close()
        await fake.stop()
        engine.close()


async def test_market_data_flows_and_book_resyncs_after_gap(env):
    fake, engine, gw = env
    book = gw.md["BTCUSDT"].book
    assert fake.n_snapshots == 1 and book.last_update_id == 100
    await fake.push_md(diff(99, 101, b=[("10.05", "2")]))
    md = await engine.wait_md(lambda m: m.bid == 1005)
    assert md.instrument == 7 and md.bid_qty == 20000 and md.ask == 1001
    # inject a gap: U jumps past u + 1
    fake.snapshot = {"lastUpdateId": 200, "bids": [["9.00", "1"]], "asks": [["9.50", "1"]]}
    await fake.push_md(diff(150, 151, b=[("10.06", "1")]))
    await engine.wait_event(lambda e: e.msg_type.name == "GW_STATUS"
                            and e.state == GatewayState.STALE and e.detail == 1007)
    md = await engine.wait_md(lambda m: m.bid == 900 and m.ask == 950)
    assert fake.n_snapshots == 2 and book.synced and book.last_update_id == 200
    assert book.n_gaps == 1
    await fake.push_md(diff(201, 202, a=[("9.40", "3")]))
    md = await engine.wait_md(lambda m: m.ask == 940)
    assert md.ask_qty == 30000 and not md.md_flags
    # trades publish the last price
    await fake.push_md(orjson.dumps({"stream": "btcusdt@trade", "data": {
        "e": "trade", "E": 1, "s": "BTCUSDT", "t": 5, "p": "9.45", "q": "0.5", "T": 2}}))
    md = await engine.wait_md(lambda m: m.last == 945)
    assert md.last_qty == 5000


async def test_stale_detection_reports_and_recovers(env):
    fake, engine, gw = env
    await engine.wait_event(lambda e: e.msg_type.name == "GW_STATUS"
                            and e.state == GatewayState.STALE and e.detail == 1007, timeout=3)
    assert gw.md["BTCUSDT"].stale
    await fake.push_md(diff(101, 101, b=[("10.00", "3")]))
    await engine.wait_event(lambda e: e.msg_type.name == "GW_STATUS"
                            and e.state == GatewayState.HEALTHY and e.detail == 1007)


async def test_malformed_messages_counted_never_crash(env):
    fake, engine, gw = env
    for junk in (b"not json", b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate"',
                 b'{"stream":"btcusdt@trade","data":{"p":"x"}}', b"[1,2]",
                 b'{"stream":"btcusdt@bookTicker","data":{"u":"no"}}'):
        await fake.push_md(junk)
    await fake.push_user(b"{{{")
    await fake.push_user(b'{"e":"executionReport","x":"TRADE"}')
    await fake.push_md(diff(101, 101, b=[("10.07", "1")]))
    await engine.wait_md(lambda m: m.bid == 1007)
    assert gw.n_malformed >= 6
    assert gw.md_conn.n_connects == 1 and gw.user_conn.n_connects == 1


async def test_order_ack_reject_and_cancel(env):
    fake, engine, gw = env
    await engine.send_order(order_id=1, price=1000, quantity=10000, account=1, instrument=7,
                            side=Side.BUY, order_type=OrderType.LIMIT, tif=TimeInForce.GTC)
    ack = await engine.wait_event(lambda e: getattr(e, "exec_type", 0) == ExecType.ACK)
    assert ack.order_id == 1 and ack.exch_order_id == 1001
    assert fake.orders["oms-1"]["price"] == "10.00" and fake.orders["oms-1"]["origQty"] == "1.0000"
    # exchange reject carries the exchange's code
    await engine.send_order(order_id=2, price=1, quantity=10000, account=1, instrument=7,
                            side=Side.BUY, order_type=OrderType.LIMIT, tif=TimeInForce.GTC)
    rej = await engine.wait_event(lambda e: getattr(e, "exec_type", 0) == ExecType.REJECT)
    assert rej.order_id == 2 and rej.exch_code == -2010
    await engine.orders.send(wire.encode("GW_CANCEL", order_id=1, account=1, instrument=7))
    c = await engine.wait_event(lambda e: getattr(e, "exec_type", 0) == ExecType.CANCELED)
    assert c.order_id == 1
    await engine.drain(0.3)
    assert len(engine.execs(ExecType.ACK)) == 1 and len(engine.execs(ExecType.CANCELED)) == 1


async def test_reconnect_no_lost_or_duplicated_fill(env):
    fake, engine, gw = env
    await engine.send_order(order_id=5, price=1000, quantity=30000, account=1, instrument=7,
                            side=Side.BUY, order_type=OrderType.LIMIT, tif=TimeInForce.GTC)
    await engine.wait_event(lambda e: getattr(e, "exec_type", 0) == ExecType.ACK)
    t1 = await fake.fill("oms-5", "1.0000", "10.00")
    await engine.wait_event(lambda e: getattr(e, "trade_id", 0) == t1["id"])
    await fake.drop_user()
    t2 = await fake.fill("oms-5", "1.0000", "10.00", push=False)  # happens while we are away
    await engine.wait_event(lambda e: getattr(e, "trade_id", 0) == t2["id"], timeout=5)
    assert fake.user_connects == 2
    await engine.wait_event(lambda e: e.msg_type.name == "GW_STATUS"
                            and e.state == GatewayState.HEALTHY and e.detail == 2)
    # the exchange replays the first report after the reconnect: must not count twice
    await fake.push_user(fake._report(fake.orders["oms-5"], "TRADE", t1))
    t3 = await fake.fill("oms-5", "1.0000", "10.01")
    await engine.wait_event(lambda e: getattr(e, "trade_id", 0) == t3["id"])
    await engine.drain(0.3)
    fills = engine.execs(ExecType.FILL)
    assert sorted(f.trade_id for f in fills) == [1, 2, 3]
    assert fills[-1].cum_qty == 30000 and fills[-1].leaves_qty == 0


async def test_unknown_order_resolved_by_query(env):
    fake, engine, gw = env
    fake.hang_orders = 1  # executed, but the answer is lost (timeout)
    fake.mute_user = True  # and the user stream does not tell us either
    await engine.send_order(order_id=9, price=1000, quantity=10000, account=1, instrument=7,
                            side=Side.BUY, order_type=OrderType.LIMIT, tif=TimeInForce.GTC)
    st = await engine.wait_event(lambda e: getattr(e, "exec_type", 0) == ExecType.STATUS)
    assert st.order_id == 9
    ack = await engine.wait_event(lambda e: getattr(e, "exec_type", 0) == ExecType.ACK
                                  and e.order_id == 9)
    assert ack.exch_order_id == fake.orders["oms-9"]["orderId"]
    posts = [r for r in fake.requests if r[1] == "POST" and r[2] == "/api/v3/order"]
    assert len(posts) == 1  # never re-sent blind
    assert any(r[1] == "GET" and r[2] == "/api/v3/order" for r in fake.requests)


async def test_unknown_order_never_arrived_is_rejected_after_recv_window(env):
    fake, engine, gw = env
    fake.lose_orders = 1
    await engine.send_order(order_id=11, price=1000, quantity=10000, account=1, instrument=7,
                            side=Side.BUY, order_type=OrderType.LIMIT, tif=TimeInForce.GTC)
    await engine.wait_event(lambda e: getattr(e, "exec_type", 0) == ExecType.STATUS)
    rej = await engine.wait_event(lambda e: getattr(e, "exec_type", 0) == ExecType.REJECT
                                  and e.order_id == 11)
    assert rej.exch_code == -2013
    assert "oms-11" not in fake.orders
    assert not [e for e in engine.received if getattr(e, "exec_type", 0) == ExecType.ACK
                and e.order_id == 11]


async def test_rate_limit_backs_off_on_429(env):
    fake, engine, gw = env
    fake.fail_429 = 1
    fake.retry_after = 1
    await engine.send_order(order_id=21, price=1000, quantity=10000, account=1, instrument=7,
                            side=Side.BUY, order_type=OrderType.LIMIT, tif=TimeInForce.GTC)
    rej = await engine.wait_event(lambda e: getattr(e, "exec_type", 0) == ExecType.REJECT)
    assert rej.exch_code == -1003 and gw.rest.limiter.n_429 == 1
    t429 = fake.requests[-1][0]
    await engine.send_order(order_id=22, price=1000, quantity=10000, account=1, instrument=7,
                            side=Side.BUY, order_type=OrderType.LIMIT, tif=TimeInForce.GTC)
    await engine.wait_event(lambda e: getattr(e, "exec_type", 0) == ExecType.ACK
                            and e.order_id == 22)
    nxt = [r for r in fake.requests if r[0] > t429][0][0]
    assert nxt - t429 >= 0.9  # nothing was sent during Retry-After


async def test_md_socket_drop_reconnects_and_resyncs(env):
    fake, engine, gw = env
    await fake.drop_md()
    async with asyncio.timeout(5):
        while gw.md_conn.n_connects < 2 or not gw.md["BTCUSDT"].book.synced:
            await asyncio.sleep(0.02)
    assert fake.n_snapshots == 2
    await fake.push_md(diff(101, 101, b=[("10.09", "1")]))
    await engine.wait_md(lambda m: m.bid == 1009)
