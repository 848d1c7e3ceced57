"""A generic gateway on ccxt.pro / ccxt async: any ccxt exchange, configured by name.

Market data from ``watch_order_book`` (REST ``fetch_order_book`` polling when the exchange
has no websocket book) and the venue's trades from ``watch_trades`` (else REST
``fetch_trades`` polling, else the ticker's ``last``): each new trade is one GW_MARKET_DATA
flagged ``MdFlag.TRADE``, so the engine's held stops, live bars and risk reference work as for
the Binance gateway; fills from ``watch_my_trades`` and order states from
``watch_orders`` when available, else REST polling of ``fetch_my_trades`` /
``fetch_open_orders`` (and with ``ccxt_websocket = false``). Accounts: one ccxt client per
engine account (:class:`CcxtSession`, its own keys and ccxt rate limiter); an order goes out
on the client of its record's ``account`` and is refused when that account has no venue
account here; its amends, cancels and order-state watch use the same client. Orders
carry the engine's order id as ``clientOrderId``; a request
whose outcome is unknown (timeout / network error) is queried by that id, never re-sent.
After an engine restart it answers GW_RECONCILE from ``fetch_open_orders``,
``fetch_my_trades`` (since the engine's window) and ``fetch_balance``, with the same rows as
every gateway (:class:`~gateways.engine_link.ReconcileAnswer`).

ccxt hands out floats; they are converted to fixed point at this edge by formatting to the
instrument's decimals (ccxt itself is the slow generic path; use a native gateway such as
``gateways.binance`` for latency).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import ccxt.pro as ccxtpro
from ccxt.base.errors import (
    ExchangeError,
    InsufficientFunds,
    InvalidOrder,
    NetworkError,
    OrderNotFound,
    RequestTimeout,
)

from oms_core.backoff import Backoff
from oms_core.enums import Liquidity, OrderFlag, OrderStatus, OrderType, Side, TimeInForce

from .binance.gateway import NO_VENUE_ACCOUNT, BoundedSet
from .book import format_fixed, parse_fixed
from .config import GatewayConfig, Instrument, VenueAccount
from .engine_link import (
    EngineLink,
    ExecType,
    GatewayState,
    MdFlag,
    ReconcileAnswer,
    asset_map,
    order_id_of,
    reconcile_each_account,
    serve_orders,
    trade_id_of,
)

__all__ = ["CcxtGateway", "CcxtSession", "make_exchange", "venue_code"]

log = logging.getLogger("gateways.ccxt")

FEE_DECIMALS = 8  # a fee in an asset the gateway has no decimals for (as the Binance gateway)
# REST trade polling (no websocket): a venue counts request weight per IP, so one account's
# symbols are asked every second only while it has recent orders there; every symbol of every
# account is swept at a slower pace (a resting order that fills later is seen by the sweep)
POLL_ACTIVE_S = 1.0
POLL_SWEEP_S = 10.0
ACTIVE_AFTER_ORDER_S = 30.0
# public trades polled (no websocket) at the book's pace, but at most once a second: venues
# weigh a trades request at least as much as a book request (Binance: aggTrades 4, trades 25)
POLL_PUBLIC_TRADES_S = 1.0
# a cancel that meets network errors is sent again at most this many times, over at most this
# long; then the order is left for reconciliation (still followed: the orders watch reports
# an end the venue decides)
CANCEL_ATTEMPTS = 20
CANCEL_GIVE_UP_S = 60.0
VENUE_IDS_KEPT = 100_000  # venue order id -> engine order id of ended orders (late trades)
TRADES_KEPT = 10_000  # venue trade ids already published (polled trades repeat)
_STATUS = {"open": OrderStatus.NEW, "closed": OrderStatus.FILLED,
           "canceled": OrderStatus.CANCELED, "expired": OrderStatus.EXPIRED,
           "rejected": OrderStatus.REJECTED}
_TIF = {TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.FOK: "FOK"}
_ENDS = {"canceled": ExecType.CANCELED, "expired": ExecType.EXPIRED,
         "rejected": ExecType.REJECT}


def ccxt_terms(rec: Any, inst: Instrument) -> tuple[str, str | None, dict[str, Any]]:
    """ccxt's unified ``type``, ``price`` and ``params`` of one GW_NEW_ORDER.

    The same rules as the Binance gateway: held stops that fired arrive as MARKET / LIMIT,
    a stop type is a native stop (``stopLossPrice`` / ``takeProfitPrice``), post-only is
    ``postOnly``, IOC / FOK go as ``timeInForce`` (GTD / DAY rest as GTC: the engine cancels
    them). Raise ValueError for a trailing stop (always held by the engine).
    """
    ot = OrderType(rec.order_type)
    if ot == OrderType.MARKET:
        return "market", None, {}
    price = format_fixed(rec.price, inst.price_decimals)
    tif = {"timeInForce": _TIF.get(TimeInForce(rec.tif), "GTC")}
    trigger = format_fixed(rec.trigger_price, inst.price_decimals)
    if ot == OrderType.LIMIT:
        return "limit", price, {"postOnly": True} if rec.order_flags & OrderFlag.POST_ONLY \
            else tif
    if ot == OrderType.STOP_MARKET:
        return "market", None, {"stopLossPrice": trigger}
    if ot == OrderType.STOP_LIMIT:
        return "limit", price, {**tif, "stopLossPrice": trigger}
    if ot == OrderType.TAKE_PROFIT:
        return "market", None, {"takeProfitPrice": trigger}
    raise ValueError(f"order type {ot.name} is not sent through ccxt")


@dataclass
class LiveOrder:
    """What the gateway knows of one of its orders at the venue (removed when it ends)."""

    order_id: int
    inst: Instrument
    side: str
    otype: str
    price: str | None
    params: dict[str, Any]
    quantity: int
    session: CcxtSession  # the venue account it is at
    venue_id: str = ""
    filled: int = 0
    replaced: set[str] = field(default_factory=set)  # venue ids of earlier versions (amends)


def _venue_int(venue_id: str) -> int:
    return int(venue_id) if venue_id.isdigit() else 0


def to_fixed(x: Any, decimals: int) -> int:
    """ccxt number (float, str or None) -> int64 fixed point at ``decimals``."""
    if x is None:
        return 0
    if isinstance(x, str):
        return parse_fixed(x, decimals)
    return parse_fixed(format(float(x), f".{decimals}f"), decimals)


def make_exchange(cfg: GatewayConfig, acct: VenueAccount) -> Any:
    """A ccxt.pro client of ``cfg.exchange`` on the keys of ``acct`` (``ccxt_urls`` merged
    into its API URLs: a simulator or a testnet)."""
    opts: dict[str, Any] = {"enableRateLimit": True, **cfg.ccxt_options}
    if cfg.user_stream:
        opts["apiKey"], opts["secret"] = acct.credentials()
    ex = getattr(ccxtpro, cfg.exchange)(opts)
    if cfg.ccxt_urls:
        ex.urls["api"] = {**ex.urls["api"], **cfg.ccxt_urls}
    return ex


_VENUE_CODE = re.compile(r'"code"\s*:\s*(-?\d+)')


def venue_code(exc: Exception) -> int:
    """The Binance error code of a refused order (ORDER_UPDATE.venue_code): the one in the
    venue's answer that ccxt quotes in its message, else the code of ccxt's error class."""
    m = _VENUE_CODE.search(str(exc))
    if m:
        return int(m.group(1))
    if isinstance(exc, InsufficientFunds):
        return -2010
    if isinstance(exc, InvalidOrder):
        return -1013
    return -1000


class CcxtSession:
    """One venue account: its ccxt client (own keys and rate limiter) and the trades
    already reported on it."""

    def __init__(self, account_id: int, ex: Any, name: str = "") -> None:
        self.account_id = account_id
        self.name = name or str(account_id)
        self.ex = ex
        self.seen_trades = BoundedSet(200_000)
        self.active: dict[str, float] = {}  # symbol -> poll it every second until (monotonic)

    def __repr__(self) -> str:  # no keys in reprs
        return f"CcxtSession(account={self.account_id}, name={self.name!r})"


class CcxtGateway:
    """One ccxt exchange for the engine accounts of ``cfg.venue_accounts()`` (one client
    each; ``exchange`` given: that client for ``cfg.account_id`` alone); run with
    :meth:`run`."""

    def __init__(self, cfg: GatewayConfig, link: EngineLink, exchange: Any = None,
                 assets: dict[str, tuple[int, int]] | None = None) -> None:
        self.cfg = cfg
        self.link = link
        # venue currency -> (engine asset id, decimals): balances and fee assets
        self.assets = asset_map(cfg, assets)
        self.n_reconciles = 0
        if exchange is not None:
            self.sessions = {cfg.account_id: CcxtSession(cfg.account_id, exchange)}
        else:
            self.sessions = {a.account_id: CcxtSession(a.account_id, make_exchange(cfg, a),
                                                       a.name)
                             for a in cfg.venue_accounts()}
        # market data (public) through the first account's client
        self.ex = next(iter(self.sessions.values())).ex
        self.by_id = {i.id: i for i in cfg.instruments}
        self.by_symbol = {i.symbol: i for i in cfg.instruments}
        self.cids: dict[str, int] = {}  # clientOrderId -> engine order id (live orders)
        self.live: dict[str, LiveOrder] = {}  # clientOrderId -> its terms at the venue
        # (account, venue order id) -> engine order id: REST trades carry no clientOrderId.
        # Live orders stay; ended ones are kept, oldest forgotten first, up to
        # VENUE_IDS_KEPT for their late trades
        self.venue_ids: dict[tuple[int, str], int] = {}
        self._ended_venue_ids: deque[tuple[int, str]] = deque()
        # what the last GW_MARKET_DATA of each instrument said: its top of book and last trade
        self._top: dict[int, tuple[int, int, int, int]] = {}
        self._last: dict[int, tuple[int, int]] = {}
        self._trades_seen = BoundedSet(TRADES_KEPT)
        self.n_errors = 0
        self._tasks: list[asyncio.Task[Any]] = []

    def _backoff(self, first_s: float) -> Backoff:
        """Waits between retries of one venue call: doubling from ``first_s`` up to
        ``reconnect_max_s``."""
        return Backoff(first_s, self.cfg.reconnect_max_s, jitter=False)

    def cid_for(self, order_id: int) -> str:
        return f"{self.cfg.client_order_prefix}{order_id}"

    async def run(self) -> None:
        for sess in self.sessions.values():
            await sess.ex.load_markets()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._book_loop(i)) for i in self.cfg.instruments]
        self._tasks += [loop.create_task(self._last_trade_loop(i)) for i in self.cfg.instruments]
        self._tasks.append(loop.create_task(self._order_loop()))
        if self.cfg.user_stream:
            for s in self.sessions.values():
                self._tasks.append(loop.create_task(self._trades_loop(s)))
                self._tasks.append(loop.create_task(self._orders_watch(s)))
        await self.link.send_status(GatewayState.HEALTHY)
        try:
            await asyncio.gather(*self._tasks)
        finally:
            for t in self._tasks:
                t.cancel()
            for sess in self.sessions.values():
                await sess.ex.close()

    # ---- market data -------------------------------------------------------

    async def _book_loop(self, inst: Instrument) -> None:
        ws = self.cfg.ccxt_websocket and bool(self.ex.has.get("watchOrderBook"))
        backoff = self._backoff(0.5)
        while True:
            try:
                ob = await (self.ex.watch_order_book(inst.symbol) if ws
                            else self.ex.fetch_order_book(inst.symbol, 20))
                backoff.reset()
            except (NetworkError, ExchangeError) as exc:
                self.n_errors += 1
                log.warning("%s: order book: %s", inst.symbol, type(exc).__name__)
                await self.link.send_status(GatewayState.RECONNECTING, inst.id)
                await asyncio.sleep(backoff.next_delay())
                continue
            bids, asks = ob.get("bids") or [], ob.get("asks") or []
            p, q = inst.price_decimals, inst.qty_decimals
            self._top[inst.id] = (
                to_fixed(bids[0][0], p) if bids else 0, to_fixed(bids[0][1], q) if bids else 0,
                to_fixed(asks[0][0], p) if asks else 0, to_fixed(asks[0][1], q) if asks else 0)
            self._publish_md(inst, int(ob.get("timestamp") or 0) * 1_000_000, 0)
            if not ws:
                await asyncio.sleep(self.cfg.stale_after_s / 4)

    def _publish_md(self, inst: Instrument, exch_ts_ns: int, flags: int) -> None:
        """One GW_MARKET_DATA: the instrument's top of book and last trade as last heard."""
        bid, bid_qty, ask, ask_qty = self._top.get(inst.id, (0, 0, 0, 0))
        last, last_qty = self._last.get(inst.id, (0, 0))
        self.link.publish_md(inst.id, bid, bid_qty, ask, ask_qty, last, last_qty, exch_ts_ns,
                             self.ex.milliseconds() * 1_000_000, flags)

    def _on_public_trades(self, inst: Instrument, trades: list[dict[str, Any]],
                          flags: int = int(MdFlag.TRADE)) -> None:
        """Publish each trade not published before, oldest first (``flags`` 0: the trades
        that were done before this gateway heard the venue set the last price only)."""
        new = [t for t in trades if self._trades_seen.add((inst.symbol, str(t.get("id"))))]
        new.sort(key=lambda t: int(t.get("timestamp") or 0))  # stable: the venue's order
        if not flags:
            new = new[-1:]
        for t in new:
            price = to_fixed(t.get("price"), inst.price_decimals)
            if price <= 0:
                continue
            self._last[inst.id] = (price, to_fixed(t.get("amount"), inst.qty_decimals))
            self._publish_md(inst, int(t.get("timestamp") or 0) * 1_000_000, flags)

    async def _last_trade_loop(self, inst: Instrument) -> None:
        """The venue's public trades: ``watch_trades``, else polled ``fetch_trades``, else
        the ticker's ``last`` (``watch_ticker`` / ``fetch_ticker``; a changed last price or
        time counts as a new trade)."""
        has = self.ex.has
        ws = self.cfg.ccxt_websocket
        how = ("watch_trades" if ws and has.get("watchTrades") else
               "fetch_trades" if has.get("fetchTrades") else
               "watch_ticker" if ws and has.get("watchTicker") else
               "fetch_ticker" if has.get("fetchTicker") else "")
        if not how:
            log.warning("%s: the venue publishes no trades through ccxt; no last price",
                        inst.symbol)
            return
        primed = how == "watch_trades"  # a stream sends only trades done from now on
        backoff = self._backoff(0.5)
        while True:
            try:
                if how in ("watch_trades", "fetch_trades"):
                    trades = await (self.ex.watch_trades(inst.symbol) if how == "watch_trades"
                                    else self.ex.fetch_trades(inst.symbol, limit=100))
                else:
                    tk = await (self.ex.watch_ticker(inst.symbol) if how == "watch_ticker"
                                else self.ex.fetch_ticker(inst.symbol))
                    trades = [{"id": f"{tk.get('timestamp')}:{tk.get('last')}",
                               "price": tk.get("last"), "amount": 0,
                               "timestamp": tk.get("timestamp")}] if tk.get("last") else []
                backoff.reset()
            except (NetworkError, ExchangeError) as exc:
                self.n_errors += 1
                log.warning("%s: trades: %s", inst.symbol, type(exc).__name__)
                await asyncio.sleep(backoff.next_delay())
                continue
            self._on_public_trades(inst, trades, int(MdFlag.TRADE) if primed else 0)
            primed = True
            if not how.startswith("watch"):
                await asyncio.sleep(max(self.cfg.stale_after_s / 4, POLL_PUBLIC_TRADES_S))

    # ---- fills -------------------------------------------------------------

    async def _trades_loop(self, sess: CcxtSession) -> None:
        ex = sess.ex
        ws = self.cfg.ccxt_websocket and bool(ex.has.get("watchMyTrades"))
        next_sweep = 0.0
        while True:
            try:
                if ws:
                    trades = await ex.watch_my_trades()
                else:
                    now = time.monotonic()
                    sweep = now >= next_sweep
                    if sweep:
                        next_sweep = now + POLL_SWEEP_S
                    trades = []
                    for inst in self.cfg.instruments:
                        if sweep or sess.active.get(inst.symbol, 0.0) > now:
                            trades += await ex.fetch_my_trades(inst.symbol, limit=100)
                    await asyncio.sleep(POLL_ACTIVE_S)
            except (NetworkError, ExchangeError) as exc:
                self.n_errors += 1
                log.warning("trades: %s", type(exc).__name__)
                await asyncio.sleep(1.0)
                continue
            for t in trades:
                await self._on_trade(t, sess)

    def _fill_fields(self, inst: Instrument, t: dict[str, Any]) -> dict[str, int]:
        """A ccxt trade as the fields of a FILL report (live stream and reconciliation)."""
        fee = t.get("fee") or {}
        fee_asset, fee_dec = self.assets.get(str(fee.get("currency") or ""), (0, FEE_DECIMALS))
        oid = str(t.get("order") or "")
        return {"exch_order_id": int(oid) if oid.isdigit() else 0,
                "trade_id": trade_id_of(t.get("id")),
                "last_qty": to_fixed(t.get("amount"), inst.qty_decimals),
                "last_price": to_fixed(t.get("price"), inst.price_decimals),
                "fee": to_fixed(fee.get("cost"), fee_dec), "fee_asset": fee_asset,
                "liquidity": int(Liquidity.MAKER if t.get("takerOrMaker") == "maker"
                                 else Liquidity.TAKER),
                "exch_ts_ns": int(t.get("timestamp") or 0) * 1_000_000}

    async def _on_trade(self, t: dict[str, Any], sess: CcxtSession | None = None) -> None:
        sess = sess or next(iter(self.sessions.values()))
        inst = self.by_symbol.get(t.get("symbol", ""))
        if inst is None or not sess.seen_trades.add((inst.symbol, str(t.get("id")))):
            return
        venue_oid = str(t.get("order") or "")
        cid = (t.get("info") or {}).get("c") or t.get("clientOrderId") or \
            self._cid_of_venue(venue_oid, sess)
        live = self.live.get(cid)
        f = self._fill_fields(inst, t)
        if live is not None and live.session is sess:
            live.filled += f["last_qty"]
        order_id = self.cids.get(cid) or self.venue_ids.get((sess.account_id, venue_oid), 0)
        await self.link.send_exec(
            order_id=order_id, account=sess.account_id, instrument=inst.id,
            exec_type=int(ExecType.FILL), **f)
        if live is not None and live.session is sess and live.filled >= live.quantity:
            self._ended(cid)  # filled in full: final

    def _cid_of_venue(self, venue_id: str, sess: CcxtSession) -> str:
        """Our client order id of a venue order on ``sess`` (REST trades carry only the
        venue's id)."""
        for cid, live in self.live.items():
            if venue_id and live.session is sess and (
                    live.venue_id == venue_id or venue_id in live.replaced):
                return cid
        return ""

    # ---- orders ------------------------------------------------------------

    async def _order_loop(self) -> None:
        await serve_orders(self.link, {
            "GW_NEW_ORDER": self.new_order, "GW_CANCEL": self.cancel_order,
            "GW_REPLACE": self.replace_order, "GW_RECONCILE": self.reconcile})

    async def _exec(self, rec: Any, exec_type: ExecType, **kw: Any) -> None:
        await self.link.send_exec(order_id=rec.order_id, account=rec.account,
                                  instrument=rec.instrument, exec_type=int(exec_type), **kw)

    async def _session_of(self, rec: Any, refusal: ExecType) -> CcxtSession | None:
        """The session of ``rec.account``; None (and ``refusal`` sent) when that account has
        no venue account here: its orders are never sent on another account's keys."""
        sess = self.sessions.get(rec.account)
        if sess is None:
            log.error("order %d of account %d refused: no venue account for it at this "
                      "gateway (accounts %s)", rec.order_id, rec.account, sorted(self.sessions))
            await self._exec(rec, refusal, exch_code=NO_VENUE_ACCOUNT)
        return sess

    def _ended(self, cid: str) -> None:
        """The order of ``cid`` is final: forget it; its venue ids are kept for late trades
        until VENUE_IDS_KEPT newer ended ones push them out."""
        self.cids.pop(cid, None)
        live = self.live.pop(cid, None)
        if live is None:
            return
        ended = self._ended_venue_ids
        for venue_id in (live.venue_id, *live.replaced):
            if venue_id:
                ended.append((live.session.account_id, venue_id))
        while len(ended) > VENUE_IDS_KEPT:
            self.venue_ids.pop(ended.popleft(), None)

    async def new_order(self, rec: Any) -> None:
        inst = self.by_id.get(rec.instrument)
        if inst is None:
            await self._exec(rec, ExecType.REJECT)
            return
        sess = await self._session_of(rec, ExecType.REJECT)
        if sess is None:
            return
        cid = self.cid_for(rec.order_id)
        try:
            otype, price, params = ccxt_terms(rec, inst)
        except ValueError as exc:
            log.warning("order %s refused: %s", cid, exc)
            await self._exec(rec, ExecType.REJECT)
            return
        side = "buy" if rec.side == Side.BUY else "sell"
        self.cids[cid] = rec.order_id
        sess.active[inst.symbol] = time.monotonic() + ACTIVE_AFTER_ORDER_S
        live = self.live[cid] = LiveOrder(rec.order_id, inst, side, otype, price, params,
                                          rec.quantity, sess)
        try:
            o = await sess.ex.create_order(
                inst.symbol, otype, side, format_fixed(rec.quantity, inst.qty_decimals), price,
                {**params, "clientOrderId": cid})
        except (RequestTimeout, NetworkError) as exc:
            log.warning("order %s outcome UNKNOWN (%s); querying", cid, type(exc).__name__)
            await self._exec(rec, ExecType.STATUS, status=0)
            await self._resolve(rec, inst, cid, sess)
            return
        except ExchangeError as exc:
            log.warning("order %s rejected: %s", cid, exc)
            self._ended(cid)
            await self._exec(rec, ExecType.REJECT, exch_code=venue_code(exc))
            return
        live.venue_id = str(o.get("id") or "")
        self.venue_ids[(sess.account_id, live.venue_id)] = rec.order_id
        await self._exec(rec, ExecType.ACK, exch_order_id=_venue_int(live.venue_id))

    async def _resolve(self, rec: Any, inst: Instrument, cid: str, sess: CcxtSession) -> None:
        for _ in range(20):
            await asyncio.sleep(0.5)
            try:
                o = await self._fetch_by_cid(sess, inst, cid)
            except OrderNotFound:
                continue
            except (NetworkError, ExchangeError):
                continue
            oid = str(o.get("id") or "")
            self.venue_ids[(sess.account_id, oid)] = rec.order_id
            if cid in self.live:
                self.live[cid].venue_id = oid
            await self._exec(rec, ExecType.ACK, exch_order_id=_venue_int(oid))
            return
        log.error("order %s still UNKNOWN after 20 queries; left for reconciliation", cid)

    async def _fetch_by_cid(self, sess: CcxtSession, inst: Instrument,
                            cid: str) -> dict[str, Any]:
        """The venue's order under our client order id on ``sess`` (its newest version after
        amends)."""
        o: dict[str, Any] = await sess.ex.fetch_order(
            None, inst.symbol, {"clientOrderId": cid, "origClientOrderId": cid})
        return o

    async def cancel_order(self, rec: Any) -> None:
        inst = self.by_id.get(rec.instrument)
        cid = self.cid_for(rec.order_id)
        if inst is None:
            await self._exec(rec, ExecType.CANCEL_REJECT)
            return
        live = self.live.get(cid)
        sess = live.session if live is not None else \
            await self._session_of(rec, ExecType.CANCEL_REJECT)
        if sess is None:
            return
        backoff = self._backoff(0.2)
        deadline = time.monotonic() + CANCEL_GIVE_UP_S
        for _ in range(CANCEL_ATTEMPTS):
            try:
                await sess.ex.cancel_order(None, inst.symbol, {"clientOrderId": cid,
                                                               "origClientOrderId": cid})
            except ExchangeError as exc:
                log.warning("cancel %s rejected: %s", cid, exc)
                await self._exec(rec, ExecType.CANCEL_REJECT)
                return
            except NetworkError as exc:
                # not executed (rate limit) or unknown (timeout): the venue tells which
                log.warning("cancel %s: %s; asking the venue", cid, type(exc).__name__)
                status = await self._status_of(sess, inst, cid, deadline)
                if status is None or status in ("open", ""):
                    delay = backoff.next_delay()
                    if time.monotonic() + delay >= deadline:
                        break
                    await asyncio.sleep(delay)
                    continue  # still open at the venue: cancel again
                self._ended(cid)
                if status in _ENDS:
                    await self._exec(rec, _ENDS[status])
                return
            self._ended(cid)
            await self._exec(rec, ExecType.CANCELED)
            return
        # still followed (the orders watch reports an end the venue decides)
        log.error("cancel %s: no answer from the venue after %d attempts or %.0f s; left for "
                  "reconciliation", cid, CANCEL_ATTEMPTS, CANCEL_GIVE_UP_S)

    async def _status_of(self, sess: CcxtSession, inst: Instrument, cid: str,
                         deadline: float = float("inf")) -> str | None:
        """The venue's ccxt status of our order ("open", "closed", ...), None when it could
        not be asked (by ``deadline``, monotonic), "rejected" when the venue does not know
        it."""
        backoff = self._backoff(0.2)
        for _ in range(50):
            if time.monotonic() >= deadline:
                return None
            try:
                return str((await self._fetch_by_cid(sess, inst, cid)).get("status") or "")
            except OrderNotFound:
                return "rejected"
            except (NetworkError, ExchangeError) as exc:
                log.warning("status of %s: %s; again", cid, type(exc).__name__)
                await asyncio.sleep(backoff.next_delay())
        return None

    async def replace_order(self, rec: Any) -> None:
        """Amend: ccxt ``edit_order`` (a limit order on a venue that has it; Binance: one
        cancelReplace), else a cancel and a new order under the same client order id.

        Answers REPLACED (new price and total), or REPLACE_REJECT; when the old order was
        canceled and its replacement refused, REPLACE_REJECT is followed by CANCELED.
        """
        cid = self.cid_for(rec.order_id)
        live = self.live.get(cid)
        if live is None or not live.venue_id or rec.quantity <= live.filled:
            await self._exec(rec, ExecType.REPLACE_REJECT)
            return
        inst = live.inst
        amount = format_fixed(rec.quantity - live.filled, inst.qty_decimals)
        price = format_fixed(rec.price, inst.price_decimals) if live.price is not None \
            and rec.price > 0 else live.price
        old = live.venue_id
        live.replaced.add(old)
        ex = live.session.ex
        edit = bool(ex.has.get("editOrder")) and live.otype == "limit" and (
            "stopLossPrice" not in live.params)
        try:
            if edit:
                o = await ex.edit_order(
                    old, inst.symbol, live.otype, live.side, amount, price,
                    {**live.params, "newClientOrderId": cid, "cancelOrigClientOrderId": cid})
            else:
                try:
                    await ex.cancel_order(None, inst.symbol, {
                        "clientOrderId": cid, "origClientOrderId": cid})
                except ExchangeError as exc:
                    live.replaced.discard(old)
                    log.warning("replace %s: cancel refused: %s", cid, exc)
                    await self._exec(rec, ExecType.REPLACE_REJECT)
                    return
                o = await ex.create_order(inst.symbol, live.otype, live.side, amount, price,
                                          {**live.params, "clientOrderId": cid})
        except (ExchangeError, NetworkError) as exc:
            # which half ran (an edit is one request, cancel + new two): the venue tells
            log.warning("replace %s: %s; asking the venue", cid, type(exc).__name__)
            await self._settle_replace(rec, live, old, price)
            return
        self._replaced(live, rec, price, str(o.get("id") or ""))
        await self._exec(rec, ExecType.REPLACED, price=rec.price, quantity=rec.quantity,
                         exch_order_id=_venue_int(live.venue_id))

    def _replaced(self, live: LiveOrder, rec: Any, price: str | None, venue_id: str) -> None:
        live.venue_id = venue_id
        live.price = price
        live.quantity = rec.quantity

    async def _settle_replace(self, rec: Any, live: LiveOrder, old: str,
                              price: str | None) -> None:
        cid = self.cid_for(rec.order_id)
        for _ in range(50):
            try:
                o = await self._fetch_by_cid(live.session, live.inst, cid)
                break
            except OrderNotFound:
                o = {}
                break
            except (NetworkError, ExchangeError):
                await asyncio.sleep(0.5)
        else:
            log.error("replace %s: the venue could not be asked; left for reconciliation", cid)
            return
        venue_id, status = str(o.get("id") or ""), str(o.get("status") or "")
        if venue_id and venue_id != old:
            self._replaced(live, rec, price, venue_id)
            await self._exec(rec, ExecType.REPLACED, price=rec.price, quantity=rec.quantity,
                             exch_order_id=_venue_int(venue_id))
            return
        live.replaced.discard(old)
        await self._exec(rec, ExecType.REPLACE_REJECT)
        if status in _ENDS or not o:  # the cancel half ran, the new order did not
            self._ended(cid)
            await self._exec(rec, _ENDS.get(status, ExecType.CANCELED))

    async def _orders_watch(self, sess: CcxtSession) -> None:
        """Report ends the venue decided (its cancels, expiries, IOC / FOK remainders):
        ``watch_orders`` when the exchange has it, else polling of our open orders."""
        ws = self.cfg.ccxt_websocket and bool(sess.ex.has.get("watchOrders"))
        while True:
            try:
                if ws:
                    updates = await sess.ex.watch_orders()
                else:
                    await asyncio.sleep(1.0)
                    updates = await self._poll_ended(sess)
            except (NetworkError, ExchangeError) as exc:
                self.n_errors += 1
                log.warning("orders: %s", type(exc).__name__)
                await asyncio.sleep(1.0)
                continue
            for o in updates:
                await self._on_order(o, sess)

    async def _poll_ended(self, sess: CcxtSession) -> list[dict[str, Any]]:
        """The orders we hold on ``sess`` that are no longer open at the venue, as the venue
        has them."""
        out: list[dict[str, Any]] = []
        for inst in self.cfg.instruments:
            held = [cid for cid, lv in self.live.items()
                    if lv.inst is inst and lv.venue_id and lv.session is sess]
            if not held:
                continue
            opened = {str(o.get("clientOrderId") or "")
                      for o in await sess.ex.fetch_open_orders(inst.symbol)}
            for cid in held:
                if cid not in opened and cid in self.live:
                    try:
                        out.append(await self._fetch_by_cid(sess, inst, cid))
                    except OrderNotFound:
                        continue
        return out

    async def _on_order(self, o: dict[str, Any], sess: CcxtSession) -> None:
        cid = str(o.get("clientOrderId") or "")
        live = self.live.get(cid)
        status = str(o.get("status") or "")
        if live is None or live.session is not sess or str(o.get("id") or "") in live.replaced:
            return  # not ours, already ended, or a version an amend replaced
        if status == "closed" and live.filled < live.quantity:
            return  # filled: the trades are reported by the trades loop
        if status == "closed" or status in _ENDS:
            self._ended(cid)
            if status in _ENDS:
                await self.link.send_exec(
                    order_id=live.order_id, exch_order_id=_venue_int(live.venue_id),
                    account=sess.account_id, instrument=live.inst.id,
                    exec_type=int(_ENDS[status]), cum_qty=live.filled,
                    leaves_qty=max(0, live.quantity - live.filled))

    # ---- reconciliation after an engine restart ---------------------------------------

    async def reconcile(self, rec: Any) -> None:
        """Answer one GW_RECONCILE from the venue through ccxt (engine restart).

        Rows as every gateway sends them (:class:`~gateways.engine_link.ReconcileAnswer`):
        a STATUS per open order of ours (``fetch_open_orders``; ours = our client order id
        prefix), a FILL per trade of ours since ``since_ns`` (``fetch_my_trades``; a trade's
        order is mapped to the engine order id through its client order id, fetched with
        ``fetch_order`` when the order is no longer open), a GW_BALANCE per configured asset
        (``fetch_balance``: free + used), then GW_RECONCILE_END: code 0 when complete, -1
        when the venue or the network failed part way. One answer per venue account asked
        for (``ANY_ID``: every account; an account with no client here gets an empty answer
        with code :data:`~gateways.binance.gateway.NO_VENUE_ACCOUNT`).
        """
        self.n_reconciles += 1
        await reconcile_each_account(self.link, rec, self.sessions, self._reconcile_account,
                                     NO_VENUE_ACCOUNT)

    async def _reconcile_account(self, rec: Any, sess: CcxtSession) -> None:
        ans = ReconcileAnswer(self.link, rec, sess.account_id)
        prefix = self.cfg.client_order_prefix
        ex = sess.ex
        code = 0
        try:
            for inst in self.cfg.instruments:
                cids: dict[str, str] = {}  # venue order id -> client order id
                for o in await ex.fetch_open_orders(inst.symbol):
                    cid = str(o.get("clientOrderId") or "")
                    oid = order_id_of(prefix, cid)
                    if not oid:
                        continue
                    venue_id = str(o.get("id") or "")
                    cids[venue_id] = cid
                    self.cids[cid] = oid  # the gateway may have restarted: follow it again
                    self.venue_ids[(sess.account_id, venue_id)] = oid
                    await ans.open_order(
                        oid, int(venue_id) if venue_id.isdigit() else 0, inst.id,
                        to_fixed(o.get("amount"), inst.qty_decimals),
                        to_fixed(o.get("filled"), inst.qty_decimals),
                        to_fixed(o.get("price"), inst.price_decimals),
                        int(OrderStatus.PARTIALLY_FILLED if o.get("filled")
                            else _STATUS.get(o.get("status") or "", OrderStatus.NEW)),
                        int(o.get("lastUpdateTimestamp") or o.get("timestamp") or 0)
                        * 1_000_000)
                trades = await ex.fetch_my_trades(inst.symbol, since=ans.since_ms, limit=1000)
                for t in trades:
                    venue_oid = str(t.get("order") or "")
                    cid = cids.get(venue_oid)
                    if cid is None:
                        o = await ex.fetch_order(venue_oid, inst.symbol)
                        cid = cids[venue_oid] = str(o.get("clientOrderId") or "")
                    oid = order_id_of(prefix, cid)
                    if not oid:
                        continue
                    f = self._fill_fields(inst, t)
                    await ans.fill(oid, f["exch_order_id"], inst.id, f["trade_id"],
                                   f["last_qty"], f["last_price"], f["fee"], f["fee_asset"],
                                   f["liquidity"], f["exch_ts_ns"])
            if self.assets:
                bal = await ex.fetch_balance()
                ts = int(bal.get("timestamp") or 0) * 1_000_000
                for name, (aid, dec) in sorted(self.assets.items()):
                    b = bal.get(name)
                    if not isinstance(b, dict):
                        continue
                    await ans.balance(aid, to_fixed(b.get("free"), dec),
                                      to_fixed(b.get("used"), dec), ts)
        except (NetworkError, ExchangeError, KeyError, ValueError, TypeError) as exc:
            code = -1
            log.warning("reconcile %d failed: %s", ans.request_id, type(exc).__name__)
        await ans.end(code)
