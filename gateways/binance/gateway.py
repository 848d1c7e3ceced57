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
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson

from oms_core.backoff import Backoff
from oms_core.enums import Liquidity, OrderFlag, OrderStatus, OrderType, Side, TimeInForce

from ..book import BookResult, L2Book, format_fixed, parse_fixed
from ..config import GatewayConfig, Instrument, VenueAccount
from ..engine_link import (
    EngineLink,
    ExecType,
    GatewayState,
    MdFlag,
    ReconcileAnswer,
    asset_map,
    order_id_of,
    reconcile_each_account,
    serve_orders,
)
from ..ratelimit import Banned, RateLimiter
from ..ws import WsConnection
from .rest import BinanceAPIError, BinanceRest, OutcomeUnknown, RateLimited

__all__ = ["NO_VENUE_ACCOUNT", "BinanceGateway", "BoundedSet", "VenueSession"]

log = logging.getLogger("gateways.binance")

FEE_DECIMALS = 8  # commissions are reported raw at 8 decimals of the commission asset
# GW_STATUS detail codes
DETAIL_MARKET_DATA = 1
DETAIL_USER_STREAM = 2
DETAIL_REST = 3
DETAIL_BOOK = 1000  # + instrument id
NO_VENUE_ACCOUNT = -2015
"""Reject code of an order whose account has no venue account at this gateway (Binance's
"Invalid API-key, IP, or permissions for action.")."""

_STATUS_MAP = {
    "NEW": OrderStatus.NEW, "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED, "CANCELED": OrderStatus.CANCELED,
    "PENDING_CANCEL": OrderStatus.PENDING_CANCEL, "REJECTED": OrderStatus.REJECTED,
    "EXPIRED": OrderStatus.EXPIRED, "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
}
_TIF = {TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.FOK: "FOK"}
_OPEN = (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED, OrderStatus.PENDING_CANCEL)


def venue_terms(rec: Any, inst: Instrument, ref_price: int = 0) -> dict[str, str]:
    """Binance's ``type``, ``price``, ``stopPrice``, ``trailingDelta`` and ``timeInForce``
    of one GW_NEW_ORDER.

    The engine sends held stops that fired as MARKET / LIMIT; a stop type arriving here is a
    native stop for the venue to hold. A native TRAILING_STOP (its trail distance in
    ``trigger_price``) is a STOP_LOSS with ``trailingDelta``: the distance in BIPS of
    ``ref_price`` (the last price), within Binance's 10..2000. Post-only is LIMIT_MAKER; GTD
    and DAY rest as GTC (the engine cancels them at expiry). Raise ValueError for an order
    Binance cannot take.
    """
    ot = OrderType(rec.order_type)
    if ot == OrderType.MARKET:
        return {"type": "MARKET"}
    tif = _TIF.get(TimeInForce(rec.tif), "GTC")
    price = format_fixed(rec.price, inst.price_decimals)
    if ot == OrderType.LIMIT:
        if rec.order_flags & OrderFlag.POST_ONLY:
            return {"type": "LIMIT_MAKER", "price": price}
        return {"type": "LIMIT", "timeInForce": tif, "price": price}
    stop = format_fixed(rec.trigger_price, inst.price_decimals)
    if ot == OrderType.STOP_LIMIT:
        return {"type": "STOP_LOSS_LIMIT", "timeInForce": tif, "price": price, "stopPrice": stop}
    if ot == OrderType.STOP_MARKET:
        return {"type": "STOP_LOSS", "stopPrice": stop}
    if ot == OrderType.TAKE_PROFIT:
        return {"type": "TAKE_PROFIT", "stopPrice": stop}
    if ot == OrderType.TRAILING_STOP:
        if ref_price <= 0 or rec.trigger_price <= 0:
            raise ValueError("trailing stop without a trail distance or a last price")
        bips = min(2000, max(10, (rec.trigger_price * 10_000 + ref_price // 2) // ref_price))
        return {"type": "STOP_LOSS", "trailingDelta": str(bips)}
    raise ValueError(f"order type {ot.name} is not sent to Binance")


def _terms_of(inst: Instrument, otype: str, price: str, stop: str, tif: str) -> dict[str, str]:
    """:func:`venue_terms` of an order the venue reports (one followed again after a restart)."""
    terms = {"type": otype}
    if otype not in ("MARKET", "STOP_LOSS", "TAKE_PROFIT"):
        terms["price"] = format_fixed(parse_fixed(price, inst.price_decimals),
                                      inst.price_decimals)
    if otype not in ("MARKET", "LIMIT", "LIMIT_MAKER"):
        terms["stopPrice"] = format_fixed(parse_fixed(stop, inst.price_decimals),
                                          inst.price_decimals)
    if otype in ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"):
        terms["timeInForce"] = tif
    return terms


class BoundedSet:
    """A set that forgets its oldest members beyond ``cap`` (no unbounded growth)."""

    def __init__(self, cap: int = 100_000) -> None:
        self._set: set[Any] = set()
        self._order: deque[Any] = deque()
        self.cap = cap

    def add(self, item: Any) -> bool:
        """Add; return False if it was already present."""
        if item in self._set:
            return False
        self._set.add(item)
        self._order.append(item)
        if len(self._order) > self.cap:
            self._set.discard(self._order.popleft())
        return True

    def __contains__(self, item: Any) -> bool:
        return item in self._set

    def __len__(self) -> int:
        return len(self._set)


class VenueSession:
    """One venue account: its keys, REST client (own weight budget), user data stream and
    the trades already reported on it (venue trade ids repeat across accounts)."""

    def __init__(self, gw: BinanceGateway, acct: VenueAccount) -> None:
        cfg = gw.cfg
        self.account_id = acct.account_id
        self.name = acct.name or str(acct.account_id)
        key, secret = acct.credentials() if cfg.user_stream else ("", "")
        self.rest = BinanceRest(cfg.rest_url, key, secret, RateLimiter(cfg.weight_limit_1m),
                                cfg.request_timeout_s, cfg.recv_window_ms)
        self.seen_trades = BoundedSet(200_000)
        self.last_trade_id: dict[str, int] = {}
        self.foreign_ids = BoundedSet(50_000)  # venue order ids on this account not ours
        self.user_ready = asyncio.Event()
        self.listen_key = ""
        self.user_conn = WsConnection(
            f"user-{self.name}", lambda: gw._user_url(self),
            lambda payload: gw.on_user_message(payload, self),
            on_connected=lambda conn: gw._user_connected(self),
            on_disconnected=lambda conn: gw._user_disconnected(self),
            backoff=Backoff(cfg.reconnect_base_s, cfg.reconnect_max_s),
            ping_idle_s=cfg.ping_idle_s)

    def __repr__(self) -> str:  # no keys in reprs
        return f"VenueSession(account={self.account_id}, name={self.name!r})"


@dataclass
class OrderState:
    """What the gateway knows of one live order (removed when final)."""

    order_id: int
    cid: str
    inst: Instrument
    quantity: int
    session: VenueSession
    exch_order_id: int = 0
    acked: bool = False
    cum_qty: int = 0
    unknown_since_ms: int = 0  # exchange time the unknown request was stamped with
    not_found: int = 0
    side: str = ""
    venue: dict[str, str] = field(default_factory=dict)  # type, price, stopPrice, timeInForce
    base_qty: int = 0  # filled by the venue orders this one replaced
    retired: set[int] = field(default_factory=set)  # venue order ids replaced by a newer one
    query_wanted: bool = False  # a status query failed (rate limit, network): ask again
    cancel_wanted: bool = False  # a cancel was not executed yet (rate limit): send again


class _MdState:
    __slots__ = ("inst", "book", "buffer", "stale", "resyncing", "slot", "pub")

    def __init__(self, inst: Instrument, capacity: int, link: EngineLink) -> None:
        self.inst = inst
        self.book = L2Book(inst.symbol, inst.price_decimals, inst.qty_decimals,
                           capacity=capacity)
        self.buffer: deque[bytes] = deque(maxlen=10_000)  # diffs held while unsynced
        self.stale = True
        self.resyncing = False
        # the last published top of book and last trade live in the compiled publisher
        self.pub = link.md
        self.slot = link.md_slot(inst.id)

    @property
    def top(self) -> tuple[int, int, int, int]:
        """Last published ``(bid, bid_qty, ask, ask_qty)``."""
        return self.pub.top(self.slot)[:4]


class BinanceGateway:
    """Binance spot for the engine accounts of ``cfg.venue_accounts()`` (one session each);
    run with :meth:`run` inside a uvloop event loop."""

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
        self.md: dict[str, _MdState] = {
            i.symbol.upper(): _MdState(i, cfg.book_capacity, link) for i in cfg.instruments}
        self.by_id = {i.id: i for i in cfg.instruments}
        self._routes: dict[bytes, tuple[Any, _MdState]] = {}
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

    # ---- market data -------------------------------------------------------

    def _md_url(self) -> str:
        streams = []
        for sym in self.md:
            s = sym.lower()
            streams += [f"{s}@depth@100ms", f"{s}@trade", f"{s}@bookTicker"]
        return f"{self.cfg.ws_url.rstrip('/')}/stream?streams={'/'.join(streams)}"

    async def _md_connected(self, conn: WsConnection) -> None:
        # diffs start flowing now and are buffered until each snapshot arrives
        for st in self.md.values():
            st.book.invalidate()
            st.buffer.clear()
            self._start_resync(st)

    def _md_disconnected(self, conn: WsConnection) -> None:
        for st in self.md.values():
            st.book.invalidate()
            self._mark_stale(st)
        self._status_soon(GatewayState.RECONNECTING, DETAIL_MARKET_DATA)

    def _start_resync(self, st: _MdState) -> None:
        if not st.resyncing:
            st.resyncing = True
            asyncio.get_running_loop().create_task(self._resync(st))

    async def _resync(self, st: _MdState) -> None:
        """Fetch a snapshot, apply it, replay buffered diffs (Binance's documented procedure)."""
        backoff = Backoff(0.2, 5.0)
        try:
            while self.md_conn.connected.is_set() or self.md_conn.transport is not None:
                try:
                    snap = await self.md_rest.depth_snapshot(st.inst.symbol,
                                                             self.cfg.snapshot_limit)
                except (OutcomeUnknown, RateLimited, Banned) as exc:
                    log.warning("%s: snapshot failed: %s", st.inst.symbol, exc)
                    await asyncio.sleep(backoff.next_delay())
                    continue
                book = st.book
                if book.apply_snapshot(snap) != BookResult.BOOK_OK:
                    self.n_malformed += 1
                    log.warning("%s: malformed snapshot (%d bytes)", st.inst.symbol, len(snap))
                    await asyncio.sleep(backoff.next_delay())
                    continue
                ok = True
                while st.buffer:
                    rc = book.apply_depth_update(st.buffer.popleft())
                    if rc == BookResult.BOOK_GAP:
                        # snapshot older than the first buffered diff: fetch again
                        ok = False
                        break
                if ok and book.synced:
                    log.info("%s: book synced at %d", st.inst.symbol, book.last_update_id)
                    st.pub.top_from_book(st.slot, book)
                    if st.stale:
                        self._unstale(st)
                    self._publish(st, time.time_ns())
                    return
                await asyncio.sleep(backoff.next_delay())
        finally:
            st.resyncing = False

    def on_md_message(self, payload: bytes) -> None:
        """Route one combined-stream message (hot path)."""
        self.n_md += 1
        if payload.startswith(b'{"stream":"'):
            # exact stream name -> (handler, state): one slice and one dict lookup
            route = self._routes.get(payload[11:payload.find(b'"', 11)])
            if route is not None:
                route[0](route[1], payload)
                return
            at = payload.find(b"@", 11)
            if at > 11:
                st = self.md.get(payload[11:at].decode().upper())
                if st is not None:
                    kind = payload[at + 1]
                    if kind == 100:  # d: depth
                        self._on_depth(st, payload)
                        return
                    if kind == 116:  # t: trade
                        self._on_trade(st, payload)
                        return
                    if kind == 98:  # b: bookTicker
                        self._on_ticker(st, payload)
                        return
        self._on_other(payload)

    def _on_depth(self, st: _MdState, payload: bytes) -> None:
        book = st.book
        rc = book.apply_depth_update(payload)
        if rc == 0:
            if st.stale:
                self._unstale(st)
            # compare with the last published top and publish if it moved, all in C
            st.pub.publish_book(st.slot, book, time.time_ns(), 0)
        elif rc == BookResult.BOOK_NOT_SYNCED:
            st.buffer.append(payload)
            self._start_resync(st)
        elif rc == BookResult.BOOK_GAP:
            log.warning("%s: sequence gap after %d; resync", st.inst.symbol, book.last_update_id)
            st.buffer.clear()
            st.buffer.append(payload)
            self._mark_stale(st)
            self._start_resync(st)
        elif rc != BookResult.BOOK_STALE_DIFF:
            self._malformed(payload, f"depth rc={rc}")

    def _on_trade(self, st: _MdState, payload: bytes) -> None:
        try:
            d = orjson.loads(payload)["data"]
            st.pub.set_last(st.slot, parse_fixed(d["p"], st.inst.price_decimals),
                            parse_fixed(d["q"], st.inst.qty_decimals))
            self._publish(st, time.time_ns(), d.get("T", 0) * 1_000_000, MdFlag.TRADE)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            self._malformed(payload, f"trade {type(exc).__name__}")

    def _on_ticker(self, st: _MdState, payload: bytes) -> None:
        # bookTicker shares the depth updateId sequence: use it only when newer than the book
        try:
            d = orjson.loads(payload)["data"]
            if not st.book.synced or d["u"] <= st.book.last_update_id:
                return
            inst = st.inst
            top = (parse_fixed(d["b"], inst.price_decimals), parse_fixed(d["B"], inst.qty_decimals),
                   parse_fixed(d["a"], inst.price_decimals), parse_fixed(d["A"], inst.qty_decimals))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            self._malformed(payload, f"bookTicker {type(exc).__name__}")
            return
        if st.pub.set_top(st.slot, *top):
            self._publish(st, time.time_ns())

    def _on_other(self, payload: bytes) -> None:
        try:
            d = orjson.loads(payload)
        except orjson.JSONDecodeError:
            self._malformed(payload, "not JSON")
            return
        if isinstance(d, dict) and ("result" in d or "id" in d):
            return  # subscription answers
        self._malformed(payload, "unrouted")

    def _malformed(self, payload: bytes, why: str) -> None:
        self.n_malformed += 1
        if self.n_malformed <= 20 or self.n_malformed % 1000 == 0:
            log.warning("malformed exchange message #%d (%s): %r", self.n_malformed, why,
                        payload[:120])

    def _publish(self, st: _MdState, now_ns: int, exch_ns: int = 0, flags: int = 0) -> None:
        """``flags``: MdFlag.TRADE when the record reports a new trade (the engine's bars)."""
        st.pub.publish(st.slot, exch_ns or st.book.event_time_ms * 1_000_000, now_ns,
                       flags | (MdFlag.STALE if st.stale else 0))

    def _mark_stale(self, st: _MdState) -> None:
        if not st.stale:
            st.stale = True
            self._publish(st, time.time_ns())
            self._status_soon(GatewayState.STALE, DETAIL_BOOK + st.inst.id)

    def _unstale(self, st: _MdState) -> None:
        st.stale = False
        self._status_soon(GatewayState.HEALTHY, DETAIL_BOOK + st.inst.id)

    async def _stale_watch(self) -> None:
        limit_ns = int(self.cfg.stale_after_s * 1e9)
        while True:
            await asyncio.sleep(self.cfg.stale_after_s / 4)
            now = time.monotonic_ns()
            for st in self.md.values():
                if not st.stale and (not st.book.synced or st.book.age_ns(now) > limit_ns):
                    log.warning("%s: book stale (no update for %.1fs)", st.inst.symbol,
                                st.book.age_ns(now) / 1e9)
                    self._mark_stale(st)
            # a silent socket (no message at all) for 3 limits: drop it and reconnect
            c = self.md_conn
            if c.transport is not None and now - c.last_recv_ns > 3 * limit_ns:
                log.warning("market data socket silent; reconnecting")
                c.drop()

    async def _md_refresh(self) -> None:
        """Republish the current top of every synced book (stale flag included)."""
        while True:
            await asyncio.sleep(self.cfg.md_refresh_s)
            now = time.time_ns()
            for st in self.md.values():
                if st.book.synced:
                    self._publish(st, now)

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

    # ---- user data stream --------------------------------------------------

    async def _user_url(self, sess: VenueSession) -> str:
        data = await sess.rest.request("POST", "/api/v3/userDataStream", api_key=True)
        sess.listen_key = data["listenKey"]
        return f"{self.cfg.ws_url.rstrip('/')}/ws/{sess.listen_key}"

    async def _keepalive_loop(self) -> None:
        while True:
            await asyncio.sleep(30 * 60)
            for sess in self.sessions.values():
                if not sess.listen_key:
                    continue
                try:
                    await sess.rest.request("PUT", "/api/v3/userDataStream",
                                            {"listenKey": sess.listen_key}, api_key=True)
                except Exception as exc:
                    log.warning("listenKey keepalive failed (%s): %s", sess.name,
                                type(exc).__name__)

    def _user_disconnected(self, sess: VenueSession) -> None:
        sess.user_ready.clear()
        self._status_soon(GatewayState.RECONNECTING, DETAIL_USER_STREAM)

    async def _user_connected(self, sess: VenueSession) -> None:
        # reports may have been missed while down: backfill before reporting healthy
        await self.backfill(sess)
        sess.user_ready.set()
        if all(s.user_ready.is_set() for s in self.sessions.values()):
            await self._status(GatewayState.HEALTHY, DETAIL_USER_STREAM)

    async def backfill(self, sess: VenueSession | None = None) -> None:
        """Reconcile open orders and recent trades of one account (default: the first) over
        REST (after any reconnect of its user data stream)."""
        sess = sess or self.first
        open_cids: set[str] = set()
        for inst in self.cfg.instruments:
            rows = await sess.rest.request("GET", "/api/v3/openOrders",
                                           {"symbol": inst.symbol}, signed=True)
            for o in rows:
                open_cids.add(o["clientOrderId"])
                st = self.orders.get(o["clientOrderId"])
                if st is not None and st.session is sess and not st.acked:
                    st.acked = True
                    st.exch_order_id = int(o["orderId"])
                    st.unknown_since_ms = 0
                    await self._exec(st, ExecType.ACK)
            params: dict[str, Any] = {"symbol": inst.symbol, "limit": 1000}
            if inst.symbol in sess.last_trade_id:
                params["fromId"] = sess.last_trade_id[inst.symbol] + 1
            for t in await sess.rest.request("GET", "/api/v3/myTrades", params, signed=True):
                await self._trade_from_rest(inst, t, sess)
        # orders we hold that are no longer open ended while we were away: ask each one
        for cid, st in list(self.orders.items()):
            if st.session is sess and cid not in open_cids and st.unknown_since_ms == 0:
                await self._query(st)

    async def _trade_from_rest(self, inst: Instrument, t: dict[str, Any],
                               sess: VenueSession | None = None) -> None:
        sess = sess or self.first
        sess.last_trade_id[inst.symbol] = max(sess.last_trade_id.get(inst.symbol, 0), t["id"])
        if (inst.symbol, t["id"]) in sess.seen_trades:
            return
        st = self._state_for_exch(int(t["orderId"]), sess) or await self._adopt_traded(
            inst, int(t["orderId"]), sess)
        if st is None:
            return  # not one of ours (or already final and forgotten)
        sess.seen_trades.add((inst.symbol, t["id"]))
        qty = parse_fixed(t["qty"], inst.qty_decimals)
        st.cum_qty += qty
        await self._exec(st, ExecType.FILL, trade_id=int(t["id"]), last_qty=qty,
                         last_price=parse_fixed(t["price"], inst.price_decimals),
                         **self._fee(t.get("commissionAsset"), t.get("commission")),
                         liquidity=Liquidity.MAKER if t.get("isMaker") else Liquidity.TAKER,
                         exch_ts_ns=int(t.get("time", 0)) * 1_000_000)
        if st.quantity and st.cum_qty >= st.quantity:
            self._final(st)

    async def _adopt_traded(self, inst: Instrument, venue_id: int,
                            sess: VenueSession) -> OrderState | None:
        """Follow the order of a trade caught up over REST on ``sess`` when it is ours but
        not held (the gateway restarted): its trades are reported from zero (the engine drops
        the ones it has) and its end is asked for, on the same session."""
        if venue_id in sess.foreign_ids:
            return None
        try:
            o = await sess.rest.request("GET", "/api/v3/order", {
                "symbol": inst.symbol, "orderId": venue_id}, signed=True)
        except BinanceAPIError:
            sess.foreign_ids.add(venue_id)  # forgotten by the venue: nothing to follow
            return None
        cid = o.get("clientOrderId", "")
        oid = order_id_of(self.cfg.client_order_prefix, cid)
        if not oid:
            sess.foreign_ids.add(venue_id)
            return None
        if cid in self.orders or cid in self.final_cids:
            st = self.orders.get(cid)  # a venue order it replaced, or one already ended
            return st if st is not None and st.session is sess else None
        st = self.orders[cid] = OrderState(oid, cid, inst, 0, sess, venue_id, True)
        self._learn(st, o)
        st.query_wanted = True  # its end (filled, canceled) is reported by the query
        return st

    def _learn(self, st: OrderState, o: dict[str, Any]) -> None:
        """Fill in what an order followed again after a restart lacks, from a venue order."""
        inst = st.inst
        if not st.exch_order_id:
            st.exch_order_id = int(o.get("orderId", 0))
        if not st.quantity:
            st.quantity = st.base_qty + parse_fixed(o.get("origQty", "0"), inst.qty_decimals)
        if not st.venue and o.get("type"):
            st.side = o.get("side", "")
            st.venue = _terms_of(inst, o["type"], o.get("price", "0"), o.get("stopPrice", "0"),
                                 o.get("timeInForce", "GTC"))

    def _fee(self, asset: str | None, amount: str | None) -> dict[str, int]:
        """A commission as ``fee`` (raw at the asset's decimals; 8 for an asset not in
        ``assets``) and ``fee_asset`` (the engine's asset id; 0 when not listed)."""
        fee_asset, dec = self.assets.get(asset or "", (0, FEE_DECIMALS))
        return {"fee": parse_fixed(amount or "0", dec), "fee_asset": fee_asset}

    def _state_for_exch(self, exch_order_id: int, sess: VenueSession) -> OrderState | None:
        for st in self.orders.values():
            if st.session is sess and (st.exch_order_id == exch_order_id
                                       or exch_order_id in st.retired):
                return st
        return None

    def on_user_message(self, payload: bytes, sess: VenueSession | None = None) -> None:
        try:
            d = orjson.loads(payload)
            if isinstance(d, dict) and "event" in d:  # WS-API style wrapper
                d = d["event"]
            if d.get("e") != "executionReport":
                return
            self._on_execution_report(d, sess or self.first)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            self._malformed(payload, f"user stream {type(exc).__name__}")

    def _on_execution_report(self, d: dict[str, Any], sess: VenueSession) -> None:
        x = d["x"]
        cid = d["C"] if x == "CANCELED" and d.get("C") else d["c"]
        st = self.orders.get(cid) or self._adopt_reported(cid, d, sess)
        if st is None or st.session is not sess:
            return  # not ours, or already final
        venue_id = int(d["i"])
        if venue_id in st.retired:
            if x != "TRADE":
                return  # the end of a venue order we replaced: the replace answer tells
        else:
            st.exch_order_id = venue_id
        st.unknown_since_ms = 0
        inst = st.inst
        ts = int(d.get("T") or d.get("E") or 0) * 1_000_000
        loop = asyncio.get_running_loop()
        if x == "NEW":
            if not st.acked:
                st.acked = True
                loop.create_task(self._exec(st, ExecType.ACK, exch_ts_ns=ts))
        elif x == "TRADE":
            key = (inst.symbol, int(d["t"]))
            sess.last_trade_id[inst.symbol] = max(sess.last_trade_id.get(inst.symbol, 0), key[1])
            if not sess.seen_trades.add(key):
                return
            st.acked = True
            last_qty = parse_fixed(d["l"], inst.qty_decimals)
            st.cum_qty += last_qty  # over every venue order this one has been (replaces)
            loop.create_task(self._exec(
                st, ExecType.FILL, trade_id=key[1], last_qty=last_qty,
                last_price=parse_fixed(d["L"], inst.price_decimals),
                **self._fee(d.get("N"), d.get("n")),
                liquidity=Liquidity.MAKER if d.get("m") else Liquidity.TAKER, exch_ts_ns=ts))
            if d.get("X") == "FILLED" and venue_id not in st.retired:
                self._final(st)
        elif x == "CANCELED":
            self._final(st)
            loop.create_task(self._exec(st, ExecType.CANCELED, exch_ts_ns=ts))
        elif x in ("EXPIRED", "TRADE_PREVENTION"):
            self._final(st)
            loop.create_task(self._exec(st, ExecType.EXPIRED, exch_ts_ns=ts))
        elif x == "REJECTED":
            self._final(st)
            log.warning("order %s rejected by exchange: %s", cid, d.get("r"))
            loop.create_task(self._exec(st, ExecType.REJECT, exch_ts_ns=ts))

    def _adopt_reported(self, cid: str, d: dict[str, Any],
                        sess: VenueSession) -> OrderState | None:
        """Follow an order of ours this process does not hold (placed before a restart),
        from its executionReport on the user data stream of ``sess``."""
        oid = order_id_of(self.cfg.client_order_prefix, cid)
        md = self.md.get(str(d.get("s", "")).upper())
        if not oid or md is None or cid in self.final_cids:
            return None
        inst = md.inst
        cum = parse_fixed(d["z"], inst.qty_decimals)
        if d["x"] == "TRADE":
            cum -= parse_fixed(d["l"], inst.qty_decimals)  # added back by this report
        st = self.orders[cid] = OrderState(
            oid, cid, inst, parse_fixed(d["q"], inst.qty_decimals), sess, int(d["i"]), True, cum,
            side=d["S"], venue=_terms_of(inst, d["o"], d["p"], d["P"], d["f"]))
        log.info("following order %s again (placed before this gateway started)", cid)
        return st

    def _final(self, st: OrderState) -> None:
        if self.orders.pop(st.cid, None) is not None:
            self.final_cids.add(st.cid)

    async def _exec(self, st: OrderState, exec_type: ExecType, **fields: Any) -> None:
        await self.link.send_exec(
            order_id=st.order_id, exch_order_id=st.exch_order_id,
            account=st.session.account_id, instrument=st.inst.id, exec_type=int(exec_type),
            cum_qty=st.cum_qty, leaves_qty=max(0, st.quantity - st.cum_qty), **fields)

    # ---- orders ------------------------------------------------------------

    def cid_for(self, order_id: int) -> str:
        return f"{self.cfg.client_order_prefix}{order_id}"

    async def _session_of(self, rec: Any, refusal: ExecType) -> VenueSession | None:
        """The session of ``rec.account``; None (and ``refusal`` sent) when that account has
        no venue account here: its orders are never sent on another account's keys."""
        sess = self.sessions.get(rec.account)
        if sess is None:
            log.error("order %d of account %d refused: no venue account for it at this "
                      "gateway (accounts %s)", rec.order_id, rec.account, sorted(self.sessions))
            await self.link.send_exec(order_id=rec.order_id, account=rec.account,
                                      instrument=rec.instrument, exec_type=int(refusal),
                                      exch_code=NO_VENUE_ACCOUNT)
        return sess

    async def _order_loop(self) -> None:
        await serve_orders(self.link, {
            "GW_NEW_ORDER": self.new_order, "GW_CANCEL": self.cancel_order,
            "GW_REPLACE": self.replace_order, "GW_RECONCILE": self.reconcile})

    async def new_order(self, rec: Any) -> None:
        """Send one GW_NEW_ORDER to Binance."""
        inst = self.by_id.get(rec.instrument)
        cid = self.cid_for(rec.order_id)
        if inst is None:
            await self.link.send_exec(order_id=rec.order_id, account=rec.account,
                                      instrument=rec.instrument, exec_type=int(ExecType.REJECT),
                                      exch_code=-1121)  # Binance's "Invalid symbol."
            return
        sess = await self._session_of(rec, ExecType.REJECT)
        if sess is None:
            return
        if cid in self.orders or cid in self.final_cids:
            log.error("duplicate order id %d refused (never re-sent)", rec.order_id)
            return
        side = "BUY" if rec.side == Side.BUY else "SELL"
        st = OrderState(rec.order_id, cid, inst, rec.quantity, sess, side=side)
        md = self.md.get(inst.symbol.upper())
        bid, _, ask, _, last, _ = md.pub.top(md.slot) if md is not None else (0,) * 6
        try:
            st.venue = venue_terms(rec, inst, last or ((bid + ask) // 2 if bid and ask else 0))
        except ValueError as exc:
            log.warning("order %s refused: %s", cid, exc)
            await self._exec(st, ExecType.REJECT, exch_code=-1116)  # Binance's "Invalid orderType."
            return
        self.orders[cid] = st
        params: dict[str, Any] = {
            "symbol": inst.symbol, "side": side,
            "quantity": format_fixed(rec.quantity, inst.qty_decimals),
            "newClientOrderId": cid, "newOrderRespType": "ACK", **st.venue}
        stamp = sess.rest.now_ms()
        try:
            data = await sess.rest.request("POST", "/api/v3/order", params, signed=True)
        except BinanceAPIError as exc:
            log.warning("order %s rejected: code %d %s", cid, exc.code, exc.msg)
            self._final(st)
            await self._exec(st, ExecType.REJECT, exch_code=exc.code)
            return
        except (RateLimited, Banned) as exc:
            # the request was not executed (429/418 answers are definitive): reject it
            log.warning("order %s not sent: %s", cid, type(exc).__name__)
            self._final(st)
            await self._exec(st, ExecType.REJECT, exch_code=-1003)  # TOO_MANY_REQUESTS
            return
        except OutcomeUnknown as exc:
            log.warning("order %s outcome UNKNOWN (%s); will query", cid, exc)
            st.unknown_since_ms = stamp
            await self._exec(st, ExecType.STATUS, status=0)  # status 0: unknown, in doubt
            return
        st.exch_order_id = int(data.get("orderId", 0))
        if not st.acked and cid in self.orders:
            st.acked = True
            await self._exec(st, ExecType.ACK, exch_ts_ns=int(data.get("transactTime", 0)) * 10**6)

    async def cancel_order(self, rec: Any) -> None:
        """Cancel at the venue by client order id, also an order this process does not hold
        (placed before a restart: the id derives from the engine order id), on the session
        of the order's account."""
        cid = self.cid_for(rec.order_id)
        inst = self.by_id.get(rec.instrument)
        if inst is None:
            await self.link.send_exec(order_id=rec.order_id, account=rec.account,
                                      instrument=rec.instrument,
                                      exec_type=int(ExecType.CANCEL_REJECT), exch_code=-1121)
            return
        st = self.orders.get(cid)
        if st is None:
            sess = await self._session_of(rec, ExecType.CANCEL_REJECT)
            if sess is None:
                return
            st = self.orders[cid] = OrderState(rec.order_id, cid, inst, 0, sess, acked=True)
        st.cancel_wanted = True
        await self._try_cancel(st)

    async def _try_cancel(self, st: OrderState) -> None:
        """One cancel request; a rate limit leaves ``cancel_wanted`` for the retry loop, an
        unknown outcome asks for the order's state first."""
        try:
            data = await st.session.rest.request("DELETE", "/api/v3/order", {
                "symbol": st.inst.symbol, "origClientOrderId": st.cid}, signed=True)
        except BinanceAPIError as exc:
            log.warning("cancel %s rejected: code %d %s", st.cid, exc.code, exc.msg)
            st.cancel_wanted = False
            await self._exec(st, ExecType.CANCEL_REJECT, exch_code=exc.code)
            if not st.venue:  # followed only for this cancel
                if st.cid in self.final_cids:
                    self.orders.pop(st.cid, None)  # its end was reported already
                else:
                    st.query_wanted = True  # what became of it (fills included)
            return
        except (RateLimited, Banned) as exc:
            log.warning("cancel %s not executed (%s); will send again", st.cid,
                        type(exc).__name__)
            return
        except OutcomeUnknown as exc:
            log.warning("cancel %s outcome unknown (%s); querying", st.cid, exc)
            st.query_wanted = True
            return
        st.cancel_wanted = False
        if st.cid not in self.orders:
            return  # its end came first on the user stream
        self._learn(st, data)
        if st.base_qty + parse_fixed(data.get("executedQty", "0"), st.inst.qty_decimals) \
                > st.cum_qty:
            # fills this process has not reported (placed before a restart)
            await self._catch_up_trades(st)
        self._final(st)
        await self._exec(st, ExecType.CANCELED)

    async def replace_order(self, rec: Any) -> None:
        """Amend with ``POST /api/v3/order/cancelReplace`` (STOP_ON_FAILURE): the new venue
        order keeps the client order id and carries what is left of the new total.

        Answers REPLACED (new price and total), or REPLACE_REJECT with the venue's code;
        when the cancel half went through and the new order was refused, REPLACE_REJECT is
        followed by CANCELED (the order is gone at the venue).
        """
        cid = self.cid_for(rec.order_id)
        st = self.orders.get(cid)
        if st is not None and not st.venue:
            await self._query(st)  # followed again after a restart: learn its terms
        if st is None or not st.venue or not st.exch_order_id:
            await self.link.send_exec(order_id=rec.order_id, account=rec.account,
                                      instrument=rec.instrument,
                                      exec_type=int(ExecType.REPLACE_REJECT), exch_code=-2011)
            return
        inst = st.inst
        left = rec.quantity - st.cum_qty
        if left <= 0:
            await self._exec(st, ExecType.REPLACE_REJECT, exch_code=-1013)
            return
        terms = dict(st.venue)
        if "price" in terms and rec.price > 0:
            terms["price"] = format_fixed(rec.price, inst.price_decimals)
        old = st.exch_order_id
        st.retired.add(old)
        params = {"symbol": inst.symbol, "side": st.side, "cancelReplaceMode": "STOP_ON_FAILURE",
                  "cancelOrigClientOrderId": cid, "newClientOrderId": cid,
                  "quantity": format_fixed(left, inst.qty_decimals), "newOrderRespType": "ACK",
                  **terms}
        try:
            data = await st.session.rest.request("POST", "/api/v3/order/cancelReplace",
                                                 params, signed=True)
        except BinanceAPIError as exc:
            halves = exc.data
            if halves.get("cancelResult") == "SUCCESS":
                new = halves.get("newOrderResponse") or {}
                log.warning("replace %s: canceled, new order refused: %s", cid, new)
                await self._exec(st, ExecType.REPLACE_REJECT,
                                 exch_code=int(new.get("code", exc.code)))
                if cid in self.orders:
                    self._final(st)
                    await self._exec(st, ExecType.CANCELED)
                return
            st.retired.discard(old)
            code = int((halves.get("cancelResponse") or {}).get("code", exc.code))
            log.warning("replace %s rejected: code %d %s", cid, code, exc.msg)
            await self._exec(st, ExecType.REPLACE_REJECT, exch_code=code)
            if halves:
                st.query_wanted = True  # the cancel failed: the order may have ended
            return
        except (RateLimited, Banned) as exc:
            st.retired.discard(old)
            log.warning("replace %s not sent: %s", cid, type(exc).__name__)
            await self._exec(st, ExecType.REPLACE_REJECT, exch_code=-1003)
            return
        except OutcomeUnknown as exc:
            log.warning("replace %s outcome unknown (%s); querying", cid, exc)
            await self._resolve_replace(st, old, rec, terms)
            return
        self._replaced(st, rec, terms, data["newOrderResponse"], data["cancelResponse"])
        await self._exec(st, ExecType.REPLACED, price=rec.price, quantity=rec.quantity)

    def _replaced(self, st: OrderState, rec: Any, terms: dict[str, str],
                  new: dict[str, Any], canceled: dict[str, Any]) -> None:
        st.base_qty += parse_fixed(canceled.get("executedQty", "0"), st.inst.qty_decimals)
        st.exch_order_id = int(new["orderId"])
        st.quantity = rec.quantity
        st.venue = terms

    async def _resolve_replace(self, st: OrderState, old: int, rec: Any,
                               terms: dict[str, str]) -> None:
        """A cancelReplace whose answer was lost: the order under our client order id tells
        which halves happened (a new venue order id: both)."""
        backoff = Backoff(0.2, 5.0)
        while st.cid in self.orders:
            try:
                o = await st.session.rest.request("GET", "/api/v3/order", {
                    "symbol": st.inst.symbol, "origClientOrderId": st.cid}, signed=True)
            except (BinanceAPIError, OutcomeUnknown, RateLimited, Banned) as exc:
                log.warning("replace %s: query failed (%s); again", st.cid, type(exc).__name__)
                await asyncio.sleep(backoff.next_delay())
                continue
            if int(o["orderId"]) != old:
                prev = await st.session.rest.request("GET", "/api/v3/order", {
                    "symbol": st.inst.symbol, "orderId": old}, signed=True)
                self._replaced(st, rec, terms, o, prev)
                await self._exec(st, ExecType.REPLACED, price=rec.price, quantity=rec.quantity)
                return
            st.retired.discard(old)
            await self._exec(st, ExecType.REPLACE_REJECT)
            if _STATUS_MAP.get(o.get("status", "")) not in _OPEN:
                await self._query(st)  # the cancel half ran, or the order ended meanwhile
            return

    async def _catch_up_trades(self, st: OrderState) -> None:
        for venue_id in sorted({st.exch_order_id, *st.retired}):
            trades = await st.session.rest.request("GET", "/api/v3/myTrades", {
                "symbol": st.inst.symbol, "orderId": venue_id}, signed=True)
            for t in trades:
                await self._trade_from_rest(st.inst, t, st.session)

    async def _query(self, st: OrderState) -> bool:
        """Ask the exchange for one order by client id; emit what it says. True if resolved;
        otherwise ``query_wanted`` is left set and the retry loop asks again."""
        rest = st.session.rest
        st.query_wanted = True
        try:
            o = await rest.request("GET", "/api/v3/order", {
                "symbol": st.inst.symbol, "origClientOrderId": st.cid}, signed=True)
        except BinanceAPIError as exc:
            if exc.code != -2013:  # anything but "Order does not exist."
                log.warning("query %s failed: code %d %s", st.cid, exc.code, exc.msg)
                return False
            st.not_found += 1
            # a request stamped at T cannot be accepted after T + recvWindow; once that has
            # passed and the order is still absent, it never reached the book
            if st.unknown_since_ms and st.not_found >= 2 and \
                    rest.now_ms() > st.unknown_since_ms + self.cfg.recv_window_ms:
                self._final(st)
                await self._exec(st, ExecType.REJECT, exch_code=exc.code)
                return True
            if not st.unknown_since_ms:
                self._final(st)
                await self._exec(st, ExecType.UNKNOWN_ORDER, exch_code=exc.code)
                return True
            return False
        except (OutcomeUnknown, RateLimited, Banned) as exc:
            log.warning("query %s: %s; will ask again", st.cid, type(exc).__name__)
            return False
        st.unknown_since_ms = 0
        st.exch_order_id = int(o["orderId"])
        self._learn(st, o)
        status = _STATUS_MAP.get(o.get("status", ""), OrderStatus.NEW)
        cum = st.base_qty + parse_fixed(o.get("executedQty", "0"), st.inst.qty_decimals)
        if not st.acked:
            st.acked = True
            await self._exec(st, ExecType.ACK)
        if cum > st.cum_qty:
            # fills we have not reported: fetch the trades of this order
            try:
                await self._catch_up_trades(st)
            except (BinanceAPIError, OutcomeUnknown, RateLimited, Banned) as exc:
                log.warning("query %s: trades: %s; will ask again", st.cid, type(exc).__name__)
                return False
        st.query_wanted = False
        if status in (OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED) and \
                st.cid in self.orders:
            self._final(st)
            await self._exec(st, ExecType.CANCELED if status == OrderStatus.CANCELED
                             else ExecType.EXPIRED if status == OrderStatus.EXPIRED
                             else ExecType.REJECT)
        elif status == OrderStatus.FILLED:
            self._final(st)
        return True

    # ---- reconciliation after an engine restart ---------------------------------------

    async def reconcile(self, rec: Any) -> None:
        """Answer one GW_RECONCILE from the venue over REST (engine restart), one answer per
        venue account asked for (``ANY_ID``: every account of this gateway; an account with
        no session here gets an empty answer with code :data:`NO_VENUE_ACCOUNT`).

        Rows (:class:`~gateways.engine_link.ReconcileAnswer`): a STATUS per open order of
        ours, a FILL per trade of ours since ``since_ns`` (``myTrades`` by ``startTime``;
        each trade's order is mapped to the engine order id through our client order id,
        asked by ``orderId`` when not known), a GW_BALANCE per configured asset
        (``/account``), then GW_RECONCILE_END: code 0 when complete, else the error.
        """
        self.n_reconciles += 1
        await reconcile_each_account(self.link, rec, self.sessions, self._reconcile_account,
                                     NO_VENUE_ACCOUNT)

    async def _reconcile_account(self, rec: Any, sess: VenueSession) -> None:
        ans = ReconcileAnswer(self.link, rec, sess.account_id)
        prefix = self.cfg.client_order_prefix
        rest = sess.rest
        code = 0
        try:
            for inst in self.cfg.instruments:
                cids: dict[int, str] = {}
                rows = await rest.request("GET", "/api/v3/openOrders",
                                          {"symbol": inst.symbol}, signed=True)
                for o in rows:
                    cid = o["clientOrderId"]
                    oid = order_id_of(prefix, cid)
                    if not oid:
                        continue
                    cids[int(o["orderId"])] = cid
                    qty = parse_fixed(o["origQty"], inst.qty_decimals)
                    cum = parse_fixed(o.get("executedQty", "0"), inst.qty_decimals)
                    st = self.orders.get(cid)
                    if st is None:  # the gateway restarted too: follow the order again
                        st = self.orders[cid] = OrderState(oid, cid, inst, qty, sess,
                                                           int(o["orderId"]), True, cum)
                    await ans.open_order(
                        oid, int(o["orderId"]), inst.id, qty, cum,
                        parse_fixed(o.get("price", "0"), inst.price_decimals),
                        int(_STATUS_MAP.get(o.get("status", ""), OrderStatus.NEW)),
                        int(o.get("updateTime", 0)) * 1_000_000)
                for st in self.orders.values():
                    if st.exch_order_id and st.inst is inst and st.session is sess:
                        cids.setdefault(st.exch_order_id, st.cid)
                trades = await rest.request("GET", "/api/v3/myTrades", {
                    "symbol": inst.symbol, "startTime": ans.since_ms, "limit": 1000},
                    signed=True)
                for t in trades:
                    exch_oid = int(t["orderId"])
                    cid = cids.get(exch_oid)
                    if cid is None:
                        o = await rest.request("GET", "/api/v3/order", {
                            "symbol": inst.symbol, "orderId": exch_oid}, signed=True)
                        cid = cids[exch_oid] = o.get("clientOrderId", "")
                    oid = order_id_of(prefix, cid)
                    if not oid:
                        continue
                    fee = self._fee(t.get("commissionAsset"), t.get("commission"))
                    await ans.fill(
                        oid, exch_oid, inst.id, int(t["id"]),
                        parse_fixed(t["qty"], inst.qty_decimals),
                        parse_fixed(t["price"], inst.price_decimals), fee["fee"],
                        fee["fee_asset"], Liquidity.MAKER if t.get("isMaker") else Liquidity.TAKER,
                        int(t.get("time", 0)) * 1_000_000)
            if self.assets:
                acct = await rest.request("GET", "/api/v3/account", {}, signed=True)
                for b in acct.get("balances", []):
                    asset = self.assets.get(b.get("asset", ""))
                    if asset is None:
                        continue
                    aid, dec = asset
                    await ans.balance(aid, parse_fixed(b.get("free", "0"), dec),
                                      parse_fixed(b.get("locked", "0"), dec),
                                      int(acct.get("updateTime", 0)) * 1_000_000)
        except BinanceAPIError as exc:
            code = exc.code or -1
            log.warning("reconcile %d: venue error %d %s", ans.request_id, exc.code, exc.msg)
        except (OutcomeUnknown, RateLimited, Banned, KeyError, ValueError, TypeError) as exc:
            code = -1
            log.warning("reconcile %d failed: %s", ans.request_id, type(exc).__name__)
        await ans.end(code)

    async def _unknown_loop(self) -> None:
        """Until each order has a state the venue confirmed: query UNKNOWN orders and those
        whose query failed (by client order id), send again cancels not executed."""
        while True:
            await asyncio.sleep(0.2)
            for st in list(self.orders.values()):
                if st.unknown_since_ms or st.query_wanted:
                    await self._query(st)
                elif st.cancel_wanted:
                    await self._try_cancel(st)
