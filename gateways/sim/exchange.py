"""Exchange state around the compiled books: symbols, accounts, order records, reports.

This is the cold layer: it validates Binance-style requests, calls ``Book.submit``/``cancel``,
turns the engine's events into Binance-shaped payloads (order responses, ``executionReport``,
``outboundAccountPosition``, ``trade``, ``bookTicker``) and hands them to listeners.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateways.sim import constants as c
from gateways.sim.config import AccountConfig, SimConfig, SymbolConfig
from gateways.sim.ledger import Ledger
from gateways.sim.matching import Book

MAX_RECORDS_PER_ACCOUNT = 10_000
MAX_TRADES_PER_ACCOUNT = 10_000
MAX_PUBLIC_TRADES = 1_000


class SimError(Exception):
    """A Binance-shaped error: HTTP status, code and message."""

    def __init__(self, code: int, msg: str, status: int = 400,
                 data: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg
        self.status = status
        self.data = data  # cancelReplace: the outcome of each half


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class OrderTerms:
    """A new order's checked terms, before it has a client order id or a record."""

    symbol: str
    side: int
    otype: int
    tif: int
    price: int
    qty: int
    stop_price: int
    stp: int
    resp_type: str
    trailing_delta: int = 0


@dataclass(slots=True)
class OrderRecord:
    symbol: str
    order_id: int
    client_order_id: str
    account: int
    side: int
    otype: int
    tif: int
    price: int
    qty: int
    stop_price: int
    stp: int
    time: int
    status: int = c.ST_NEW
    trailing_delta: int = 0
    filled: int = 0
    cum_quote: int = 0
    update_time: int = 0
    working: bool = True
    fills: list[dict[str, Any]] = field(default_factory=list)
    # what filled before the book that holds it now got it (an order restored from a saved
    # state rests again with what was left): the book's counts start from these
    filled_before: int = 0
    quote_before: int = 0

    def to_query(self) -> dict[str, Any]:
        """GET /api/v3/order shape."""
        return {
            "symbol": self.symbol, "orderId": self.order_id, "orderListId": -1,
            "clientOrderId": self.client_order_id, "price": c.fmt(self.price),
            "origQty": c.fmt(self.qty), "executedQty": c.fmt(self.filled),
            "cummulativeQuoteQty": c.fmt(self.cum_quote),
            "status": c.STATUS_NAMES[self.status], "timeInForce": c.TIF_NAMES[self.tif],
            "type": c.ORDER_TYPE_NAMES[self.otype], "side": c.SIDE_NAMES[self.side],
            "stopPrice": c.fmt(self.stop_price), "icebergQty": "0.00000000",
            **({"trailingDelta": self.trailing_delta} if self.trailing_delta else {}),
            "time": self.time, "updateTime": self.update_time or self.time,
            "isWorking": self.working, "workingTime": self.time if self.working else -1,
            "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": c.STP_NAMES[self.stp],
        }

    def to_response(self, resp_type: str, transact_time: int) -> dict[str, Any]:
        """POST /api/v3/order shape for newOrderRespType ACK / RESULT / FULL."""
        out: dict[str, Any] = {
            "symbol": self.symbol, "orderId": self.order_id, "orderListId": -1,
            "clientOrderId": self.client_order_id, "transactTime": transact_time,
        }
        if resp_type == "ACK":
            return out
        out.update({
            "price": c.fmt(self.price), "origQty": c.fmt(self.qty),
            "executedQty": c.fmt(self.filled), "origQuoteOrderQty": "0.00000000",
            "cummulativeQuoteQty": c.fmt(self.cum_quote),
            "status": c.STATUS_NAMES[self.status], "timeInForce": c.TIF_NAMES[self.tif],
            "type": c.ORDER_TYPE_NAMES[self.otype], "side": c.SIDE_NAMES[self.side],
            "workingTime": transact_time if self.working else -1,
            "selfTradePreventionMode": c.STP_NAMES[self.stp],
        })
        if self.stop_price:
            out["stopPrice"] = c.fmt(self.stop_price)
        if resp_type == "FULL":
            out["fills"] = list(self.fills)
        return out


@dataclass(slots=True)
class Account:
    index: int
    cfg: AccountConfig
    stp: int
    records: OrderedDict[tuple[str, int], OrderRecord] = field(default_factory=OrderedDict)
    by_client_id: dict[tuple[str, str], int] = field(default_factory=dict)
    trades: deque[dict[str, Any]] = field(
        default_factory=lambda: deque(maxlen=MAX_TRADES_PER_ACCOUNT))
    update_time: int = 0


class Market:
    """One symbol: its book, its config, and its recent public trades."""

    def __init__(self, cfg: SymbolConfig, book: Book) -> None:
        self.cfg = cfg
        self.book = book
        self.trades: deque[dict[str, Any]] = deque(maxlen=MAX_PUBLIC_TRADES)
        self.last_top: tuple[Any, Any] = (None, None)


# listener signatures: (account_index, payload) and (stream_name, payload)
UserListener = Callable[[int, dict[str, Any]], None]
StreamListener = Callable[[str, dict[str, Any]], None]


class Exchange:
    """All symbols and accounts of one simulated exchange.

    Account indices ``0..n-1`` are the configured users; index ``n`` is the pool of
    "other participants" driven by the synthetic market.
    """

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        assets: list[str] = []
        for s in cfg.symbols:
            for a in (s.base, s.quote):
                if a not in assets:
                    assets.append(a)
        for acct in cfg.accounts:
            for a in acct.balances:
                if a not in assets:
                    assets.append(a)
        self.assets = assets
        self.asset_index = {a: i for i, a in enumerate(assets)}
        self.sim_account = len(cfg.accounts)
        self.ledger = Ledger(len(cfg.accounts) + 1, len(assets))
        self.markets: dict[str, Market] = {}
        for s in cfg.symbols:
            book = Book(self.ledger, self.asset_index[s.base], self.asset_index[s.quote],
                        maker_bps=s.maker_bps, taker_bps=s.taker_bps, max_orders=cfg.max_orders,
                        first_id=cfg.first_id)
            self.markets[s.symbol] = Market(s, book)
        self.accounts: list[Account] = []
        self.by_key: dict[str, Account] = {}
        for i, a in enumerate(cfg.accounts):
            acct = Account(i, a, c.STP_MODES[a.stp])
            self.accounts.append(acct)
            self.by_key[a.api_key] = acct
            for asset, amount in a.balances.items():
                self.ledger.deposit(i, self.asset_index[asset], amount)
        self.user_listeners: list[UserListener] = []
        self.stream_listeners: list[StreamListener] = []

    # ------------------------------------------------------------------ lookups ----

    def market(self, symbol: str | None) -> Market:
        if not symbol:
            raise SimError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, "
                                  "or malformed.")
        m = self.markets.get(symbol.upper())
        if m is None:
            raise SimError(-1121, "Invalid symbol.")
        return m

    def balances(self, account: int) -> list[dict[str, str]]:
        return [{"asset": a, "free": c.fmt(self.ledger.free(account, i)),
                 "locked": c.fmt(self.ledger.locked(account, i))}
                for i, a in enumerate(self.assets)]

    # ------------------------------------------------------------------- orders ----

    def _check_filters(self, m: Market, otype: int, price: int, qty: int, stop: int) -> None:
        s = m.cfg
        for p in (price, stop):
            if p and p % s.tick_size:
                raise SimError(-1013, "Filter failure: PRICE_FILTER")
        if qty < s.min_qty or qty > s.max_qty or qty % s.step_size:
            raise SimError(-1013, "Filter failure: LOT_SIZE")
        ref = price or stop or m.book.last_price or s.initial_price
        if ref * qty // c.SCALE < s.min_notional:
            raise SimError(-1013, "Filter failure: NOTIONAL")

    def place_order(self, account: int, symbol: str, side: str, otype: str, qty: str | None,
                    price: str | None = None, tif: str | None = None,
                    stop_price: str | None = None, client_order_id: str | None = None,
                    stp: str | None = None, resp_type: str | None = None,
                    trailing_delta: str | None = None) -> dict[str, Any]:
        """Validate and submit a user order; return the POST /api/v3/order response."""
        terms = self.order_terms(account, symbol, side, otype, qty, price, tif, stop_price, stp,
                                 resp_type, trailing_delta)
        return self.submit_terms(account, terms, client_order_id)

    def order_terms(self, account: int, symbol: str, side: str, otype: str, qty: str | None,
                    price: str | None = None, tif: str | None = None,
                    stop_price: str | None = None, stp: str | None = None,
                    resp_type: str | None = None,
                    trailing_delta: str | None = None) -> OrderTerms:
        """Check a new order's parameters and filters (nothing is changed); raise SimError."""
        m = self.market(symbol)
        if side not in c.SIDES:
            raise SimError(-1117 if side else -1102, "Invalid side." if side else
                           "Mandatory parameter 'side' was not sent, was empty/null, or malformed.")
        if otype not in c.ORDER_TYPES:
            raise SimError(-1116 if otype else -1102, "Invalid orderType." if otype else
                           "Mandatory parameter 'type' was not sent, was empty/null, or malformed.")
        ot = c.ORDER_TYPES[otype]
        if ot in (c.OT_LIMIT, c.OT_STOP_LOSS_LIMIT, c.OT_TAKE_PROFIT_LIMIT):
            if tif is None:
                raise SimError(-1102, "Mandatory parameter 'timeInForce' was not sent, was "
                                      "empty/null, or malformed.")
            if tif not in c.TIFS:
                raise SimError(-1115, "Invalid timeInForce.")
        elif tif is not None:
            raise SimError(-1106, "Parameter 'timeInForce' sent when not required.")
        needs_price = ot not in (c.OT_MARKET, c.OT_STOP_LOSS, c.OT_TAKE_PROFIT)
        delta = self._trailing_delta(ot, trailing_delta, stop_price)
        needs_stop = ot >= c.OT_STOP_LOSS and not delta
        try:
            q = c.to_fixed(qty) if qty is not None else 0
            p = c.to_fixed(price) if price is not None and needs_price else 0
            sp = c.to_fixed(stop_price) if stop_price is not None and needs_stop else 0
        except ValueError:
            raise SimError(-1100, "Illegal characters found in a parameter.") from None
        for name, val, need in (("quantity", q, True), ("price", p, needs_price),
                                ("stopPrice", sp, needs_stop)):
            if need and val <= 0:
                raise SimError(-1102, f"Mandatory parameter '{name}' was not sent, was "
                                      "empty/null, or malformed.")
        acct = self.accounts[account]
        stp_mode = acct.stp if stp is None else c.STP_MODES.get(stp, -1)
        if stp_mode < 0:
            raise SimError(-1100, "Illegal characters found in parameter "
                                  "'selfTradePreventionMode'.")
        resp_type = resp_type or ("FULL" if ot in (c.OT_MARKET, c.OT_LIMIT) else "ACK")
        if resp_type not in ("ACK", "RESULT", "FULL"):
            raise SimError(-1136, "Invalid newOrderRespType.")
        self._check_filters(m, ot, p, q, sp)
        return OrderTerms(m.cfg.symbol, c.SIDES[side], ot, c.TIFS[tif] if tif else c.TIF_GTC,
                          p, q, sp, stp_mode, resp_type, delta)

    @staticmethod
    def _trailing_delta(ot: int, text: str | None, stop_price: str | None) -> int:
        """``trailingDelta`` in BIPS (10..2000, Binance's TRAILING_DELTA filter), 0 if absent.
        Only STOP_LOSS / STOP_LOSS_LIMIT without an activation ``stopPrice`` are modelled."""
        if text is None:
            return 0
        if ot not in (c.OT_STOP_LOSS, c.OT_STOP_LOSS_LIMIT):
            raise SimError(-1106, "Parameter 'trailingDelta' sent when not required.")
        if stop_price is not None:
            raise SimError(-1013, "trailingDelta with an activation stopPrice is not "
                                  "supported by the simulator.")
        try:
            delta = int(text)
        except ValueError:
            raise SimError(-1100, "Illegal characters found in parameter "
                                  "'trailingDelta'.") from None
        if not 10 <= delta <= 2000:
            raise SimError(-1013, "Filter failure: TRAILING_DELTA")
        return delta

    def submit_terms(self, account: int, terms: OrderTerms,
                     client_order_id: str | None) -> dict[str, Any]:
        """Submit checked terms under a client order id; return the POST /api/v3/order
        response (raise SimError -2010 on a duplicate id or a refusal by the book)."""
        m = self.markets[terms.symbol]
        acct = self.accounts[account]
        if client_order_id and (m.cfg.symbol, client_order_id) in acct.by_client_id:
            prev = acct.by_client_id[(m.cfg.symbol, client_order_id)]
            rec = acct.records.get((m.cfg.symbol, prev))
            if rec is not None and rec.status not in c.TERMINAL:
                raise SimError(-2010, "Duplicate order sent.")
        t = now_ms()
        book = m.book
        book.clear_events()
        # the record must exist before the engine reports on it
        oid = book.next_order_id
        rec = OrderRecord(m.cfg.symbol, oid, client_order_id or f"sim{account}x{oid}", account,
                          terms.side, terms.otype, terms.tif, terms.price, terms.qty,
                          terms.stop_price, terms.stp, t, update_time=t,
                          trailing_delta=terms.trailing_delta)
        self._add_record(acct, rec)
        res = book.submit(account, terms.side, terms.otype, terms.tif, terms.price, terms.qty,
                          terms.stop_price, terms.stp, terms.trailing_delta)
        if res < 0:
            self._drop_record(acct, rec)
            book.clear_events()
            raise SimError(-2010, REJECT_MESSAGES.get(-res, "New order rejected."))
        self.dispatch(m, t)
        return rec.to_response(terms.resp_type, t)

    def cancel_replace(self, account: int, symbol: str, mode: str | None,
                       cancel_order_id: str | None, cancel_client_id: str | None,
                       terms: OrderTerms, new_client_order_id: str | None) -> dict[str, Any]:
        """POST /api/v3/order/cancelReplace: cancel one order, then place ``terms``.

        The new order's terms are checked before anything happens (a plain error then).
        ``STOP_ON_FAILURE``: a failed cancel leaves the new order NOT_ATTEMPTED (-2022);
        ``ALLOW_FAILURE``: the new order is attempted anyway. One side failing answers -2021
        (HTTP 409), both -2022 (HTTP 400); every answer carries ``cancelResult``,
        ``newOrderResult``, ``cancelResponse`` and ``newOrderResponse``.
        """
        if mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
            raise SimError(-1102 if not mode else -1100, "Mandatory parameter "
                           "'cancelReplaceMode' was not sent, was empty/null, or malformed.")
        if cancel_order_id is None and cancel_client_id is None:
            raise SimError(-1102, "Param 'cancelOrigClientOrderId' or 'cancelOrderId' must be "
                                  "sent, but both were empty/null!")
        out: dict[str, Any] = {"cancelResult": "SUCCESS", "newOrderResult": "SUCCESS",
                               "cancelResponse": None, "newOrderResponse": None}
        try:
            out["cancelResponse"] = self.cancel_order(account, symbol, cancel_order_id,
                                                      cancel_client_id)
        except SimError as e:
            out["cancelResult"] = "FAILURE"
            out["cancelResponse"] = {"code": e.code, "msg": e.msg}
            if mode == "STOP_ON_FAILURE":
                out["newOrderResult"] = "NOT_ATTEMPTED"
                raise SimError(-2022, "Order cancel-replace failed.", 400, out) from None
        try:
            out["newOrderResponse"] = self.submit_terms(account, terms, new_client_order_id)
        except SimError as e:
            out["newOrderResult"] = "FAILURE"
            out["newOrderResponse"] = {"code": e.code, "msg": e.msg}
        if out["cancelResult"] == "FAILURE" and out["newOrderResult"] == "FAILURE":
            raise SimError(-2022, "Order cancel-replace failed.", 400, out)
        if "FAILURE" in (out["cancelResult"], out["newOrderResult"]):
            raise SimError(-2021, "Order cancel-replace partially failed.", 409, out)
        return out

    def _add_record(self, acct: Account, rec: OrderRecord) -> None:
        acct.records[(rec.symbol, rec.order_id)] = rec
        acct.by_client_id[(rec.symbol, rec.client_order_id)] = rec.order_id
        if len(acct.records) > MAX_RECORDS_PER_ACCOUNT:
            # forget the oldest finished order (open ones stay)
            for key, old in acct.records.items():
                if old.status in c.TERMINAL:
                    del acct.records[key]
                    acct.by_client_id.pop((old.symbol, old.client_order_id), None)
                    break

    def _drop_record(self, acct: Account, rec: OrderRecord) -> None:
        acct.records.pop((rec.symbol, rec.order_id), None)
        acct.by_client_id.pop((rec.symbol, rec.client_order_id), None)

    def find_order(self, account: int, symbol: str, order_id: str | None,
                   client_id: str | None) -> OrderRecord:
        m = self.market(symbol)
        acct = self.accounts[account]
        if order_id is None and client_id is None:
            raise SimError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but "
                                  "both were empty/null!")
        if order_id is not None:
            try:
                oid = int(order_id)
            except ValueError:
                raise SimError(-1100, "Illegal characters found in parameter 'orderId'.") from None
        else:
            oid = acct.by_client_id.get((m.cfg.symbol, client_id or ""), -1)
        rec = acct.records.get((m.cfg.symbol, oid))
        if rec is None:
            raise SimError(-2013, "Order does not exist.")
        return rec

    def cancel_order(self, account: int, symbol: str, order_id: str | None,
                     client_id: str | None) -> dict[str, Any]:
        """Cancel; return the DELETE /api/v3/order response."""
        try:
            rec = self.find_order(account, symbol, order_id, client_id)
        except SimError as e:
            if e.code == -2013:
                raise SimError(-2011, "Unknown order sent.") from None
            raise
        m = self.markets[rec.symbol]
        m.book.clear_events()
        if rec.status in c.TERMINAL or m.book.cancel(rec.order_id, account) != 0:
            raise SimError(-2011, "Unknown order sent.")
        t = now_ms()
        self.dispatch(m, t)
        return {
            "symbol": rec.symbol, "origClientOrderId": rec.client_order_id,
            "orderId": rec.order_id, "orderListId": -1, "clientOrderId": rec.client_order_id,
            "transactTime": t, "price": c.fmt(rec.price), "origQty": c.fmt(rec.qty),
            "executedQty": c.fmt(rec.filled), "cummulativeQuoteQty": c.fmt(rec.cum_quote),
            "status": c.STATUS_NAMES[rec.status], "timeInForce": c.TIF_NAMES[rec.tif],
            "type": c.ORDER_TYPE_NAMES[rec.otype], "side": c.SIDE_NAMES[rec.side],
            "selfTradePreventionMode": c.STP_NAMES[rec.stp],
        }

    def open_orders(self, account: int, symbol: str | None) -> list[OrderRecord]:
        sym = self.market(symbol).cfg.symbol if symbol else None
        return [r for r in self.accounts[account].records.values()
                if r.status not in c.TERMINAL and (sym is None or r.symbol == sym)]

    # ------------------------------------------------------ other participants ----

    def sim_submit(self, symbol: str, side: int, otype: int, tif: int, price: int,
                   qty: int) -> int:
        """Submit an order for the synthetic participants (no record, no user report)."""
        m = self.markets[symbol]
        m.book.clear_events()
        res = m.book.submit(self.sim_account, side, otype, tif, price, qty, 0, c.STP_NONE)
        self.dispatch(m, now_ms())
        return res

    def sim_cancel(self, symbol: str, order_id: int) -> int:
        m = self.markets[symbol]
        m.book.clear_events()
        res = m.book.cancel(order_id, self.sim_account)
        self.dispatch(m, now_ms())
        return res

    # ----------------------------------------------------------------- reports ----

    def dispatch(self, m: Market, t: int) -> None:
        """Turn the book's buffered events into records, reports and stream payloads."""
        events = m.book.events()
        sym = m.cfg.symbol
        base, quote = m.cfg.base, m.cfg.quote
        touched: set[int] = set()
        for (kind, oid, account, side, status, trade_id, price, qty, quote_qty, fee, filled,
             cum_quote, counter, is_maker) in events:
            if kind == c.EV_TRADE and not is_maker:
                buyer_maker = side == c.SIDE_SELL
                trade = {"id": trade_id, "price": c.fmt(price), "qty": c.fmt(qty),
                         "quoteQty": c.fmt(quote_qty), "time": t, "isBuyerMaker": buyer_maker,
                         "isBestMatch": True}
                m.trades.append(trade)
                self._publish(f"{sym.lower()}@trade", {
                    "e": "trade", "E": t, "s": sym, "t": trade_id, "p": trade["price"],
                    "q": trade["qty"], "T": t, "m": buyer_maker, "M": True})
            if account == self.sim_account:
                continue
            acct = self.accounts[account]
            rec = acct.records.get((sym, oid))
            if rec is None:
                continue
            touched.add(account)
            rec.status = status
            rec.filled = rec.filled_before + filled
            rec.cum_quote = rec.quote_before + cum_quote
            rec.update_time = t
            if kind == c.EV_TRIGGERED:
                rec.working = True
            elif kind == c.EV_NEW and rec.otype >= c.OT_STOP_LOSS:
                rec.working = False
            fee_asset = base if side == c.SIDE_BUY else quote
            if kind == c.EV_TRADE:
                rec.fills.append({"price": c.fmt(price), "qty": c.fmt(qty),
                                  "commission": c.fmt(fee), "commissionAsset": fee_asset,
                                  "tradeId": trade_id})
                acct.trades.append({
                    "symbol": sym, "id": trade_id, "orderId": oid, "orderListId": -1,
                    "price": c.fmt(price), "qty": c.fmt(qty), "quoteQty": c.fmt(quote_qty),
                    "commission": c.fmt(fee), "commissionAsset": fee_asset, "time": t,
                    "isBuyer": side == c.SIDE_BUY, "isMaker": bool(is_maker),
                    "isBestMatch": True})
            report = {
                "e": "executionReport", "E": t, "s": sym, "c": rec.client_order_id,
                "S": c.SIDE_NAMES[side], "o": c.ORDER_TYPE_NAMES[rec.otype],
                "f": c.TIF_NAMES[rec.tif], "q": c.fmt(rec.qty), "p": c.fmt(rec.price),
                "P": c.fmt(rec.stop_price), "F": "0.00000000", "g": -1,
                "C": rec.client_order_id if kind == c.EV_CANCELED else "",
                "x": c.EXEC_TYPES[kind], "X": c.STATUS_NAMES[status], "r": "NONE", "i": oid,
                "l": c.fmt(qty), "z": c.fmt(rec.filled), "L": c.fmt(price),
                "n": c.fmt(fee), "N": fee_asset if kind == c.EV_TRADE else None, "T": t,
                "t": trade_id, "I": 0, "w": rec.working and status in (
                    c.ST_NEW, c.ST_PARTIALLY_FILLED), "m": bool(is_maker), "M": False,
                "O": rec.time, "Z": c.fmt(rec.cum_quote), "Y": c.fmt(quote_qty),
                "Q": "0.00000000", "W": rec.time, "V": c.STP_NAMES[rec.stp]}
            if kind == c.EV_STP:
                report["v"] = counter
            if rec.trailing_delta:
                report["d"] = rec.trailing_delta
            self._user(account, report)
        for account in touched:
            acct = self.accounts[account]
            acct.update_time = t
            self._user(account, {
                "e": "outboundAccountPosition", "E": t, "u": t,
                "B": [{"a": a, "f": c.fmt(self.ledger.free(account, self.asset_index[a])),
                       "l": c.fmt(self.ledger.locked(account, self.asset_index[a]))}
                      for a in (base, quote)]})
        top = (m.book.best(c.SIDE_BUY), m.book.best(c.SIDE_SELL))
        if top != m.last_top:
            m.last_top = top
            b, a = top
            self._publish(f"{sym.lower()}@bookTicker", {
                "u": m.book.update_id, "s": sym,
                "b": c.fmt(b[0]) if b else "0.00000000", "B": c.fmt(b[1]) if b else "0.00000000",
                "a": c.fmt(a[0]) if a else "0.00000000", "A": c.fmt(a[1]) if a else "0.00000000"})

    def _publish(self, stream: str, payload: dict[str, Any]) -> None:
        for fn in self.stream_listeners:
            fn(stream, payload)

    def _user(self, account: int, payload: dict[str, Any]) -> None:
        for fn in self.user_listeners:
            fn(account, payload)


REJECT_MESSAGES = {
    c.REJ_BAD_PARAM: "New order rejected.",
    c.REJ_INSUFFICIENT_BALANCE: "Account has insufficient balance for requested action.",
    c.REJ_WOULD_TAKE: "Order would immediately match and take.",
    c.REJ_WOULD_TRIGGER: "Order would trigger immediately.",
    c.REJ_FULL: "Too many open orders.",
}
