"""The replay venue: the simulated exchange's compiled matching engine around a bar's path.

:class:`BarVenue` holds one :class:`gateways.sim.matching.Book` per instrument (maker/taker
fees) and a liquidity provider whose quotes are rebuilt around each point of a bar's path
(open, the two extremes, close), so market orders pay the spread and walk the levels
(slippage), and resting limit orders fill as the path crosses them. It answers the engine's
GW_NEW_ORDER / GW_CANCEL / GW_REPLACE records with GW_EXEC_REPORT records and makes the
GW_MARKET_DATA records of its quotes; the replay driver and the paper harness both use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bindings.wire import records as wire
from bindings.wire.spec import ExecType, MsgType
from gateways.sim import constants as sc
from gateways.sim.ledger import Ledger
from gateways.sim.matching import Book
from oms_core.config import OmsConfig
from oms_core.enums import OrderType, Side, TimeInForce

__all__ = ["MARKET_DATA", "BarVenue"]

SIM_DECIMALS = 8  # the matching engine counts 1e-8 units
_DEEP = 10**17  # the venue's balances: the core checks money, the venue only matches

MARKET_DATA = wire.CODECS["GW_MARKET_DATA"]
_MD_PACK = MARKET_DATA.struct.pack  # header + body in layout order (the codec's own struct)
_MD_TYPE = int(MsgType.GW_MARKET_DATA)
_EXEC = wire.CODECS["GW_EXEC_REPORT"]
_EXEC_PACK = _EXEC.struct.pack
_EXEC_HEAD = (wire.MAGIC, wire.VERSION, 0, int(MsgType.GW_EXEC_REPORT), _EXEC.size, 0, 0)
_EXEC_AT = {name: k for k, name in enumerate(_EXEC.field_names)}


@dataclass(slots=True)
class _VenueOrder:
    oid: int  # engine order id
    account: int
    instrument: int
    side: int  # oms Side
    qty: int  # raw, total
    base_filled: int  # raw filled before the current book order (replaces)
    filled: int  # raw, total
    price: int = 0  # sim units; 0 for a market order (never rests)
    xid: int = 0  # the exchange order id reported (see BarVenue: ids the lazy quotes skip)


@dataclass(frozen=True, slots=True)
class _VenueInstrument:
    id: int
    base: int
    quote: int
    tick: int
    lot: int
    pmult: int  # sim units per raw price unit
    qmult: int  # sim units per raw quantity unit
    base_div: int  # sim units per raw unit of the base asset
    quote_div: int


class BarVenue:
    """The replay venue: one compiled matching :class:`Book` per instrument and a liquidity
    provider quoting ``levels`` levels per side around each price it is given.

    Parameters
    ----------
    cfg : OmsConfig
        Instruments, assets and the exchange's fees (maker / taker bps) and slippage (bps:
        the half spread, and the spacing of the levels).
    levels : int
        Price levels the provider quotes on each side.
    depth_lots : int
        Quantity per level in lots when the bar has no volume; with volume, a level holds
        ``volume // levels`` (at least one lot).
    lazy : bool
        Place the provider's quotes in the book only when they can matter (default). A new
        quote that cannot cross a resting user order is kept pending and placed just before
        the next user order reaches the book (or superseded unplaced by the next quote): the
        fills, prices, fees and queue priority are those of placing every quote at once, and
        the exchange order ids reported are too (each user order's id is its book id plus
        the ids the skipped quotes would have taken). ``False`` places every quote at once.
    """

    def __init__(self, cfg: OmsConfig, levels: int = 5, depth_lots: int = 100,
                 lazy: bool = True) -> None:
        self.levels = levels
        self.lazy = lazy
        self.depth_lots = depth_lots
        n_acc = min(cfg.engine.max_accounts, 64)
        self.lp = n_acc  # the liquidity provider's account at the venue
        self.ledger = Ledger(n_acc + 1, max(len(cfg.assets), 1))
        for a in range(n_acc + 1):
            for asset in range(len(cfg.assets)):
                self.ledger.deposit(a, asset, _DEEP)
        prec = {a.id: a.precision for a in cfg.assets.values()}
        for p in prec.values():
            if p > SIM_DECIMALS:
                raise ValueError(f"asset precision {p} above the venue's {SIM_DECIMALS}")
        self.books: dict[int, Book] = {}
        self.inst: dict[int, _VenueInstrument] = {}
        self.slip_bps: dict[int, int] = {}
        for i in cfg.instruments.values():
            ex = cfg.exchanges[i.exchange]
            base, quote = cfg.assets[i.base].id, cfg.assets[i.quote].id
            self.books[i.id] = Book(self.ledger, base, quote, ex.maker_fee_bps,
                                    ex.taker_fee_bps, 1 << 14, 4096, 64)
            self.inst[i.id] = _VenueInstrument(
                i.id, base, quote, i.tick, i.lot, 10 ** (SIM_DECIMALS - i.price_precision),
                10 ** (SIM_DECIMALS - i.qty_precision), 10 ** (SIM_DECIMALS - prec[base]),
                10 ** (SIM_DECIMALS - prec[quote]))
            self.slip_bps[i.id] = ex.slippage_bps
        self.lp_orders: dict[int, list[int]] = {i: [] for i in self.books}
        self.orders: dict[tuple[int, int], _VenueOrder] = {}  # (instrument, book id) -> order
        self.by_oid: dict[int, tuple[int, int]] = {}
        self.user_open: dict[int, int] = dict.fromkeys(self.books, 0)
        # open user orders per instrument (book id -> order): what a new quote could cross
        self.user: dict[int, dict[int, _VenueOrder]] = {i: {} for i in self.books}
        # lazy quotes: the quote not yet in the book (price, depth, half spread, ids it takes)
        self.pending: dict[int, tuple[int, int, int, int] | None] = dict.fromkeys(self.books)
        self.skipped: dict[int, int] = dict.fromkeys(self.books, 0)  # ids never taken
        self.n_quotes = 0  # quotes asked for
        self.n_placed = 0  # quotes placed in a book
        self.reports: list[bytes] = []
        self.now = 0
        self.n_fills = 0
        self.fees: dict[int, int] = {}

    # -- prices
    def half_spread(self, instrument: int, price: int) -> int:
        tick = self.inst[instrument].tick
        half = -(-price * self.slip_bps[instrument] // 10_000)
        return max(tick, -(-half // tick) * tick)

    def market_data(self, instrument: int, price: int, depth: int) -> bytes:
        """One GW_MARKET_DATA record for the provider's quotes around ``price``."""
        half = self.half_spread(instrument, price)
        now = self.now
        return _MD_PACK(wire.MAGIC, wire.VERSION, 0, _MD_TYPE, MARKET_DATA.size, 0, 0, now,
                        price - half, depth, price + half, depth, price, 0, now, now,
                        instrument, 0)

    def close_frames(self, inst: np.ndarray, close: np.ndarray, vol: np.ndarray,
                     t_close: np.ndarray) -> bytes:
        """GW_MARKET_DATA records of the quotes around every bar's close, built at once: the
        numpy twin of :meth:`market_data` (half spread and depth as :meth:`half_spread` and
        :meth:`depth` give them), stamped ``t_close``."""
        arr = np.zeros(len(inst), dtype=MARKET_DATA.dtype)
        arr["magic"] = wire.MAGIC
        arr["version"] = wire.VERSION
        arr["msg_type"] = _MD_TYPE
        arr["length"] = MARKET_DATA.size
        arr["send_ns"] = t_close
        half = np.zeros(len(inst), dtype=np.int64)
        depth = np.zeros(len(inst), dtype=np.int64)
        for i, vi in self.inst.items():
            sel = inst == i
            if not sel.any():
                continue
            bps = self.slip_bps[i]
            h = -(-close[sel] * bps // 10_000)
            h = -(-h // vi.tick) * vi.tick
            half[sel] = np.maximum(h, vi.tick)
            q = np.where(vol[sel] > 0, vol[sel] // self.levels,
                         self.depth_lots * vi.lot)
            depth[sel] = np.maximum(q // vi.lot * vi.lot, vi.lot)
        arr["bid"] = close - half
        arr["ask"] = close + half
        arr["bid_qty"] = depth
        arr["ask_qty"] = depth
        arr["last"] = close
        arr["exch_ts_ns"] = t_close
        arr["gw_ts_ns"] = t_close
        arr["instrument"] = inst
        return arr.tobytes()

    def depth(self, instrument: int, volume: int) -> int:
        lot = self.inst[instrument].lot
        q = volume // self.levels if volume > 0 else self.depth_lots * lot
        return max(lot, q // lot * lot)

    def quote(self, instrument: int, price: int, depth: int) -> None:
        """Replace the provider's quotes by ``levels`` levels per side around ``price``.

        New quotes that cross resting user orders trade with them (the user is the maker):
        that is how a resting limit order fills when the bar's path reaches it. Lazy venue:
        a quote that crosses nothing is only remembered (see the class docstring).
        """
        self.n_quotes += 1
        half = self.half_spread(instrument, price)
        if self.lazy:
            prev = self.pending[instrument]
            if prev is not None:  # superseded before it was placed: its ids are never taken
                self.skipped[instrument] += prev[3]
                self.pending[instrument] = None
            if not self._crosses(instrument, price, half):
                n = 0
                for k in range(1, self.levels + 1):
                    n += (price - k * half > 0) + (price + k * half > 0)
                self.pending[instrument] = (price, depth, half, n)
                return
        self._place(instrument, price, depth, half)

    def _crosses(self, instrument: int, price: int, half: int) -> bool:
        """Would quotes around ``price`` trade with a resting user order?"""
        orders = self.user[instrument]
        if not orders:
            return False
        pm = self.inst[instrument].pmult
        ask = (price + half) * pm  # the provider's best ask and bid
        bid = (price - half) * pm if price - half > 0 else 0
        for vo in orders.values():
            if vo.price <= 0:
                continue
            if vo.side == Side.BUY:
                if vo.price >= ask:
                    return True
            elif bid and vo.price <= bid:
                return True
        return False

    def _settle_quote(self, instrument: int) -> None:
        """Place the pending quote (before a user order reaches the book)."""
        p = self.pending[instrument]
        if p is not None:
            self.pending[instrument] = None
            self._place(instrument, p[0], p[1], p[2])

    def _place(self, instrument: int, price: int, depth: int, half: int) -> None:
        self.n_placed += 1
        book = self.books[instrument]
        vi = self.inst[instrument]
        lp_id = self.lp
        for bid in self.lp_orders[instrument]:
            book.cancel(bid, lp_id)
        lp: list[int] = []
        q = depth * vi.qmult
        pm = vi.pmult
        submit = book.submit
        for k in range(self.levels):
            for side, px in ((sc.SIDE_BUY, price - half - k * half),
                             (sc.SIDE_SELL, price + half + k * half)):
                if px <= 0:
                    continue
                r = submit(lp_id, side, sc.OT_LIMIT, sc.TIF_GTC, px * pm, q)
                if r > 0:
                    lp.append(r)
        self.lp_orders[instrument] = lp
        if self.user[instrument]:
            self._events(instrument)
        else:  # only the provider's own events: nothing to report
            book.clear_events()

    # -- orders from the engine
    def on_engine(self, rec: Any) -> None:
        """Handle one GW_NEW_ORDER / GW_CANCEL / GW_REPLACE record (decoded)."""
        name = type(rec).__name__
        if name == "GwNewOrder":
            self._new(rec)
        elif name == "GwCancel":
            self._cancel(rec)
        elif name == "GwReplace":
            self._replace(rec)

    def _report(self, **f: Any) -> None:
        # _EXEC.encode(0, 0, now, exch_ts_ns=now, gw_recv_ns=now, **f), without its checks
        now = self.now
        body = [0] * len(_EXEC_AT)
        body[_EXEC_AT["exch_ts_ns"]] = now
        body[_EXEC_AT["gw_recv_ns"]] = now
        at = _EXEC_AT
        for k, v in f.items():
            body[at[k]] = v
        self.reports.append(_EXEC_PACK(*_EXEC_HEAD, now, *body))

    def _new(self, r: Any) -> None:
        vi = self.inst.get(r.instrument)
        if vi is None:
            self._report(order_id=r.order_id, account=r.account, instrument=r.instrument,
                         exec_type=int(ExecType.REJECT), exch_code=-1121)
            return
        # the engine loop sends fired stops as MARKET / LIMIT already
        ot = r.order_type
        if ot == OrderType.MARKET:
            otype, price = sc.OT_MARKET, 0
        elif ot == OrderType.LIMIT:
            otype, price = sc.OT_LIMIT, r.price * vi.pmult
        else:  # a trigger at the venue (native stops): not modelled by the replay venue
            self._report(order_id=r.order_id, account=r.account, instrument=r.instrument,
                         exec_type=int(ExecType.REJECT), exch_code=-1013)
            return
        tif = {TimeInForce.IOC: sc.TIF_IOC, TimeInForce.FOK: sc.TIF_FOK}.get(
            TimeInForce(r.tif) if r.tif in (1, 2, 3, 4, 5) else TimeInForce.GTC, sc.TIF_GTC)
        self._submit(_VenueOrder(r.order_id, r.account, r.instrument, r.side, r.quantity, 0, 0,
                                 price), otype, tif, price, r.quantity)

    def _register(self, vo: _VenueOrder, bid: int) -> None:
        i = vo.instrument
        vo.xid = bid + self.skipped[i]  # the id this order has when every quote is placed
        self.orders[(i, bid)] = vo
        self.user[i][bid] = vo
        self.by_oid[vo.oid] = (i, bid)
        self.user_open[i] += 1

    def _submit(self, vo: _VenueOrder, otype: int, tif: int, price: int, qty: int) -> None:
        vi = self.inst[vo.instrument]
        book = self.books[vo.instrument]
        self._settle_quote(vo.instrument)
        side = sc.SIDE_BUY if vo.side == Side.BUY else sc.SIDE_SELL
        # register before matching: the events of the submit name the new book id
        bid = book.next_order_id
        self._register(vo, bid)
        r = book.submit(vo.account, side, otype, tif, price, qty * vi.qmult)
        if r <= 0:
            self._forget(vo.instrument, bid)
            book.clear_events()
            self._report(order_id=vo.oid, account=vo.account, instrument=vo.instrument,
                         exec_type=int(ExecType.REJECT), exch_code=-2010)
            return
        self._events(vo.instrument)

    def _forget(self, instrument: int, bid: int) -> None:
        vo = self.orders.pop((instrument, bid), None)
        if vo is not None:
            del self.user[instrument][bid]
            self.user_open[instrument] -= 1
            if self.by_oid.get(vo.oid) == (instrument, bid):
                del self.by_oid[vo.oid]

    def _cancel(self, r: Any) -> None:
        key = self.by_oid.get(r.order_id)
        if key is None or self.books[key[0]].cancel(key[1], r.account) != 0:
            self._report(order_id=r.order_id, account=r.account, instrument=r.instrument,
                         exec_type=int(ExecType.CANCEL_REJECT), exch_code=-2011)
            return
        self._events(key[0])

    def _replace(self, r: Any) -> None:
        key = self.by_oid.get(r.order_id)
        vo = self.orders.get(key) if key is not None else None
        if vo is None or r.quantity <= vo.filled or r.price <= 0:
            self._report(order_id=r.order_id, account=r.account, instrument=r.instrument,
                         exec_type=int(ExecType.REPLACE_REJECT), exch_code=-2011)
            return
        book = self.books[key[0]]
        self._settle_quote(key[0])
        book.cancel(key[1], r.account)
        book.clear_events()  # the cancel is part of the replace: no CANCELED report
        self._forget(*key)
        vi = self.inst[vo.instrument]
        self._report(order_id=vo.oid, account=vo.account, instrument=vo.instrument,
                     exec_type=int(ExecType.REPLACED), price=r.price, quantity=r.quantity,
                     cum_qty=vo.filled, leaves_qty=r.quantity - vo.filled)
        nvo = _VenueOrder(vo.oid, vo.account, vo.instrument, vo.side, r.quantity, vo.filled,
                          vo.filled, r.price * vi.pmult)
        self._register(nvo, book.next_order_id)
        side = sc.SIDE_BUY if vo.side == Side.BUY else sc.SIDE_SELL
        book.submit(vo.account, side, sc.OT_LIMIT, sc.TIF_GTC, r.price * vi.pmult,
                    (r.quantity - vo.filled) * vi.qmult)
        book.clear_events()  # its NEW is not reported: the REPLACED above said it
        self._events(vo.instrument)

    # -- book events -> execution reports
    def _events(self, instrument: int) -> None:
        book = self.books[instrument]
        if book.n_events == 0:
            return
        vi = self.inst[instrument]
        user = self.user[instrument]
        lp_id = self.lp
        for (kind, bid, account, side, status, trade_id, price, qty, _quote, commission,
             _filled, _cq, _counter, maker) in book.events(True):
            if account == lp_id:
                continue
            vo = user.get(bid)
            if vo is None:
                continue
            if kind == sc.EV_NEW:
                self._report(order_id=vo.oid, exch_order_id=vo.xid, account=vo.account,
                             instrument=instrument, exec_type=int(ExecType.ACK))
            elif kind == sc.EV_TRADE:
                q = qty // vi.qmult
                vo.filled += q
                buy = side == sc.SIDE_BUY
                fee_asset = vi.base if buy else vi.quote
                fee = commission // (vi.base_div if buy else vi.quote_div)
                self.n_fills += 1
                self.fees[fee_asset] = self.fees.get(fee_asset, 0) + fee
                self._report(order_id=vo.oid, exch_order_id=vo.xid, trade_id=trade_id * 2 + side,
                             last_qty=q, last_price=price // vi.pmult, fee=fee,
                             cum_qty=vo.filled, leaves_qty=vo.qty - vo.filled,
                             account=vo.account, instrument=instrument, fee_asset=fee_asset,
                             exec_type=int(ExecType.FILL), liquidity=1 if maker else 2)
            elif kind in (sc.EV_CANCELED, sc.EV_EXPIRED):
                et = ExecType.CANCELED if kind == sc.EV_CANCELED else ExecType.EXPIRED
                self._report(order_id=vo.oid, exch_order_id=vo.xid, cum_qty=vo.filled,
                             account=vo.account, instrument=instrument, exec_type=int(et))
            if status in sc.TERMINAL:
                self._forget(instrument, bid)

    def take_reports(self) -> bytes:
        """The execution reports since the last call, as one frame (b"" when none)."""
        if not self.reports:
            return b""
        out = b"".join(self.reports)
        self.reports.clear()
        return out
