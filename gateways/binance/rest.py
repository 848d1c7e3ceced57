"""Binance spot REST client: signing, weights, clock offset, typed errors (cold code).

Signed endpoints take ``timestamp`` (exchange clock, from our measured offset) and
``recvWindow``; the signature is HMAC-SHA256 of the query string with the API secret.
The API key travels in ``X-MBX-APIKEY``; neither the key nor the secret is ever logged or
put in an exception.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson

from ..ratelimit import Banned, RateLimiter

__all__ = ["BinanceAPIError", "BinanceRest", "Banned", "OutcomeUnknown", "RateLimited"]

log = logging.getLogger("gateways.binance.rest")

# Request weights (Binance spot docs); depth weight depends on the limit.
WEIGHTS = {
    ("GET", "/api/v3/time"): 1,
    ("GET", "/api/v3/exchangeInfo"): 20,
    ("POST", "/api/v3/order"): 1,
    ("GET", "/api/v3/order"): 4,
    ("DELETE", "/api/v3/order"): 1,
    ("POST", "/api/v3/order/cancelReplace"): 1,
    ("GET", "/api/v3/openOrders"): 6,
    ("GET", "/api/v3/myTrades"): 20,
    ("POST", "/api/v3/userDataStream"): 2,
    ("PUT", "/api/v3/userDataStream"): 2,
}


def depth_weight(limit: int) -> int:
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


class BinanceAPIError(Exception):
    """The exchange answered with an error body ``{"code": ..., "msg": ...}``."""

    def __init__(self, http_status: int, code: int, msg: str,
                 data: dict[str, Any] | None = None) -> None:
        super().__init__(f"HTTP {http_status} code {code}: {msg}")
        self.http_status = http_status
        self.code = code
        self.msg = msg
        self.data = data or {}
        """cancelReplace errors (-2021 / -2022): the outcome of each half."""


class RateLimited(Exception):
    """HTTP 429: the request was not executed; retry after the limiter's block."""


class OutcomeUnknown(Exception):
    """Timeout, dropped connection or 5xx: the request may or may not have been executed."""


class BinanceRest:
    """Async REST client for Binance spot (or the local simulator)."""

    def __init__(self, base_url: str, api_key: str = "", api_secret: str = "",
                 limiter: RateLimiter | None = None, timeout_s: float = 5.0,
                 recv_window_ms: int = 5000) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self._secret = api_secret.encode()
        self.limiter = limiter or RateLimiter()
        self.timeout_s = timeout_s
        self.recv_window_ms = recv_window_ms
        self.clock_offset_ms = 0  # exchange time - local time
        self.rtt_ms = 0.0
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:  # keep secrets out of reprs
        return f"BinanceRest({self.base_url!r})"

    async def _sess(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=32, keepalive_timeout=30))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def now_ms(self) -> int:
        """Exchange time estimate in ms."""
        return int(time.time() * 1000) + self.clock_offset_ms

    async def sync_clock(self) -> int:
        """Measure the offset to the exchange clock from /api/v3/time (midpoint of the RTT)."""
        t0 = time.time()
        data = await self.request("GET", "/api/v3/time")
        t1 = time.time()
        self.rtt_ms = (t1 - t0) * 1000
        self.clock_offset_ms = int(data["serverTime"] - (t0 + t1) * 500)
        return self.clock_offset_ms

    async def request(self, method: str, path: str, params: dict[str, Any] | None = None,
                      signed: bool = False, weight: int | None = None,
                      api_key: bool = False) -> Any:
        """Send one request; return the decoded JSON body.

        Raises BinanceAPIError (exchange refused), RateLimited (429), Banned (418 or during
        a ban) or OutcomeUnknown (timeout, connection error, 5xx).
        """
        w = weight if weight is not None else WEIGHTS.get((method, path), 1)
        await self.limiter.acquire(w)
        q = dict(params or {})
        headers = {}
        if signed:
            q["recvWindow"] = self.recv_window_ms
            q["timestamp"] = self.now_ms()
        query = urlencode(q)
        if signed:
            sig = hmac.new(self._secret, query.encode(), hashlib.sha256).hexdigest()
            query = f"{query}&signature={sig}"
        if signed or api_key:
            headers["X-MBX-APIKEY"] = self._key
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        sess = await self._sess()
        try:
            async with asyncio.timeout(self.timeout_s):
                async with sess.request(method, url, headers=headers) as resp:
                    body = await resp.read()
                    status = resp.status
                    self.limiter.update(status, resp.headers)
        except TimeoutError as exc:
            raise OutcomeUnknown(f"{method} {path}: timeout after {self.timeout_s}s") from exc
        except aiohttp.ClientError as exc:
            raise OutcomeUnknown(f"{method} {path}: {type(exc).__name__}") from exc
        if status == 429:
            raise RateLimited(f"{method} {path}: HTTP 429")
        if status == 418:
            raise Banned(self.limiter.banned_until)
        if status >= 500:
            raise OutcomeUnknown(f"{method} {path}: HTTP {status}")
        try:
            data = orjson.loads(body) if body else None
        except orjson.JSONDecodeError as exc:
            if status >= 400:
                raise BinanceAPIError(status, 0, body[:200].decode(errors="replace")) from exc
            raise OutcomeUnknown(f"{method} {path}: unparsable body") from exc
        if status >= 400:
            code = data.get("code", 0) if isinstance(data, dict) else 0
            msg = data.get("msg", "") if isinstance(data, dict) else str(data)
            extra = data.get("data") if isinstance(data, dict) else None
            raise BinanceAPIError(status, int(code), str(msg),
                                  extra if isinstance(extra, dict) else None)
        return data

    async def get_raw(self, path: str, params: dict[str, Any], weight: int) -> bytes:
        """GET returning the raw body (depth snapshots go straight to the compiled parser)."""
        await self.limiter.acquire(weight)
        sess = await self._sess()
        url = f"{self.base_url}{path}?{urlencode(params)}"
        try:
            async with asyncio.timeout(self.timeout_s):
                async with sess.get(url) as resp:
                    body = await resp.read()
                    self.limiter.update(resp.status, resp.headers)
                    status = resp.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise OutcomeUnknown(f"GET {path}: {type(exc).__name__}") from exc
        if status == 429:
            raise RateLimited(f"GET {path}: HTTP 429")
        if status == 418:
            raise Banned(self.limiter.banned_until)
        if status != 200:
            raise OutcomeUnknown(f"GET {path}: HTTP {status}")
        return body

    async def depth_snapshot(self, symbol: str, limit: int) -> bytes:
        return await self.get_raw("/api/v3/depth", {"symbol": symbol, "limit": limit},
                                  depth_weight(limit))
