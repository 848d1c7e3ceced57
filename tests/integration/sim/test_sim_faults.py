"""Simulator websocket streams, REST auth/limits and fault injection, over real loopback."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
import pytest
from sim_fixtures import SimHandle, sim, sim_config, start_sim, wait_for  # noqa: F401

from gateways.sim import constants as c

pytestmark = pytest.mark.timeout(60)


def signed(h: SimHandle, params: dict[str, Any], account: int = 0,
           ts: int | None = None) -> tuple[str, dict[str, str]]:
    key, secret = h.keys[account]
    p = dict(params, timestamp=ts if ts is not None else int(time.time() * 1000))
    q = urlencode(p)
    sig = hmac.new(secret.encode(), q.encode(), hashlib.sha256).hexdigest()
    return f"{q}&signature={sig}", {"X-MBX-APIKEY": key}


def book_order(h: SimHandle, side: int, px: str, qty: str) -> int:
    assert h.server is not None
    ex = h.server.ex
    ex.ledger.deposit(ex.sim_account, 0, 10**12)
    ex.ledger.deposit(ex.sim_account, ex.asset_index["USDT"], 10**16)
    return ex.sim_submit("BTCUSDT", side, c.OT_LIMIT, c.TIF_GTC, c.to_fixed(px), c.to_fixed(qty))


async def recv_json(ws: aiohttp.ClientWebSocketResponse, timeout: float = 3.0) -> Any:
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return orjson.loads(msg.data)


async def test_rest_auth_errors_and_weight_header(sim: SimHandle) -> None:  # noqa: F811
    async with aiohttp.ClientSession() as s:
        async with s.get(sim.rest_url + "/ping") as r:
            assert r.status == 200 and r.headers["X-MBX-USED-WEIGHT-1M"] == "1"
        async with s.get(sim.rest_url + "/depth?symbol=NOPE") as r:
            assert r.status == 400 and (await r.json())["code"] == -1121
        q, hdr = signed(sim, {})
        async with s.get(f"{sim.rest_url}/account?{q}") as r:
            assert (await r.json())["code"] == -2014  # no API key header
        async with s.get(f"{sim.rest_url}/account?{q}", headers={"X-MBX-APIKEY": "x"}) as r:
            assert r.status == 401 and (await r.json())["code"] == -2015
        async with s.get(f"{sim.rest_url}/account?{q}0", headers=hdr) as r:
            assert (await r.json())["code"] == -1022  # tampered signature
        q, hdr = signed(sim, {}, ts=int(time.time() * 1000) - 10_000)
        async with s.get(f"{sim.rest_url}/account?{q}", headers=hdr) as r:
            assert (await r.json())["code"] == -1021  # outside recvWindow
        q, hdr = signed(sim, {"recvWindow": 20_000}, ts=int(time.time() * 1000) - 10_000)
        async with s.get(f"{sim.rest_url}/account?{q}", headers=hdr) as r:
            assert r.status == 200 and int(r.headers["X-MBX-USED-WEIGHT-1M"]) > 20
        # signed params may be split between query string and body
        q, hdr = signed(sim, {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                              "timeInForce": "GTC", "quantity": "0.01", "price": "40000"})
        head, tail = q.split("&quantity=")
        body = "quantity=" + tail
        async with s.post(f"{sim.rest_url}/order?{head}", data=body,
                          headers={**hdr, "Content-Type": "application/x-www-form-urlencoded"}
                          ) as r:
            assert r.status == 400 and (await r.json())["code"] == -1022
        # a body-only request signs the body
        async with s.post(f"{sim.rest_url}/order", data=q,
                          headers={**hdr, "Content-Type": "application/x-www-form-urlencoded"}
                          ) as r:
            out = await r.json()
            assert r.status == 200, out
            assert out["status"] == "NEW" and out["fills"] == []


async def test_weight_limit_429_then_418_ban() -> None:
    h = await start_sim(sim_config(limits={"weight_per_minute": 10, "ban_after": 2,
                                           "ban_seconds": 30}))
    try:
        async with aiohttp.ClientSession() as s:
            statuses = []
            for _ in range(16):
                async with s.get(h.rest_url + "/ping") as r:
                    statuses.append((r.status, r.headers.get("Retry-After")))
                    if r.status == 429:
                        assert (await r.json())["code"] == -1003
        codes = [st for st, _ in statuses]
        assert codes[:10] == [200] * 10
        assert codes[10:12] == [429, 429] and all(ra for _, ra in statuses[10:])
        assert codes[12] == 418 and statuses[12][1] == "30"
        assert set(codes[13:]) == {418}
    finally:
        assert h.server is not None
        await h.server.stop()


async def test_fault_429_via_admin_api(sim: SimHandle) -> None:  # noqa: F811
    async with aiohttp.ClientSession() as s:
        async with s.post(sim.base_url + "/_sim/fault", json={"rate_limit": 2}) as r:
            assert (await r.json())["applied"] == ["rate_limit"]
        got = []
        for _ in range(3):
            async with s.get(sim.rest_url + "/time") as r:
                got.append((r.status, r.headers.get("Retry-After")))
        assert got == [(429, "1"), (429, "1"), (200, None)]


async def test_depth_stream_sequence_and_injected_gap(sim: SimHandle) -> None:  # noqa: F811
    book_order(sim, c.SIDE_SELL, "50010", "1")
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(sim.ws_url + "/ws/btcusdt@depth@100ms") as ws:
            async with s.get(sim.rest_url + "/depth?symbol=BTCUSDT") as r:
                snap = await r.json()
            book_order(sim, c.SIDE_BUY, "49990", "1")
            ev = await recv_json(ws)
            assert ev["e"] == "depthUpdate" and ev["s"] == "BTCUSDT"
            assert ev["U"] <= snap["lastUpdateId"] + 1 <= ev["u"]
            assert ["49990.00000000", "1.00000000"] in ev["b"]
            last_u = ev["u"]
            # healthy: consecutive events chain U == previous u + 1
            book_order(sim, c.SIDE_BUY, "49991", "1")
            ev = await recv_json(ws)
            assert ev["U"] == last_u + 1
            last_u = ev["u"]
            assert sim.server is not None
            sim.server.fault(depth_skip=1)
            book_order(sim, c.SIDE_BUY, "49992", "1")
            await asyncio.sleep(0.25)  # the event covering this change is lost
            book_order(sim, c.SIDE_BUY, "49993", "1")
            ev = await recv_json(ws)
            assert ev["U"] > last_u + 1  # the client sees the gap
            last_u = ev["u"]
            sim.server.fault(depth_reorder=1)
            book_order(sim, c.SIDE_BUY, "49994", "1")
            await asyncio.sleep(0.25)
            book_order(sim, c.SIDE_BUY, "49995", "1")
            first, second = await recv_json(ws), await recv_json(ws)
            assert first["U"] > second["u"]  # out of order
            assert second["U"] == last_u + 1


async def test_trade_bookticker_combined_stream_and_drop(sim: SimHandle) -> None:  # noqa: F811
    book_order(sim, c.SIDE_SELL, "50010", "1")
    url = sim.ws_url + "/stream?streams=btcusdt@trade/btcusdt@bookTicker"
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(url) as ws:
            book_order(sim, c.SIDE_BUY, "50010", "0.4")  # trades 0.4 @ 50010
            msgs = [await recv_json(ws), await recv_json(ws)]
            by = {m["stream"]: m["data"] for m in msgs}
            t = by["btcusdt@trade"]
            assert t["e"] == "trade" and t["p"] == "50010.00000000" and t["q"] == "0.40000000"
            assert t["m"] is False  # buyer was the taker
            assert by["btcusdt@bookTicker"]["a"] == "50010.00000000"
            assert by["btcusdt@bookTicker"]["A"] == "0.60000000"
            # live subscribe on the same connection
            await ws.send_str('{"method":"SUBSCRIBE","params":["ethusdt@trade"],"id":7}')
            assert await recv_json(ws) == {"result": None, "id": 7}
            assert sim.server is not None
            assert sim.server.drop_ws() == 1
            msg = await asyncio.wait_for(ws.receive(), 3)
            assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR,
                                aiohttp.WSMsgType.CLOSE)
        await wait_for(lambda: not sim.server.conns)


async def test_numbered_raw_stream_path_waits_for_subscribe(sim: SimHandle) -> None:  # noqa: F811
    """ccxt.pro opens ``/ws/<n>`` (its own connection number) and subscribes afterwards;
    Binance keeps such a connection open, and a path naming a bad stream is refused."""
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(sim.ws_url + "/ws/0") as ws:
            await ws.send_str('{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}')
            assert await recv_json(ws) == {"result": None, "id": 1}
            book_order(sim, c.SIDE_SELL, "50010", "1")
            book_order(sim, c.SIDE_BUY, "50010", "0.4")
            t = await recv_json(ws)
            assert t["e"] == "trade" and t["q"] == "0.40000000"
        async with s.ws_connect(sim.ws_url + "/ws/btcusdt@nonsense") as ws:
            msg = await asyncio.wait_for(ws.receive(), 3)
            assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1008


async def test_stall_delays_stream(sim: SimHandle) -> None:  # noqa: F811
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(sim.ws_url + "/ws/btcusdt@bookTicker") as ws:
            assert sim.server is not None
            sim.server.fault(stall_ws_s=0.5)
            t0 = time.monotonic()
            book_order(sim, c.SIDE_BUY, "49990", "1")
            ev = await recv_json(ws)
            assert ev["b"] == "49990.00000000"
            assert time.monotonic() - t0 >= 0.45


async def test_user_data_stream_and_lost_ack(sim: SimHandle) -> None:  # noqa: F811
    key, _ = sim.keys[0]
    async with aiohttp.ClientSession() as s:
        async with s.post(sim.rest_url + "/userDataStream",
                          headers={"X-MBX-APIKEY": key}) as r:
            lk = (await r.json())["listenKey"]
        async with s.put(f"{sim.rest_url}/userDataStream?listenKey={lk}",
                         headers={"X-MBX-APIKEY": key}) as r:
            assert await r.json() == {}
        async with s.ws_connect(f"{sim.ws_url}/ws/{lk}") as ws:
            assert sim.server is not None
            sim.server.fault(lose_ack=1)
            q, hdr = signed(sim, {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                  "timeInForce": "GTC", "quantity": "0.01", "price": "40000",
                                  "newClientOrderId": "lost-1"})
            with pytest.raises(aiohttp.ClientError):
                async with s.post(f"{sim.rest_url}/order?{q}", headers=hdr) as r:
                    await r.read()
            # ...but the order is live: the user stream and a query both see it
            rep = await recv_json(ws)
            assert rep["e"] == "executionReport" and rep["x"] == "NEW" and rep["c"] == "lost-1"
            pos = await recv_json(ws)
            assert pos["e"] == "outboundAccountPosition"
            assert {b["a"]: b["l"] for b in pos["B"]}["USDT"] == "400.00000000"
            q, hdr = signed(sim, {"symbol": "BTCUSDT", "origClientOrderId": "lost-1"})
            async with s.get(f"{sim.rest_url}/order?{q}", headers=hdr) as r:
                o = await r.json()
                assert o["status"] == "NEW" and o["orderId"] == rep["i"]
            # a fill against it arrives as TRADE
            book_order(sim, c.SIDE_SELL, "40000", "0.004")
            rep = await recv_json(ws)
            assert (rep["x"], rep["X"], rep["l"], rep["m"]) == (
                "TRADE", "PARTIALLY_FILLED", "0.00400000", True)
        async with s.delete(f"{sim.rest_url}/userDataStream?listenKey={lk}",
                            headers={"X-MBX-APIKEY": key}) as r:
            assert await r.json() == {}
        async with s.delete(f"{sim.rest_url}/userDataStream?listenKey={lk}",
                            headers={"X-MBX-APIKEY": key}) as r:
            assert (await r.json())["code"] == -1125


async def test_random_rejects_and_latency() -> None:
    h = await start_sim(sim_config(reject_probability=1.0,
                                   latency={"dist": "fixed", "ms": 50}))
    try:
        async with aiohttp.ClientSession() as s:
            t0 = time.monotonic()
            async with s.get(h.rest_url + "/time") as r:
                assert r.status == 200
            assert time.monotonic() - t0 >= 0.045
            q, hdr = signed(h, {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                "timeInForce": "GTC", "quantity": "0.01", "price": "40000"})
            async with s.post(f"{h.rest_url}/order?{q}", headers=hdr) as r:
                assert (await r.json())["code"] == -2010
    finally:
        assert h.server is not None
        await h.server.stop()


async def test_market_fills_resting_user_orders() -> None:
    h = await start_sim(sim_config(market={"enabled": True, "tick_ms": 5,
                                           "fill_probability": 1.0, "partial_fill_prob": 0.0}))
    try:
        assert h.server is not None
        ex = h.server.ex
        await wait_for(lambda: ex.markets["BTCUSDT"].book.best(c.SIDE_BUY) is not None)
        bid = ex.markets["BTCUSDT"].book.best(c.SIDE_BUY)[0]
        resp = ex.place_order(0, "BTCUSDT", "BUY", "LIMIT", "0.01", c.fmt(bid - 10 * c.SCALE),
                              "GTC")
        rec = ex.accounts[0].records[("BTCUSDT", resp["orderId"])]
        await wait_for(lambda: rec.status == c.ST_FILLED)
        assert rec.filled == c.to_fixed("0.01")
    finally:
        await h.server.stop()
