"""Simulated Binance spot exchange on localhost: REST ``/api/v3/*``, websocket streams, admin.

Plain Python on aiohttp. The matching itself is the compiled ``gateways.sim.matching``.
Run it with ``python -m gateways.sim`` or in-process::

    server = SimServer(SimConfig.from_dict({}))
    await server.start()          # binds 127.0.0.1 on a free port
    server.base_url               # e.g. http://127.0.0.1:40123  (REST: + /api/v3)
    server.ws_url                 # e.g. ws://127.0.0.1:40123    (+ /ws/<stream>, /stream?streams=)
    server.fault(rate_limit=2)    # or POST /_sim/fault {"rate_limit": 2}
    await server.stop()
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import random
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import WSMsgType, web

from gateways.sim import constants as c
from gateways.sim.config import SimConfig
from gateways.sim.exchange import Account, Exchange, Market, SimError, now_ms
from gateways.sim.faults import Faults
from gateways.sim.market import SyntheticMarket

log = logging.getLogger("gateways.sim")

LISTEN_KEY_TTL_S = 3600
# request weights of Binance spot (REST API docs), default 1
WEIGHTS = {
    "/api/v3/exchangeInfo": 20, "/api/v3/ticker/bookTicker": 2, "/api/v3/trades": 25,
    "/api/v3/aggTrades": 4,
    "/api/v3/account": 20, "/api/v3/allOrders": 20, "/api/v3/myTrades": 20,
    "/api/v3/openOrders": 6, "/api/v3/userDataStream": 2,
}


def _depth_weight(limit: int) -> int:
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(code: int, msg: str, status: int = 400, headers: dict[str, str] | None = None,
           data: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"code": code, "msg": msg}
    if data is not None:
        body["data"] = data
    resp = _json(body, status)
    if headers:
        resp.headers.update(headers)
    return resp


def _strip_signature(raw: str) -> str:
    return "&".join(p for p in raw.split("&") if p and not p.startswith("signature="))


@dataclass(slots=True, eq=False)
class _Conn:
    ws: web.WebSocketResponse
    request: web.Request
    combined: bool
    queue: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(maxsize=10_000))
    names: dict[str, str] = field(default_factory=dict)  # internal stream -> name shown


class _DepthFeed:
    """Diff-depth publisher for one symbol and one interval (``@depth`` / ``@depth@100ms``)."""

    def __init__(self, market: Market, stream: str, interval_s: float, pu: bool) -> None:
        self.market = market
        self.stream = stream
        self.interval_s = interval_s
        self.pu = pu
        self.levels: tuple[dict[int, int], dict[int, int]] = ({}, {})
        self.last_u = market.book.update_id
        self.held: dict[str, Any] | None = None

    def diff(self) -> dict[str, Any] | None:
        book = self.market.book
        u = book.update_id
        if u == self.last_u:
            return None
        bids, asks = book.depth()
        out: list[list[list[str]]] = []
        new_levels = (dict(bids), dict(asks))
        for side in (0, 1):
            old, new = self.levels[side], new_levels[side]
            changed = [[c.fmt(p), c.fmt(q)] for p, q in new.items() if old.get(p) != q]
            changed += [[c.fmt(p), "0.00000000"] for p in old if p not in new]
            out.append(changed)
        ev = {"e": "depthUpdate", "E": now_ms(), "s": self.market.cfg.symbol,
              "U": self.last_u + 1, "u": u, "b": out[0], "a": out[1]}
        if self.pu:
            ev["pu"] = self.last_u
        self.levels = new_levels
        self.last_u = u
        return ev


class SimServer:
    """The simulated exchange's HTTP/websocket server (one event loop, in-process)."""

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.ex = Exchange(cfg)
        self.faults = Faults(reject_probability=cfg.reject_probability)
        self.rng = random.Random(cfg.seed + 1)
        self.market = SyntheticMarket(self.ex, cfg.seed)
        self.subs: dict[str, set[_Conn]] = {}
        self.conns: set[_Conn] = set()
        self.listen_keys: dict[str, tuple[int, float]] = {}
        self.weights: dict[str, deque[tuple[float, int]]] = {}
        self.order_counts: dict[int, deque[float]] = {}
        self.violations: dict[str, int] = {}
        self.banned_until: dict[str, float] = {}
        self.feeds: list[_DepthFeed] = []
        for m in self.ex.markets.values():
            s = m.cfg.symbol.lower()
            self.feeds.append(_DepthFeed(m, f"{s}@depth@100ms", cfg.depth_interval_ms / 1000,
                                         cfg.depth_include_pu))
            self.feeds.append(_DepthFeed(m, f"{s}@depth", 1.0, cfg.depth_include_pu))
        self.ex.stream_listeners.append(self.publish)
        self.ex.user_listeners.append(lambda acct, p: self.publish(f"__user{acct}", p))
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.host = "127.0.0.1"
        self.port = 0
        self.stats = {"rest": 0, "ws_sent": 0, "ws_dropped": 0}

    # ------------------------------------------------------------- lifecycle ----

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=1 << 20)
        r = app.router
        a = "/api/v3"
        r.add_get(f"{a}/ping", self.h_ping)
        r.add_get(f"{a}/time", self.h_time)
        r.add_get(f"{a}/exchangeInfo", self.h_exchange_info)
        r.add_get(f"{a}/depth", self.h_depth)
        r.add_get(f"{a}/ticker/bookTicker", self.h_book_ticker)
        r.add_get(f"{a}/trades", self.h_trades)
        r.add_get(f"{a}/aggTrades", self.h_agg_trades)
        r.add_post(f"{a}/order", self.h_new_order)
        r.add_post(f"{a}/order/test", self.h_test_order)
        r.add_post(f"{a}/order/cancelReplace", self.h_cancel_replace)
        r.add_get(f"{a}/order", self.h_get_order)
        r.add_delete(f"{a}/order", self.h_cancel_order)
        r.add_get(f"{a}/openOrders", self.h_open_orders)
        r.add_delete(f"{a}/openOrders", self.h_cancel_all)
        r.add_get(f"{a}/allOrders", self.h_all_orders)
        r.add_get(f"{a}/account", self.h_account)
        r.add_get(f"{a}/myTrades", self.h_my_trades)
        r.add_post(f"{a}/userDataStream", self.h_listen_key)
        r.add_put(f"{a}/userDataStream", self.h_listen_key)
        r.add_delete(f"{a}/userDataStream", self.h_listen_key)
        r.add_get("/ws/{stream:.*}", self.h_ws)
        r.add_get("/ws", self.h_ws)
        r.add_get("/stream", self.h_ws)
        r.add_get("/_sim/state", self.h_admin_state)
        r.add_post("/_sim/fault", self.h_admin_fault)
        r.add_post("/_sim/step", self.h_admin_step)
        r.add_post("/_sim/mid", self.h_admin_mid)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Bind and start serving, plus the market and depth tasks."""
        self._runner = web.AppRunner(self.build_app(), access_log=None,
                                     handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        self.host, self.port = self._runner.addresses[0][:2]
        if self.cfg.market.enabled:
            self.market.step()  # a two-sided book from the first request on
            self._tasks.append(asyncio.create_task(self._market_loop()))
        for feed in self.feeds:
            self._tasks.append(asyncio.create_task(self._depth_loop(feed)))
        log.info("simulated exchange on %s", self.base_url)

    async def stop(self) -> None:
        """Stop the tasks, close every websocket, unbind."""
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for conn in list(self.conns):
            await conn.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _market_loop(self) -> None:
        period = self.cfg.market.tick_ms / 1000
        while True:
            await asyncio.sleep(period)
            try:
                self.market.step()
            except Exception:  # keep the market alive; a bug here must not kill the server
                log.exception("market step failed")

    async def _depth_loop(self, feed: _DepthFeed) -> None:
        while True:
            await asyncio.sleep(feed.interval_s)
            ev = feed.diff()
            if ev is None:
                continue
            f = self.faults
            if f.depth_skip_next > 0:
                f.depth_skip_next -= 1
                continue  # lost message: the next one's U jumps past our last u + 1
            if f.depth_reorder_next > 0 and feed.held is None:
                f.depth_reorder_next -= 1
                feed.held = ev
                continue
            self.publish(feed.stream, ev)
            if feed.held is not None:
                self.publish(feed.stream, feed.held)
                feed.held = None

    # ---------------------------------------------------------- Python fault API ----

    def fault(self, **kw: Any) -> list[str]:
        """Inject faults (see ``Faults.apply``); ``drop_ws=True`` drops every websocket."""
        done = self.faults.apply(kw)
        if kw.get("drop_ws"):
            self.drop_ws(kw.get("drop_ws_match"), kw.get("drop_ws_mode", "abort"))
            done.append("drop_ws")
        if kw.get("clear"):
            self.faults.clear()
            self.banned_until.clear()
            self.violations.clear()
            self.weights.clear()
            done.append("clear")
        return done

    def drop_ws(self, match: str | None = None, mode: str = "abort") -> int:
        """Drop websocket connections (all, or those with a stream containing ``match``).

        ``abort`` closes the TCP connection without a close frame; ``close`` sends 1001.
        """
        n = 0
        for conn in list(self.conns):
            if match and not any(match in name for name in conn.names.values()):
                continue
            n += 1
            self._unsubscribe_all(conn)
            if mode == "abort" and conn.request.transport is not None:
                conn.request.transport.abort()
            else:
                asyncio.ensure_future(conn.ws.close(code=1001, message=b"sim drop"))
        return n

    # ---------------------------------------------------------------- streams ----

    def publish(self, stream: str, payload: dict[str, Any]) -> None:
        conns = self.subs.get(stream)
        if not conns:
            return
        raw = orjson.dumps(payload)
        for conn in list(conns):
            msg = raw
            if conn.combined:
                msg = b'{"stream":' + orjson.dumps(conn.names[stream]) + b',"data":' + raw + b"}"
            try:
                conn.queue.put_nowait(msg)
            except asyncio.QueueFull:
                # like Binance: a consumer that cannot keep up is disconnected
                self.stats["ws_dropped"] += 1
                self._unsubscribe_all(conn)
                asyncio.ensure_future(conn.ws.close(code=1008, message=b"slow consumer"))

    def _subscribe(self, conn: _Conn, name: str) -> bool:
        internal = self._resolve_stream(name)
        if internal is None:
            return False
        conn.names[internal] = name
        self.subs.setdefault(internal, set()).add(conn)
        return True

    def _unsubscribe_all(self, conn: _Conn) -> None:
        for internal in conn.names:
            self.subs.get(internal, set()).discard(conn)
        conn.names.clear()
        self.conns.discard(conn)

    def _resolve_stream(self, name: str) -> str | None:
        key = self.listen_keys.get(name)
        if key is not None:
            return f"__user{key[0]}"
        sym, _, kind = name.partition("@")
        if sym.upper() not in self.ex.markets:
            return None
        if kind in ("trade", "bookTicker", "depth", "depth@100ms"):
            return f"{sym.lower()}@{kind}"
        return None

    async def h_ws(self, request: web.Request) -> web.StreamResponse:
        combined = request.path == "/stream"
        if combined:
            names = [s for s in request.query.get("streams", "").split("/") if s]
        else:
            tail = request.match_info.get("stream", "")
            # a segment that names no stream (ccxt.pro's connection number) opens a plain
            # connection that subscribes later, as Binance allows
            names = [s for s in tail.split("/") if s and ("@" in s or s in self.listen_keys)]
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 16)
        await ws.prepare(request)
        conn = _Conn(ws, request, combined)
        self.conns.add(conn)
        for name in names:
            if not self._subscribe(conn, name):
                await ws.close(code=1008, message=b"Invalid request")
                self._unsubscribe_all(conn)
                return ws
        writer = asyncio.create_task(self._writer(conn))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._ws_request(conn, msg.data)
                elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            self._unsubscribe_all(conn)
            writer.cancel()
        return ws

    async def _ws_request(self, conn: _Conn, text: str) -> None:
        try:
            req = orjson.loads(text)
            method, rid = req["method"], req.get("id")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            await conn.ws.send_bytes(orjson.dumps({"code": 3, "msg": "Invalid JSON"}))
            return
        result: Any = None
        if method == "SUBSCRIBE":
            for name in req.get("params", []):
                if not self._subscribe(conn, name):
                    await conn.ws.send_str(orjson.dumps(
                        {"error": {"code": 2, "msg": f"Invalid request: {name}"},
                         "id": rid}).decode())
                    return
            self.conns.add(conn)
        elif method == "UNSUBSCRIBE":
            for name in req.get("params", []):
                internal = self._resolve_stream(name)
                if internal and internal in conn.names:
                    conn.names.pop(internal)
                    self.subs.get(internal, set()).discard(conn)
        elif method == "LIST_SUBSCRIPTIONS":
            result = list(conn.names.values())
        else:
            await conn.ws.send_str(orjson.dumps(
                {"error": {"code": 1, "msg": "Invalid method"}, "id": rid}).decode())
            return
        await conn.ws.send_str(orjson.dumps({"result": result, "id": rid}).decode())

    async def _writer(self, conn: _Conn) -> None:
        try:
            while True:
                msg = await conn.queue.get()
                while time.monotonic() < self.faults.stall_until:
                    await asyncio.sleep(0.01)
                await conn.ws.send_str(msg.decode())
                self.stats["ws_sent"] += 1
        except (ConnectionError, RuntimeError):
            self._unsubscribe_all(conn)

    # ---------------------------------------------------- limits, latency, auth ----

    def _latency_s(self) -> float:
        lat = self.cfg.latency
        if lat.dist == "fixed":
            ms = lat.ms
        elif lat.dist == "uniform":
            ms = self.rng.uniform(lat.min_ms, lat.max_ms)
        elif lat.dist == "normal":
            ms = max(lat.min_ms, self.rng.gauss(lat.ms, lat.sd_ms))
        elif lat.dist == "lognormal":
            ms = lat.ms * math.exp(self.rng.gauss(0.0, lat.sigma))
        else:
            return 0.0
        if lat.max_ms > 0:
            ms = min(ms, lat.max_ms)
        return ms / 1000

    def _weight_of(self, request: web.Request) -> int:
        if request.path == "/api/v3/depth":
            try:
                return _depth_weight(int(request.query.get("limit", "100")))
            except ValueError:
                return 5
        w = WEIGHTS.get(request.path, 1)
        if request.path == "/api/v3/openOrders" and "symbol" not in request.query:
            w = 80
        if request.path == "/api/v3/ticker/bookTicker" and "symbol" not in request.query:
            w = 4
        if request.path == "/api/v3/order" and request.method == "GET":
            w = 4
        return w

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        if not path.startswith("/api/"):
            return await handler(request)
        self.stats["rest"] += 1
        ip = request.remote or "?"
        mono = time.monotonic()
        limits = self.cfg.limits
        banned = self.banned_until.get(ip, 0.0)
        if banned > mono:
            until = now_ms() + int((banned - mono) * 1000)
            return _error(-1003, f"Way too much request weight used; IP banned until {until}. "
                                 "Please use WebSocket Streams for live updates to avoid bans.",
                          418, {"Retry-After": str(max(1, math.ceil(banned - mono)))})
        window = self.weights.setdefault(ip, deque())
        while window and window[0][0] <= mono - 60:
            window.popleft()
        used = sum(w for _, w in window) + self._weight_of(request)
        window.append((mono, self._weight_of(request)))
        over = used > limits.weight_per_minute
        if self.faults.rate_limit_next > 0 or over:
            if self.faults.rate_limit_next > 0:
                self.faults.rate_limit_next -= 1
            n = self.violations[ip] = self.violations.get(ip, 0) + 1
            if over and n > limits.ban_after:
                self.banned_until[ip] = mono + limits.ban_seconds
                return _error(-1003, "Way too much request weight used; IP banned until "
                                     f"{now_ms() + limits.ban_seconds * 1000}.", 418,
                              {"Retry-After": str(limits.ban_seconds)})
            retry = max(1, math.ceil(window[0][0] + 60 - mono)) if over else 1
            return _error(-1003, "Too much request weight used; current limit is "
                                 f"{limits.weight_per_minute} request weight per 1 MINUTE. "
                                 "Please use WebSocket Streams for live updates to avoid polling "
                                 "the API.", 429,
                          {"Retry-After": str(retry), "X-MBX-USED-WEIGHT-1M": str(used)})
        delay = self._latency_s()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            resp = await handler(request)
        except SimError as e:
            resp = _error(e.code, e.msg, e.status, data=e.data)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("internal error on %s", path)
            resp = _error(-1000, "An unknown error occurred while processing the request.", 500)
        resp.headers["X-MBX-USED-WEIGHT-1M"] = str(used)
        return resp

    async def _params(self, request: web.Request) -> tuple[dict[str, str], str]:
        raw_q = request.rel_url.raw_query_string
        body = await request.text() if request.method in ("POST", "PUT") else ""
        params = dict(parse_qsl(raw_q, keep_blank_values=True))
        params.update(parse_qsl(body, keep_blank_values=True))
        return params, _strip_signature(raw_q) + _strip_signature(body)

    def _api_key(self, request: web.Request) -> Account:
        key = request.headers.get("X-MBX-APIKEY")
        if not key:
            raise SimError(-2014, "API-key format invalid.", 401)
        acct = self.ex.by_key.get(key)
        if acct is None:
            raise SimError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        return acct

    async def _signed(self, request: web.Request) -> tuple[Account, dict[str, str]]:
        acct = self._api_key(request)
        params, payload = await self._params(request)
        sig = params.get("signature")
        if not sig:
            raise SimError(-1102, "Mandatory parameter 'signature' was not sent, was empty/null, "
                                  "or malformed.")
        expected = hmac.new(acct.cfg.secret.encode(), payload.encode(), hashlib.sha256)
        if not hmac.compare_digest(expected.hexdigest(), sig.lower()):
            raise SimError(-1022, "Signature for this request is not valid.")
        try:
            ts = int(params["timestamp"])
        except (KeyError, ValueError):
            raise SimError(-1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, "
                                  "or malformed.") from None
        try:
            recv = int(float(params.get("recvWindow", "5000")))
        except ValueError:
            raise SimError(-1100, "Illegal characters found in parameter 'recvWindow'.") from None
        if recv > 60000 or recv <= 0:
            raise SimError(-1131, "recvWindow must be less than 60000")
        server = now_ms()
        if ts >= server + 1000 or server - ts > recv:
            raise SimError(-1021, "Timestamp for this request is outside of the recvWindow.")
        return acct, params

    # --------------------------------------------------------------- public ----

    async def h_ping(self, request: web.Request) -> web.Response:
        return _json({})

    async def h_time(self, request: web.Request) -> web.Response:
        return _json({"serverTime": now_ms()})

    def _symbol_info(self, m: Market) -> dict[str, Any]:
        s = m.cfg
        return {
            "symbol": s.symbol, "status": "TRADING", "baseAsset": s.base,
            "baseAssetPrecision": 8, "quoteAsset": s.quote, "quotePrecision": 8,
            "quoteAssetPrecision": 8, "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8, "orderTypes": list(c.ORDER_TYPES),
            "icebergAllowed": False, "ocoAllowed": False, "otoAllowed": False,
            "quoteOrderQtyMarketAllowed": False, "allowTrailingStop": True,
            "cancelReplaceAllowed": True, "amendAllowed": False,
            "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": c.fmt(s.tick_size),
                 "maxPrice": "1000000.00000000", "tickSize": c.fmt(s.tick_size)},
                {"filterType": "LOT_SIZE", "minQty": c.fmt(s.min_qty),
                 "maxQty": c.fmt(s.max_qty), "stepSize": c.fmt(s.step_size)},
                {"filterType": "MARKET_LOT_SIZE", "minQty": c.fmt(s.min_qty),
                 "maxQty": c.fmt(s.max_qty), "stepSize": c.fmt(s.step_size)},
                {"filterType": "NOTIONAL", "minNotional": c.fmt(s.min_notional),
                 "applyMinToMarket": True, "maxNotional": "9000000.00000000",
                 "applyMaxToMarket": False, "avgPriceMins": 5},
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            ],
            "permissions": [], "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": list(c.STP_MODES),
        }

    async def h_exchange_info(self, request: web.Request) -> web.Response:
        wanted: list[str] | None = None
        if "symbol" in request.query:
            wanted = [request.query["symbol"]]
        elif "symbols" in request.query:
            try:
                wanted = list(orjson.loads(request.query["symbols"]))
            except orjson.JSONDecodeError:
                raise SimError(-1100, "Illegal characters found in parameter 'symbols'.") from None
        markets = ([self.ex.market(s) for s in wanted] if wanted
                   else list(self.ex.markets.values()))
        lim = self.cfg.limits
        return _json({
            "timezone": "UTC", "serverTime": now_ms(),
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": lim.weight_per_minute},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                 "limit": lim.orders_per_10s},
            ],
            "exchangeFilters": [],
            "symbols": [self._symbol_info(m) for m in markets],
        })

    async def h_depth(self, request: web.Request) -> web.Response:
        m = self.ex.market(request.query.get("symbol"))
        try:
            limit = min(5000, max(1, int(request.query.get("limit", "100"))))
        except ValueError:
            raise SimError(-1100, "Illegal characters found in parameter 'limit'.") from None
        bids, asks = m.book.depth(limit)
        return _json({"lastUpdateId": m.book.update_id,
                      "bids": [[c.fmt(p), c.fmt(q)] for p, q in bids],
                      "asks": [[c.fmt(p), c.fmt(q)] for p, q in asks]})

    def _ticker(self, m: Market) -> dict[str, str]:
        b, a = m.book.best(c.SIDE_BUY), m.book.best(c.SIDE_SELL)
        z = "0.00000000"
        return {"symbol": m.cfg.symbol, "bidPrice": c.fmt(b[0]) if b else z,
                "bidQty": c.fmt(b[1]) if b else z, "askPrice": c.fmt(a[0]) if a else z,
                "askQty": c.fmt(a[1]) if a else z}

    async def h_book_ticker(self, request: web.Request) -> web.Response:
        if "symbol" in request.query:
            return _json(self._ticker(self.ex.market(request.query["symbol"])))
        return _json([self._ticker(m) for m in self.ex.markets.values()])

    async def h_trades(self, request: web.Request) -> web.Response:
        m = self.ex.market(request.query.get("symbol"))
        limit = min(1000, max(1, int(request.query.get("limit", "500"))))
        return _json(list(m.trades)[-limit:])

    async def h_agg_trades(self, request: web.Request) -> web.Response:
        """Recent trades as aggregate trades (ccxt's binance ``fetch_trades``); each trade is
        its own aggregate (a taker's fills at several prices are several trades anyway)."""
        m = self.ex.market(request.query.get("symbol"))
        limit = min(1000, max(1, int(request.query.get("limit", "500"))))
        return _json([{"a": t["id"], "p": t["price"], "q": t["qty"], "f": t["id"],
                       "l": t["id"], "T": t["time"], "m": t["isBuyerMaker"], "M": True}
                      for t in list(m.trades)[-limit:]])

    # -------------------------------------------------------------- private ----

    def _count_order(self, acct: Account) -> None:
        q = self.order_counts.setdefault(acct.index, deque())
        mono = time.monotonic()
        while q and q[0] <= mono - 10:
            q.popleft()
        if len(q) >= self.cfg.limits.orders_per_10s:
            raise SimError(-1015, "Too many new orders; current limit is "
                                  f"{self.cfg.limits.orders_per_10s} orders per 10 SECOND.", 429)
        q.append(mono)

    async def h_new_order(self, request: web.Request) -> web.StreamResponse:
        acct, p = await self._signed(request)
        if "quoteOrderQty" in p:
            raise SimError(-1013, "quoteOrderQty is not supported by the simulator.")
        self._count_order(acct)
        if self.faults.reject_probability and self.rng.random() < self.faults.reject_probability:
            raise SimError(-2010, "New order rejected.")
        if self.faults.delay_orders_next > 0:  # a matching engine slower than its queries
            self.faults.delay_orders_next -= 1
            await asyncio.sleep(self.faults.delay_orders_s)
        resp = self.ex.place_order(
            acct.index, p.get("symbol", ""), p.get("side", ""), p.get("type", ""),
            p.get("quantity"), p.get("price"), p.get("timeInForce"), p.get("stopPrice"),
            p.get("newClientOrderId"), p.get("selfTradePreventionMode"),
            p.get("newOrderRespType"), p.get("trailingDelta"))
        await self._maybe_lose_answer(request)
        return _json(resp)

    async def _maybe_lose_answer(self, request: web.Request) -> None:
        """The ``lose_ack`` fault: the order request was executed; the client never learns."""
        if self.faults.lose_ack_next > 0:
            self.faults.lose_ack_next -= 1
            if self.faults.lose_ack_mode == "timeout":
                await asyncio.sleep(self.faults.lose_ack_s)
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError()

    async def h_cancel_replace(self, request: web.Request) -> web.Response:
        acct, p = await self._signed(request)
        self._count_order(acct)
        terms = self.ex.order_terms(
            acct.index, p.get("symbol", ""), p.get("side", ""), p.get("type", ""),
            p.get("quantity"), p.get("price"), p.get("timeInForce"), p.get("stopPrice"),
            p.get("selfTradePreventionMode"), p.get("newOrderRespType"), p.get("trailingDelta"))
        out = self.ex.cancel_replace(
            acct.index, p.get("symbol", ""), p.get("cancelReplaceMode"), p.get("cancelOrderId"),
            p.get("cancelOrigClientOrderId"), terms, p.get("newClientOrderId"))
        await self._maybe_lose_answer(request)
        return _json(out)

    async def h_test_order(self, request: web.Request) -> web.Response:
        await self._signed(request)
        return _json({})

    async def h_get_order(self, request: web.Request) -> web.Response:
        acct, p = await self._signed(request)
        rec = self.ex.find_order(acct.index, p.get("symbol", ""), p.get("orderId"),
                                 p.get("origClientOrderId"))
        return _json(rec.to_query())

    async def h_cancel_order(self, request: web.Request) -> web.Response:
        acct, p = await self._signed(request)
        return _json(self.ex.cancel_order(acct.index, p.get("symbol", ""), p.get("orderId"),
                                          p.get("origClientOrderId")))

    async def h_cancel_all(self, request: web.Request) -> web.Response:
        acct, p = await self._signed(request)
        recs = self.ex.open_orders(acct.index, p.get("symbol") or None)
        if not p.get("symbol"):
            self.ex.market(None)
        out = [self.ex.cancel_order(acct.index, r.symbol, str(r.order_id), None) for r in recs]
        return _json(out)

    async def h_open_orders(self, request: web.Request) -> web.Response:
        acct, p = await self._signed(request)
        return _json([r.to_query() for r in self.ex.open_orders(acct.index, p.get("symbol"))])

    async def h_all_orders(self, request: web.Request) -> web.Response:
        acct, p = await self._signed(request)
        sym = self.ex.market(p.get("symbol")).cfg.symbol
        from_id = int(p.get("orderId", "0"))
        limit = min(1000, max(1, int(p.get("limit", "500"))))
        recs = [r for r in acct.records.values() if r.symbol == sym and r.order_id >= from_id]
        recs.sort(key=lambda r: r.order_id)
        recs = recs[:limit] if from_id else recs[-limit:]
        return _json([r.to_query() for r in recs])

    async def h_account(self, request: web.Request) -> web.Response:
        acct, p = await self._signed(request)
        bals = self.ex.balances(acct.index)
        if p.get("omitZeroBalances") == "true":
            bals = [b for b in bals if b["free"] != "0.00000000" or b["locked"] != "0.00000000"]
        first = next(iter(self.ex.markets.values())).cfg
        return _json({
            "makerCommission": first.maker_bps, "takerCommission": first.taker_bps,
            "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {"maker": c.fmt(first.maker_bps * 10_000),
                                "taker": c.fmt(first.taker_bps * 10_000),
                                "buyer": "0.00000000", "seller": "0.00000000"},
            "canTrade": True, "canWithdraw": False, "canDeposit": False, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False,
            "updateTime": acct.update_time, "accountType": "SPOT", "balances": bals,
            "permissions": ["SPOT"], "uid": 1000 + acct.index,
        })

    async def h_my_trades(self, request: web.Request) -> web.Response:
        acct, p = await self._signed(request)
        sym = self.ex.market(p.get("symbol")).cfg.symbol
        trades = [t for t in acct.trades if t["symbol"] == sym]
        if "orderId" in p:
            trades = [t for t in trades if t["orderId"] == int(p["orderId"])]
        if "fromId" in p:
            trades = [t for t in trades if t["id"] >= int(p["fromId"])]
        if "startTime" in p:
            trades = [t for t in trades if t["time"] >= int(p["startTime"])]
        if "endTime" in p:
            trades = [t for t in trades if t["time"] <= int(p["endTime"])]
        limit = min(1000, max(1, int(p.get("limit", "500"))))
        return _json(trades[:limit] if "fromId" in p else trades[-limit:])

    async def h_listen_key(self, request: web.Request) -> web.Response:
        acct = self._api_key(request)
        params, _ = await self._params(request)
        mono = time.monotonic()
        for k in [k for k, (_, exp) in self.listen_keys.items() if exp < mono]:
            del self.listen_keys[k]
        if request.method == "POST":
            # Binance returns the same key while one is valid for the account
            for k, (a, _) in self.listen_keys.items():
                if a == acct.index:
                    self.listen_keys[k] = (a, mono + LISTEN_KEY_TTL_S)
                    return _json({"listenKey": k})
            key = secrets.token_urlsafe(45)[:60]
            self.listen_keys[key] = (acct.index, mono + LISTEN_KEY_TTL_S)
            return _json({"listenKey": key})
        key = params.get("listenKey", "")
        owner = self.listen_keys.get(key)
        if owner is None or owner[0] != acct.index:
            raise SimError(-1125, "This listenKey does not exist.")
        if request.method == "PUT":
            self.listen_keys[key] = (acct.index, mono + LISTEN_KEY_TTL_S)
        else:
            del self.listen_keys[key]
            for conn in list(self.subs.get(f"__user{acct.index}", set())):
                if key in conn.names.values():
                    asyncio.ensure_future(conn.ws.close(code=1000, message=b"listenKey expired"))
        return _json({})

    # ---------------------------------------------------------------- admin ----

    async def h_admin_state(self, request: web.Request) -> web.Response:
        f = self.faults
        return _json({
            "symbols": {s: {"update_id": m.book.update_id, "last_price": c.fmt(m.book.last_price),
                            "open_orders": m.book.n_orders} for s, m in self.ex.markets.items()},
            "connections": len(self.conns), "stats": self.stats,
            "faults": {k: getattr(f, k) for k in Faults.__slots__},  # type: ignore[attr-defined]
        })

    async def h_admin_fault(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            done = self.fault(**body)
        except (ValueError, TypeError) as e:
            return _json({"error": str(e)}, 400)
        return _json({"applied": done})

    async def h_admin_mid(self, request: web.Request) -> web.Response:
        """Move a symbol's mid (``symbol``, ``price`` as a decimal string) and step once."""
        symbol = request.query.get("symbol", "").upper()
        try:
            self.market.set_mid(symbol, c.to_fixed(request.query.get("price", "")))
        except (ValueError, ArithmeticError) as e:
            return _json({"error": str(e)}, 400)
        mid = self.market.paths[symbol].mid
        self.market.step()
        return _json({"symbol": symbol, "mid": c.fmt(mid)})

    async def h_admin_step(self, request: web.Request) -> web.Response:
        n = int(request.query.get("n", "1"))
        for _ in range(max(0, min(n, 10_000))):
            self.market.step()
        return _json({"steps": n})
