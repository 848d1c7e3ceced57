"""Binance reconciliation after an engine restart: one GW_RECONCILE answered from the venue
over REST, per venue account. A part of :class:`~gateways.binance.gateway.BinanceGateway`."""

from __future__ import annotations

import logging
from typing import Any

from oms_core.enums import Liquidity, OrderStatus

from ..book import parse_fixed
from ..config import GatewayConfig
from ..engine_link import EngineLink, ReconcileAnswer, order_id_of, reconcile_each_account
from ..ratelimit import Banned
from .rest import BinanceAPIError, OutcomeUnknown, RateLimited
from .state import NO_VENUE_ACCOUNT, STATUS_MAP, OrderState, VenueSession

log = logging.getLogger("gateways.binance")


class Reconciliation:
    """The reconciliation part of the gateway (``n_reconciles`` counts the requests)."""

    cfg: GatewayConfig
    link: EngineLink
    sessions: dict[int, VenueSession]
    orders: dict[str, OrderState]
    assets: dict[str, tuple[int, int]]
    n_reconciles: int

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
                        int(STATUS_MAP.get(o.get("status", ""), OrderStatus.NEW)),
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


__all__ = ["Reconciliation"]
