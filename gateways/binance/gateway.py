"""Binance spot gateway: public streams, user data stream, signed REST orders.

Market data: one combined stream (``<sym>@depth@100ms``, ``<sym>@trade``,
``<sym>@bookTicker`` per instrument) feeding the compiled :class:`~gateways.book.L2Book`
with Binance's snapshot + diff sequence rules; top of book and last trade go out as
GW_MARKET_DATA. Accounts: one :class:`VenueSession` per engine account (its own API key,
REST client and weight budget, user data stream, trade de-duplication); an order is sent on
the session of its record's ``account`` and refused when that account has no session here,
never sent on another account's keys. Orders: REST with the engine's order id in
``newClientOrderId``. A request whose outcome is unknown (timeout, 5xx, dropped connection)
leaves the order UNKNOWN; it is queried by ``origClientOrderId`` until resolved and is never
re-sent blind. Fills come from the user data stream (``executionReport``), deduplicated by
trade id; after every user stream (re)connect open orders and recent trades are backfilled
over REST before the gateway reports HEALTHY. Amends are one ``order/cancelReplace``;
cancels go to the venue by client order id also for orders this process does not hold
(placed before a restart; on the session of the cancel's account), and cancels and status
queries that meet a rate limit are retried until the venue answers. Every venue call for an
order goes through the session of its account.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from oms_core.backoff import Backoff

from ..book import parse_fixed
from ..config import GatewayConfig
from ..engine_link import EngineLink, ExecType, GatewayState, asset_map
from ..ratelimit import RateLimiter
from ..ws import WsConnection
from .marketdata import BookState, MarketData
from .orders import OrderRouting
from .reconcile import Reconciliation
from .rest import BinanceRest
from .state import NO_VENUE_ACCOUNT, BoundedSet, OrderState, VenueSession, terms_of, venue_terms
from .userstream import UserStream

__all__ = ["NO_VENUE_ACCOUNT", "BinanceGateway", "BoundedSet", "VenueSession", "venue_terms"]

log = logging.getLogger("gateways.binance")

FEE_DECIMALS = 8  # commissions are reported raw at 8 decimals of the commission asset


class BinanceGateway(MarketData, UserStream, OrderRouting, Reconciliation):
    """Binance spot for the engine accounts of ``cfg.venue_accounts()`` (one session each);
    run with :meth:`run` inside a uvloop event loop. Its parts by job: market data
    (:mod:`.marketdata`), user data streams and REST catch-up (:mod:`.userstream`), orders
    (:mod:`.orders`), reconciliation (:mod:`.reconcile`); here the state they share, the
    lifecycle and the helpers every part reports through."""

    def __init__(self, cfg: GatewayConfig, link: EngineLink,
                 assets: dict[str, tuple[int, int]] | None = None) -> None:
        self.cfg = cfg
        self.link = link
        # venue asset name -> (engine asset id, raw decimals): balances and fee assets in
        # reconciliation answers (assets not listed are not reported)
        self.assets = asset_map(cfg, assets)
        self.n_reconciles = 0
        self.sessions = {a.account_id: VenueSession(self, a) for a in cfg.venue_accounts()}
        # public market data (depth snapshots) on a REST client without keys
        self.md_rest = BinanceRest(cfg.rest_url, limiter=RateLimiter(cfg.weight_limit_1m),
                                   timeout_s=cfg.request_timeout_s)
        self.md: dict[str, BookState] = {
            i.symbol.upper(): BookState(i, cfg.book_capacity, link) for i in cfg.instruments}
        self.by_id = {i.id: i for i in cfg.instruments}
        self._routes: dict[bytes, tuple[Any, BookState]] = {}
        for sym, st in self.md.items():
            s = sym.lower().encode()
            self._routes[s + b"@depth@100ms"] = (self._on_depth, st)
            self._routes[s + b"@trade"] = (self._on_trade, st)
            self._routes[s + b"@bookTicker"] = (self._on_ticker, st)
        self.orders: dict[str, OrderState] = {}
        self.final_cids = BoundedSet(50_000)
        self.n_malformed = 0
        self.n_md = 0
        self.md_conn = WsConnection(
            "md", self._md_url(), self.on_md_message, on_connected=self._md_connected,
            on_disconnected=self._md_disconnected,
            backoff=Backoff(cfg.reconnect_base_s, cfg.reconnect_max_s),
            ping_idle_s=cfg.ping_idle_s)
        self._tasks: list[asyncio.Task[Any]] = []
        self._state: GatewayState | None = None

    # the first account's session, for single-account setups
    @property
    def first(self) -> VenueSession:
        return next(iter(self.sessions.values()))

    @property
    def rest(self) -> BinanceRest:
        return self.first.rest

    @property
    def user_conn(self) -> WsConnection:
        return self.first.user_conn

    @property
    def user_ready(self) -> asyncio.Event:
        return self.first.user_ready

    @property
    def _listen_key(self) -> str:
        return self.first.listen_key

    # ---- lifecycle ---------------------------------------------------------

    async def run(self) -> None:
        """Run until cancelled."""
        await self.start()
        try:
            await asyncio.gather(*self._tasks)
        finally:
            await self.stop()

    async def start(self) -> None:
        await self._status(GatewayState.RECONNECTING, 0)
        await self._sync_clocks()
        loop = asyncio.get_running_loop()
        self._tasks = [self.md_conn.start(),
                       loop.create_task(self._stale_watch(), name="stale-watch"),
                       loop.create_task(self._md_refresh(), name="md-refresh"),
                       loop.create_task(self._order_loop(), name="orders"),
                       loop.create_task(self._unknown_loop(), name="unknown-orders"),
                       loop.create_task(self._clock_loop(), name="clock")]
        if self.cfg.user_stream:
            for sess in self.sessions.values():
                self._tasks.append(sess.user_conn.start())
            self._tasks.append(loop.create_task(self._keepalive_loop(), name="listenkey"))

    async def stop(self) -> None:
        await self.md_conn.stop()
        for sess in self.sessions.values():
            await sess.user_conn.stop()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        for sess in self.sessions.values():
            await sess.rest.close()
        await self.md_rest.close()

    async def _status(self, state: GatewayState, detail: int) -> None:
        log.info("status %s detail=%d", state.name, detail)
        await self.link.send_status(state, detail)

    def _status_soon(self, state: GatewayState, detail: int) -> None:
        asyncio.get_running_loop().create_task(self._status(state, detail))

    async def _sync_clocks(self) -> None:
        for sess in self.sessions.values():
            try:
                await sess.rest.sync_clock()
            except Exception as exc:
                log.warning("clock sync failed (%s): %s", sess.name, type(exc).__name__)

    async def _clock_loop(self) -> None:
        while True:
            await asyncio.sleep(60)
            await self._sync_clocks()

    # ---- shared by the parts ------------------------------------------------

    def _malformed(self, payload: bytes, why: str) -> None:
        self.n_malformed += 1
        if self.n_malformed <= 20 or self.n_malformed % 1000 == 0:
            log.warning("malformed exchange message #%d (%s): %r", self.n_malformed, why,
                        payload[:120])

    def _learn(self, st: OrderState, o: dict[str, Any]) -> None:
        """Fill in what an order followed again after a restart lacks, from a venue order."""
        inst = st.inst
        if not st.exch_order_id:
            st.exch_order_id = int(o.get("orderId", 0))
        if not st.quantity:
            st.quantity = st.base_qty + parse_fixed(o.get("origQty", "0"), inst.qty_decimals)
        if not st.venue and o.get("type"):
            st.side = o.get("side", "")
            st.venue = terms_of(inst, o["type"], o.get("price", "0"), o.get("stopPrice", "0"),
                                o.get("timeInForce", "GTC"))

    def _fee(self, asset: str | None, amount: str | None) -> dict[str, int]:
        """A commission as ``fee`` (raw at the asset's decimals; 8 for an asset not in
        ``assets``) and ``fee_asset`` (the engine's asset id; 0 when not listed)."""
        fee_asset, dec = self.assets.get(asset or "", (0, FEE_DECIMALS))
        return {"fee": parse_fixed(amount or "0", dec), "fee_asset": fee_asset}

    def _final(self, st: OrderState) -> None:
        if self.orders.pop(st.cid, None) is not None:
            self.final_cids.add(st.cid)

    async def _exec(self, st: OrderState, exec_type: ExecType, **fields: Any) -> None:
        await self.link.send_exec(
            order_id=st.order_id, exch_order_id=st.exch_order_id,
            account=st.session.account_id, instrument=st.inst.id, exec_type=int(exec_type),
            cum_qty=st.cum_qty, leaves_qty=max(0, st.quantity - st.cum_qty), **fields)
