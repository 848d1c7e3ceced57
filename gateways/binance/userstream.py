"""Binance user data streams: one per venue account, its ``executionReport`` messages turned
into the engine's execution reports (fills deduplicated by trade id per account), and the REST
catch-up after every (re)connect (open orders and recent trades backfilled before the gateway
reports HEALTHY), including orders of ours placed before a restart. A part of
:class:`~gateways.binance.gateway.BinanceGateway` (its ``_query`` of an order, its report
helpers)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson

from oms_core.enums import Liquidity

from ..book import parse_fixed
from ..config import GatewayConfig, Instrument
from ..engine_link import ExecType, GatewayState, order_id_of
from .rest import BinanceAPIError
from .state import DETAIL_USER_STREAM, BoundedSet, OrderState, VenueSession, terms_of

log = logging.getLogger("gateways.binance")


class UserStream:
    """The user-data part of the gateway: each session's stream, and the orders
    (``orders``, by client order id; ``final_cids`` those ended) its reports update."""

    cfg: GatewayConfig
    sessions: dict[int, VenueSession]
    orders: dict[str, OrderState]
    final_cids: BoundedSet
    md: dict[str, Any]

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
        # only orders the venue had acknowledged before it was asked can be missing from its
        # answer because they ended; one whose submit is still in flight is told by that submit
        placed = {cid for cid, st in self.orders.items() if st.session is sess and st.acked}
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
        for cid in placed - open_cids:
            st = self.orders.get(cid)
            if st is not None and st.unknown_since_ms == 0:
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
            side=d["S"], venue=terms_of(inst, d["o"], d["p"], d["P"], d["f"]))
        log.info("following order %s again (placed before this gateway started)", cid)
        return st


__all__ = ["UserStream"]
