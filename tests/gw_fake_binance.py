"""A small Binance-spot-compatible server on loopback for gateway tests (aiohttp, real sockets).

Only what the gateway uses: time, depth, order (new/query/cancel), openOrders, myTrades,
userDataStream, the combined market stream and the user stream, plus fault switches.
Signatures are checked for real (HMAC-SHA256).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from typing import Any

import orjson
from aiohttp import WSMsgType, web

API_KEY = "test-key"
API_SECRET = "test-secret"


class FakeBinance:
    def __init__(self) -> None:
        self.app = web.Application()
        r = self.app.router
        r.add_get("/api/v3/time", self.time)
        r.add_get("/api/v3/depth", self.depth)
        r.add_post("/api/v3/order", self.new_order)
        r.add_get("/api/v3/order", self.get_order)
        r.add_delete("/api/v3/order", self.cancel)
        r.add_get("/api/v3/openOrders", self.open_orders)
        r.add_get("/api/v3/myTrades", self.my_trades)
        r.add_post("/api/v3/userDataStream", self.listen_key)
        r.add_put("/api/v3/userDataStream", self.listen_key)
        r.add_get("/stream", self.md_ws)
        r.add_get("/ws/{key}", self.user_ws)
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.snapshot: dict[str, Any] = {"lastUpdateId": 100, "bids": [["10.00", "1"]],
                                         "asks": [["10.01", "1"]]}
        self.n_snapshots = 0
        self.orders: dict[str, dict[str, Any]] = {}
        self.trades: list[dict[str, Any]] = []
        self.next_order_id = 1000
        self.md_clients: list[web.WebSocketResponse] = []
        self.user_clients: list[web.WebSocketResponse] = []
        self.user_connects = 0
        self.requests: list[tuple[float, str, str]] = []
        # faults
        self.hang_orders = 0  # next N new orders: executed, answer delayed past the timeout
        self.lose_orders = 0  # next N new orders: never executed, answer delayed
        self.fail_429 = 0  # next N requests: 429 with Retry-After
        self.retry_after = 1
        self.hang_s = 3.0
        self.mute_user = False  # user stream reports silently lost

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        for ws in self.md_clients + self.user_clients:
            await ws.close()
        if self.runner is not None:
            await self.runner.cleanup()

    # ---- helpers -----------------------------------------------------------

    def _json(self, data: Any, status: int = 200, headers: dict[str, str] | None = None):
        h = {"X-MBX-USED-WEIGHT-1M": str(len(self.requests))}
        h.update(headers or {})
        return web.Response(body=orjson.dumps(data), status=status, headers=h,
                            content_type="application/json")

    def _err(self, code: int, msg: str, status: int = 400):
        return self._json({"code": code, "msg": msg}, status)

    def _check(self, request: web.Request, signed: bool) -> web.Response | None:
        self.requests.append((time.monotonic(), request.method, request.path))
        if self.fail_429:
            self.fail_429 -= 1
            return self._json({"code": -1003, "msg": "Too many requests"}, 429,
                              {"Retry-After": str(self.retry_after)})
        if signed:
            qs = request.query_string
            body, _, sig = qs.rpartition("&signature=")
            good = hmac.new(API_SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
            if request.headers.get("X-MBX-APIKEY") != API_KEY or sig != good:
                return self._err(-1022, "Signature for this request is not valid.")
        return None

    # ---- REST --------------------------------------------------------------

    async def time(self, request: web.Request):
        return self._check(request, False) or self._json({"serverTime": int(time.time() * 1000)})

    async def depth(self, request: web.Request):
        if (r := self._check(request, False)) is not None:
            return r
        self.n_snapshots += 1
        return self._json(self.snapshot)

    async def new_order(self, request: web.Request):
        if (r := self._check(request, True)) is not None:
            return r
        q = request.query
        cid = q["newClientOrderId"]
        if self.lose_orders:
            self.lose_orders -= 1
            await asyncio.sleep(self.hang_s)
            return self._err(-1007, "Timeout waiting for response from backend server.", 503)
        if q.get("price") == "0.01":
            return self._err(-2010, "Account has insufficient balance for requested action.")
        self.next_order_id += 1
        o = {"symbol": q["symbol"], "orderId": self.next_order_id, "clientOrderId": cid,
             "price": q.get("price", "0"), "origQty": q["quantity"], "executedQty": "0",
             "status": "NEW", "side": q["side"], "type": q["type"]}
        self.orders[cid] = o
        await self.push_user(self._report(o, "NEW"))
        if self.hang_orders:
            self.hang_orders -= 1
            await asyncio.sleep(self.hang_s)
        return self._json({"symbol": o["symbol"], "orderId": o["orderId"],
                           "clientOrderId": cid, "transactTime": int(time.time() * 1000)})

    async def get_order(self, request: web.Request):
        if (r := self._check(request, True)) is not None:
            return r
        o = self.orders.get(request.query["origClientOrderId"])
        return self._json(o) if o else self._err(-2013, "Order does not exist.")

    async def cancel(self, request: web.Request):
        if (r := self._check(request, True)) is not None:
            return r
        o = self.orders.get(request.query["origClientOrderId"])
        if o is None or o["status"] not in ("NEW", "PARTIALLY_FILLED"):
            return self._err(-2011, "Unknown order sent.")
        o["status"] = "CANCELED"
        await self.push_user(self._report(o, "CANCELED"))
        return self._json(o)

    async def open_orders(self, request: web.Request):
        if (r := self._check(request, True)) is not None:
            return r
        sym = request.query.get("symbol")
        return self._json([o for o in self.orders.values()
                           if o["status"] in ("NEW", "PARTIALLY_FILLED")
                           and (sym is None or o["symbol"] == sym)])

    async def my_trades(self, request: web.Request):
        if (r := self._check(request, True)) is not None:
            return r
        q = request.query
        out = [t for t in self.trades if t["symbol"] == q["symbol"]]
        if "fromId" in q:
            out = [t for t in out if t["id"] >= int(q["fromId"])]
        if "orderId" in q:
            out = [t for t in out if t["orderId"] == int(q["orderId"])]
        return self._json(out)

    async def listen_key(self, request: web.Request):
        if request.headers.get("X-MBX-APIKEY") != API_KEY:
            return self._err(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        self.requests.append((time.monotonic(), request.method, request.path))
        return self._json({"listenKey": "lk-1"})

    # ---- websockets --------------------------------------------------------

    async def _ws(self, request: web.Request, clients: list[web.WebSocketResponse]):
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        clients.append(ws)
        try:
            async for msg in ws:
                if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                    break
        finally:
            if ws in clients:
                clients.remove(ws)
        return ws

    async def md_ws(self, request: web.Request):
        return await self._ws(request, self.md_clients)

    async def user_ws(self, request: web.Request):
        self.user_connects += 1
        return await self._ws(request, self.user_clients)

    async def push_md(self, payload: bytes | str) -> None:
        for ws in list(self.md_clients):
            await ws.send_str(payload if isinstance(payload, str) else payload.decode())

    async def push_user(self, payload: bytes | str) -> None:
        if self.mute_user:
            return
        for ws in list(self.user_clients):
            await ws.send_str(payload if isinstance(payload, str) else payload.decode())

    async def drop_user(self) -> None:
        for ws in list(self.user_clients):
            await ws.close()
        self.user_clients.clear()

    async def drop_md(self) -> None:
        for ws in list(self.md_clients):
            await ws.close()
        self.md_clients.clear()

    # ---- exchange actions --------------------------------------------------

    def _report(self, o: dict[str, Any], x: str, trade: dict[str, Any] | None = None) -> bytes:
        return orjson.dumps({
            "e": "executionReport", "E": int(time.time() * 1000), "s": o["symbol"],
            "c": o["clientOrderId"], "C": o["clientOrderId"] if x == "CANCELED" else "",
            "S": o["side"], "o": o["type"], "q": o["origQty"], "p": o["price"],
            "x": x, "X": o["status"], "r": "NONE", "i": o["orderId"],
            "l": trade["qty"] if trade else "0", "z": o["executedQty"],
            "L": trade["price"] if trade else "0", "n": trade["commission"] if trade else "0",
            "N": "USDT", "T": int(time.time() * 1000), "t": trade["id"] if trade else -1,
            "m": False})

    async def fill(self, cid: str, qty: str, price: str, push: bool = True) -> dict[str, Any]:
        """Execute ``qty`` of an order; push the report unless ``push`` is False (lost)."""
        o = self.orders[cid]
        t = {"symbol": o["symbol"], "id": len(self.trades) + 1, "orderId": o["orderId"],
             "price": price, "qty": qty, "commission": "0.001", "commissionAsset": "USDT",
             "time": int(time.time() * 1000), "isBuyer": o["side"] == "BUY", "isMaker": False}
        self.trades.append(t)
        done = float(o["executedQty"]) + float(qty)  # test fixture only: small clean numbers
        o["executedQty"] = f"{done:.8f}"
        o["status"] = "FILLED" if done >= float(o["origQty"]) else "PARTIALLY_FILLED"
        if push:
            await self.push_user(self._report(o, "TRADE", t))
        return t
