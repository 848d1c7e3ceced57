"""Binance orders: each GW_NEW_ORDER / GW_CANCEL / GW_REPLACE of the engine sent over signed
REST on the session of its account (refused when that account has no session here, never
sent on another account's keys), with the engine's order id in ``newClientOrderId``. A
request whose outcome is unknown (timeout, 5xx, dropped connection) leaves the order UNKNOWN;
it is queried by ``origClientOrderId`` until resolved and never re-sent blind; cancels and
queries that meet a rate limit are retried until the venue answers. A part of
:class:`~gateways.binance.gateway.BinanceGateway` (its report helpers, its REST trade
catch-up)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from oms_core.backoff import Backoff
from oms_core.enums import OrderStatus, Side

from ..book import format_fixed, parse_fixed
from ..config import GatewayConfig, Instrument
from ..engine_link import EngineLink, ExecType, serve_orders
from ..ratelimit import Banned
from .rest import BinanceAPIError, OutcomeUnknown, RateLimited
from .state import (
    NO_VENUE_ACCOUNT,
    OPEN_STATUSES,
    STATUS_MAP,
    BoundedSet,
    OrderState,
    VenueSession,
    venue_terms,
)

log = logging.getLogger("gateways.binance")


class OrderRouting:
    """The order part of the gateway: the engine's order records in, venue calls out, the
    live orders (``orders``) and the retry loop of those in doubt."""

    cfg: GatewayConfig
    link: EngineLink
    sessions: dict[int, VenueSession]
    by_id: dict[int, Instrument]
    md: dict[str, Any]
    orders: dict[str, OrderState]
    final_cids: BoundedSet

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
            if STATUS_MAP.get(o.get("status", "")) not in OPEN_STATUSES:
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
        status = STATUS_MAP.get(o.get("status", ""), OrderStatus.NEW)
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


__all__ = ["OrderRouting"]
