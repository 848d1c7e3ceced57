"""Replay mode: historical bars and signals through the engine, on a simulated clock.

``python -m oms_core.replay --config oms.toml --bars bars.parquet --signals signals.csv
[--out replay.duckdb] [--parquet DIR]`` (also ``oms replay``).

Live, paper and replay drive the same engine: every input here goes through the engine's one
entry point (:class:`oms_core.engine.Engine` and its compiled ``EngineLoop``:
``apply_input`` for signals and engine-internal inputs, ``on_gateway_frame`` for venue reports
and market data). Only the clock and the gateway differ:

* the clock is the data: bar timestamps (and signal timestamps) are the engine's receive
  times; nothing reads the wall clock, so the same input gives the same output, bit for bit
  (the wall-clock send stamps the engine writes into its records are replaced by the
  simulated time before anything is stored or hashed);
* the gateway is :class:`BarVenue`: the simulated exchange's compiled matching engine
  (:class:`gateways.sim.matching.Book`, with maker/taker fees) with a liquidity provider whose
  quotes are rebuilt around each point of a bar's path (open, the two extremes, close), so
  market orders pay the spread and walk the levels (slippage), and resting limit orders fill
  as the path crosses them.

Speed without changing a bit (``Replayer(fast=True)``, the default; ``fast=False`` is the
step-by-step reference it is tested against): spans of bar times with no live order and no
signal go to the engine as one market-data frame, and the venue places a quote in its book
only when it can matter (see :meth:`Replayer._quiet` and :class:`BarVenue`).

Results go to DuckDB through the writer's own code (:class:`writer.store.Store`,
:class:`writer.drain.Batcher`: the same tables as live) plus two small tables,
``replay_summary`` (final position, fees and P&L per account and instrument) and
``replay_run`` (counts and the digest of every event record). See docs/replay.md.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import struct
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from bindings.wire import records as wire
from bindings.wire.spec import ANY_ID, ExecType, MsgType, Role
from gateways.sim import constants as sc
from gateways.sim.matching import Book, Ledger
from oms_core.config import OmsConfig, load_config
from oms_core.engine import KIND_MARK_TO_MARKET, KIND_START_OF_DAY, KIND_TIMER, Engine
from oms_core.engine.config import EngineConfig, build_core, load_engine_config
from oms_core.engine.idset import EVERY, NOBODY
from oms_core.enums import Limit, OrderType, Side, TimeInForce
from oms_core.replay_data import load_bars, load_signals

__all__ = [
    "BarVenue", "PaperResult", "ReplayResult", "Replayer", "engine_config", "main",
    "run_paper", "run_replay",
]

ADMIN = int(Role.ADMIN)
NS_PER_DAY = 86_400_000_000_000
SIM_DECIMALS = 8  # the matching engine counts 1e-8 units
_DEEP = 10**17  # the venue's balances: the core checks money, the venue only matches

_HDR = struct.Struct("<HBBHHQQq")
_MD = wire.CODECS["GW_MARKET_DATA"]
_MD_PACK = _MD.struct.pack  # header + body in layout order (the codec's own struct)
_MD_TYPE = int(MsgType.GW_MARKET_DATA)
_EXEC = wire.CODECS["GW_EXEC_REPORT"]
_EXEC_PACK = _EXEC.struct.pack
_EXEC_HEAD = (wire.MAGIC, wire.VERSION, 0, int(MsgType.GW_EXEC_REPORT), _EXEC.size, 0, 0)
_EXEC_AT = {name: k for k, name in enumerate(_EXEC.field_names)}
_SIGNAL = wire.CODECS["SIGNAL"]
_ACK_NS = wire.CODECS["ACK"].dtype.fields["ack_ns"][1]
_REJECT_NS = wire.CODECS["REJECT"].dtype.fields["reject_ns"][1]
_OU = wire.CODECS["ORDER_UPDATE"].dtype
_CHUNK = 1 << 14  # bar times whose close records are built at once (bounded memory)
_CLOSES_KEPT = 1024  # the engine's recent closes per instrument (Engine._sample_closes)


# ------------------------------------------------------------------------------ configuration
def _strategy_size(cfg: OmsConfig, strategy: str) -> int:
    """Raw quantity per unit of a DIRECTION signal for the engine's strategy table.

    The engine's SIGNAL path sizes with one number per strategy (until it calls
    ``oms_core.signals``): the smallest ``fixed_qty`` a follower sets for one of the
    strategy's instruments, else the smallest quantity that is a lot multiple and at least
    the minimum on every instrument of the strategy.
    """
    s = cfg.strategies[strategy]
    ids = [cfg.instruments[i].id for i in s.instruments]
    fixed = [q for c in cfg.followers(strategy) for i, q in c.orders.fixed_qty.items()
             if i in ids and q > 0]
    if fixed:
        return min(fixed)
    lots = [cfg.instruments[i].lot for i in s.instruments] or [1]
    lcm = math.lcm(*lots)
    need = max([cfg.instruments[i].min_qty for i in s.instruments] or [0])
    return max(1, -(-need // lcm)) * lcm


def engine_config(cfg: OmsConfig, shard: int = 0) -> EngineConfig:
    """The engine's configuration for shard ``shard`` of an issue-6 configuration: what
    ``python -m oms_core.engine --config oms.toml`` runs with (``from_oms_config``), or, with
    an engine that predates it, the same tables through :func:`engine_config_dict`."""
    try:
        from oms_core.engine.config import from_oms_config  # type: ignore[attr-defined]
    except ImportError:
        return load_engine_config(engine_config_dict(cfg, shard))
    return from_oms_config(cfg, shard)


def engine_core(cfg: OmsConfig, ecfg: EngineConfig, shard: int = 0) -> Any:
    """The core the engine process builds for ``ecfg``."""
    if getattr(ecfg, "oms", None) is not None:
        from oms_core.config import build_core as build_oms_core

        core = build_oms_core(cfg, shard)
        core.drain_events()
        return core
    return build_core(ecfg)


def engine_config_dict(cfg: OmsConfig, shard: int | None = 0) -> dict[str, Any]:
    """The mapping :func:`oms_core.engine.config.load_engine_config` reads (TOML shape)."""
    e = cfg.engine
    clients = [c for c in cfg.clients.values() if shard is None or c.shard == shard]
    return {
        "engine": {"max_orders": e.max_orders, "max_accounts": min(e.max_accounts, 64),
                   "max_instruments": e.max_instruments, "max_exchanges": e.max_exchanges,
                   "mark_to_market_ms": e.mark_interval_ms},
        "assets": [{"id": a.id, "name": a.name, "precision": a.precision}
                   for a in cfg.assets.values()],
        "instruments": [
            {"id": i.id, "symbol": i.symbol, "exchange": cfg.exchanges[i.exchange].id,
             "base": cfg.assets[i.base].id, "quote": cfg.assets[i.quote].id,
             "price_precision": i.price_precision, "qty_precision": i.qty_precision,
             "tick": i.tick, "lot": i.lot, "min_qty": i.min_qty, "max_qty": i.max_qty,
             "min_notional": i.min_notional, "tradable": i.tradable,
             "native_stops": i.native_stops} for i in cfg.instruments.values()],
        "accounts": [
            {"id": c.id, "limits": {Limit(k).name: int(v) for k, v in c.limits.items()},
             "deposits": {str(cfg.assets[a].id): int(v) for a, v in c.cash.items()}}
            for c in clients],
        "strategies": [
            {"id": s.id, "accounts": [c.id for c in clients if s.name in c.strategies],
             "size": _strategy_size(cfg, s.name), "single_entry": s.single_entry}
            for s in cfg.strategies.values()],
    }


# ------------------------------------------------------------------------------------ venue
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
        return _MD_PACK(wire.MAGIC, wire.VERSION, 0, _MD_TYPE, _MD.size, 0, 0, now,
                        price - half, depth, price + half, depth, price, 0, now, now,
                        instrument, 0)

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


# ----------------------------------------------------------------------------------- replay
@dataclass
class ReplayResult:
    """What a replay did; ``digest`` is the SHA-256 of every event record, in order."""

    bars: int = 0
    timestamps: int = 0
    signals: int = 0
    events: int = 0
    orders: int = 0
    fills: int = 0
    acks: int = 0
    rejects: int = 0
    wall_s: float = 0.0
    digest: str = ""
    positions: list[dict[str, int]] = field(default_factory=list)
    fills_list: list[tuple[int, ...]] = field(default_factory=list)
    quotes: int = 0  # quotes the venue was asked for (every point of an active bar)
    quotes_placed: int = 0  # ... and placed in a book (lazy venue: fewer)
    spans: int = 0  # quiet spans played as one frame each
    quiet_bar_times: int = 0  # bar times in those spans

    @property
    def bars_per_s(self) -> float:
        return self.bars / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def signals_per_s(self) -> float:
        return self.signals / self.wall_s if self.wall_s > 0 else 0.0


def _stamp(frame: bytes, ts: int) -> bytes:
    """Replace the wall-clock stamps of the engine's records by the simulated time."""
    b = bytearray(frame)
    off, n = 0, len(b)
    while off + 32 <= n:
        _m, _v, _f, mt, length, _s, _r, _t = _HDR.unpack_from(b, off)
        struct.pack_into("<q", b, off + 24, ts)
        if mt == MsgType.ACK:
            struct.pack_into("<q", b, off + _ACK_NS, ts)
        elif mt == MsgType.REJECT:
            struct.pack_into("<q", b, off + _REJECT_NS, ts)
        off += length if length else n
    return bytes(b)


@dataclass(eq=False)
class _Run:
    """The arrays and the running state of one :meth:`Replayer.run`."""

    ts: np.ndarray
    inst: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    vol: np.ndarray
    starts: np.ndarray  # first row of each bar time
    ends: np.ndarray
    uts: np.ndarray  # bar times
    t_close: np.ndarray  # the clock of each bar time's close
    day: np.ndarray  # UTC day of each bar time
    step: int
    sig_rows: list[tuple[int, int, int, int, int]]
    s_bar: np.ndarray  # bar time of each signal
    s_bounds: np.ndarray  # signals of bar time k: sig_rows[s_bounds[k]:s_bounds[k + 1]]
    active: set[int] = field(default_factory=set)  # instruments with a live order
    next_mark: int = 0
    day_now: int = 0
    sample: Any = None
    spans: bool = False
    base: int = 0  # first row of the loaded chunk of close records
    mv: memoryview = field(default_factory=lambda: memoryview(b""))
    shown: int = 0

    def s_bar_at(self, k: int) -> int:
        """The first bar time at or after ``k`` that has a signal (len(bar times): none)."""
        j = self.s_bounds[k]
        return int(self.s_bar[j]) if j < len(self.s_bar) else len(self.starts)


class Replayer:
    """Drive one :class:`Engine` over bars and signals with :class:`BarVenue` as the venue.

    Parameters
    ----------
    cfg : OmsConfig
    store : writer.store.Store, optional
        Where the engine's event records go (through the writer's Batcher).
    record_fills : bool
        Keep every fill as a tuple in the result (tests, parity).
    mark_every_s : int
        Simulated seconds between mark-to-market inputs (0: never).
    fast : bool
        Play quiet spans of bar times as one frame and keep the venue's quotes lazy (the
        default); ``False`` plays every bar time step by step and places every quote (the
        reference the fast path is tested against: same digest, same tables).
    """

    def __init__(self, cfg: OmsConfig, store: Any = None, record_fills: bool = False,
                 mark_every_s: int = 3600, flush_rows: int = 200_000,
                 fast: bool = True) -> None:
        self.cfg = cfg
        self.fast = fast
        self.ecfg = engine_config(cfg)
        self.core = engine_core(cfg, self.ecfg)
        self.engine = Engine(self.core, None, self.ecfg)
        self.loop = self.engine.loop
        self.venue = BarVenue(cfg, lazy=fast)
        self.n_cols = max(self.venue.books, default=-1) + 1  # instrument ids index columns
        oms = getattr(self.ecfg, "oms", None)
        self.n_sampled = len(oms.instruments) if oms is not None else 0
        self.quotes = (0, 0)  # (quotes asked for, quotes placed in a book) by the last run
        self.store = store
        self.flush_rows = flush_rows
        self.batcher: Any = None
        if store is not None:
            from writer.drain import Batcher
            self.batcher = Batcher()
        self.record_fills = record_fills
        self.mark_ns = mark_every_s * 1_000_000_000
        self.h = hashlib.sha256()
        self.res = ReplayResult()
        self.clock = 0
        self.accounts = [int(a["id"]) for a in self.ecfg.accounts]

    # -- the engine's entry points, as the engine process calls them
    def _collect(self) -> None:
        lp = self.loop
        if lp.wr.n:
            for f in lp.wr.frames():
                self._events(_stamp(f, self.clock))
        if lp.gw_pending:
            for _ex, frames in lp.gateway_frames():
                for f in frames:
                    for rec in wire.decode_frame(f):
                        self.venue.on_engine(rec)

    def _input(self, kind: int, payload: bytes) -> None:
        lp = self.loop
        lp.begin(ADMIN, EVERY, NOBODY, False)
        lp.apply_input(kind, self.clock, payload, False)
        self._collect()

    def _gateway(self, frame: Any) -> None:
        lp = self.loop
        lp.begin(ADMIN, EVERY, NOBODY, False)
        lp.on_gateway_frame(frame, self.clock)
        self._collect()

    def _pump(self) -> None:
        """Feed the venue's reports to the engine until neither has anything more to say."""
        for _ in range(1000):
            frame = self.venue.take_reports()
            if not frame:
                return
            self._gateway(frame)
        raise RuntimeError("replay: the engine and the venue keep answering each other")

    def _events(self, frame: bytes) -> None:
        self.h.update(frame)
        res = self.res
        off, n = 0, len(frame)
        while off < n:
            _m, _v, _f, mt, length, _s, _r, _t = _HDR.unpack_from(frame, off)
            res.events += 1
            if mt == MsgType.FILL:
                res.fills += 1
                if self.record_fills:
                    f = wire.decode(frame, off)
                    res.fills_list.append((f.account, f.strategy, f.instrument, f.side,
                                           f.quantity, f.price, f.fee, f.fee_asset,
                                           f.liquidity))
            elif mt == MsgType.ACK:
                res.acks += 1
            elif mt == MsgType.REJECT:
                res.rejects += 1
            off += length
        if self.batcher is not None:
            gap = self.batcher.add_frame(frame, self.store.last_seq)
            if gap:
                raise RuntimeError(f"replay: event sequence gap at {gap}")
            if self.batcher.rows >= self.flush_rows:
                self.flush()

    def flush(self) -> None:
        if self.batcher is not None and self.batcher.rows:
            self.store.commit_batch(self.batcher.arrays(), self.batcher.last_seq)
            self.batcher.clear()

    # -- one point of a bar's path for one instrument
    def _point(self, instrument: int, price: int, volume: int) -> None:
        depth = self.venue.depth(instrument, volume)
        self.venue.now = self.clock
        self.venue.quote(instrument, price, depth)
        self._pump()
        self._gateway(self.venue.market_data(instrument, price, depth))
        self._pump()

    def _active(self, instruments: Sequence[int]) -> set[int]:
        """Instruments with a live order at the venue or in the engine (held stops too)."""
        live = {i for i in instruments if self.venue.user_open.get(i)}
        if len(live) == len(instruments):
            return live
        core = self.core
        for a in self.accounts:
            for oid in core.live_orders(a):
                o = core.order(oid)
                if o is not None:
                    live.add(int(o["instrument"]))
        return live

    def run(self, bars: pa.Table, signals: pa.Table | None, progress: bool = False
            ) -> ReplayResult:
        """Replay ``bars`` (BAR_SCHEMA) and ``signals`` (SIGNAL_SCHEMA); return the result."""
        t_wall = time.perf_counter()
        res = self.res
        ts = bars.column("ts").to_numpy()
        inst = bars.column("instrument").to_numpy()
        n = len(ts)
        res.bars = n
        known = np.isin(inst, np.fromiter(self.venue.books, dtype=np.int64))
        if not known.all():
            raise ValueError(f"bars for unknown instrument ids "
                             f"{sorted(set(inst[~known].tolist()))[:5]}")
        starts = np.flatnonzero(np.r_[True, ts[1:] != ts[:-1]]) if n else np.zeros(0, int)
        ends = np.r_[starts[1:], n] if n else starts
        uts = ts[starts] if n else ts
        nt = res.timestamps = len(starts)
        step = int(np.min(np.diff(uts))) if len(uts) > 1 else 60_000_000_000
        # signals grouped by the bar they fall in: the first bar whose open >= the signal
        if signals is not None and signals.num_rows:
            s_ts = signals.column("ts").to_numpy()
            s_cols = [signals.column(k).to_numpy().tolist()
                      for k in ("ts", "strategy", "instrument", "kind", "value")]
            s_bar = np.searchsorted(uts, s_ts, side="left") if n else np.zeros(len(s_ts), int)
            sig_rows = list(zip(*s_cols, strict=True))
        else:
            s_bar = np.zeros(0, dtype=np.int64)
            sig_rows = []
        self._r = _Run(
            ts=ts, inst=inst, open=bars.column("open").to_numpy(),
            high=bars.column("high").to_numpy(), low=bars.column("low").to_numpy(),
            close=bars.column("close").to_numpy(), vol=bars.column("volume").to_numpy(),
            starts=starts, ends=ends, uts=uts, t_close=uts + (step - 1), day=uts // NS_PER_DAY,
            step=step, sig_rows=sig_rows, s_bar=s_bar,
            s_bounds=np.searchsorted(s_bar, np.arange(nt + 1), side="left"))
        r = self._r
        r.next_mark = int(uts[0]) + self.mark_ns if n and self.mark_ns else 0
        r.day_now = int(uts[0]) // NS_PER_DAY if n else 0
        sample = getattr(self.engine, "_sample_closes", None)
        if getattr(self.ecfg, "oms", None) is None:
            sample = None
        r.sample = sample
        r.spans = self.fast and (sample is None or isinstance(
            getattr(self.engine, "_closes", None), dict))
        prog = _Progress(nt, progress)
        chunk = _CHUNK
        try:
            k = 0
            while k < nt:
                if k % chunk == 0:
                    self._load_chunk(k)
                if r.spans and not r.active and int(r.s_bar_at(k)) > k:
                    k = self._quiet(k)
                else:
                    self._bar(k)
                    k += 1
                if k - r.shown >= 1024:
                    r.shown = k
                    prog.update(k)
            # signals after the last bar: applied at their own time, after everything
            for row in sig_rows[r.s_bounds[nt]:]:
                self.clock = max(self.clock, int(row[0]))
                self._signal(row, int(row[0]))
            self._input(KIND_MARK_TO_MARKET, b"")
            self.flush()
        finally:
            prog.close(nt)
        res.wall_s = time.perf_counter() - t_wall
        res.digest = self.h.hexdigest()
        res.orders = int(self.loop.n_acks)
        res.positions = self.positions()
        self.quotes = (self.venue.n_quotes, self.venue.n_placed)
        res.quotes, res.quotes_placed = self.quotes
        return res

    def _load_chunk(self, k: int) -> None:
        """The close records of bar times ``k .. k + _CHUNK``, built at once (numpy)."""
        r = self._r
        nt = len(r.starts)
        base = int(r.starts[k])
        top = int(r.ends[min(k + _CHUNK, nt) - 1])
        r.base = base
        r.mv = memoryview(self._close_frames(r.inst[base:top], r.close[base:top],
                                             r.vol[base:top], r.ts[base:top] + r.step - 1))

    def _bar(self, k: int) -> None:
        """One bar time, every step (signals, instruments with orders, the closes)."""
        r = self._r
        t = int(r.uts[k])
        self.clock = max(self.clock, t)
        if t // NS_PER_DAY != r.day_now:
            r.day_now = t // NS_PER_DAY
            self._input(KIND_START_OF_DAY, b"")
        lo, hi = int(r.starts[k]), int(r.ends[k])
        sig = r.sig_rows[r.s_bounds[k]:r.s_bounds[k + 1]]
        active = r.active
        if sig or active:
            detail = sorted(active | {int(s[2]) for s in sig})
            rows = {i: j for j, i in enumerate(r.inst[lo:hi].tolist())}
            detail = [i for i in detail if i in rows]
            # this bar time's rows of the detailed instruments, as Python ints
            cols = (r.open, r.high, r.low, r.close, r.vol)
            bar = {i: tuple(int(x[lo + rows[i]]) for x in cols) for i in detail}
            for i in detail:
                self._point(i, bar[i][0], bar[i][4])
            for row in sig:
                self._signal(row, t)
            step = r.step
            for i in detail:
                o, h, lw, c, v = bar[i]
                for p, frac in zip((lw, h) if c >= o else (h, lw), (1, 2), strict=True):
                    self.clock = max(self.clock, t + frac * step // 3)
                    self._point(i, p, v)
            self.clock = max(self.clock, t + step - 1)
            venue = self.venue
            for i in detail:
                venue.now = self.clock
                venue.quote(i, bar[i][3], venue.depth(i, bar[i][4]))
                self._pump()
        else:
            self.clock = max(self.clock, t + r.step - 1)
        size = _MD.size
        self._gateway(r.mv[(lo - r.base) * size:(hi - r.base) * size])
        self._pump()
        if self.loop.timer_due(self.clock):
            self._input(KIND_TIMER, b"")
            self._pump()
        if r.sample is not None:
            r.sample()  # the engine's recent closes (volatility sizing): one per bar
        if r.next_mark and self.clock >= r.next_mark:
            r.next_mark = self.clock + self.mark_ns
            self._input(KIND_MARK_TO_MARKET, b"")
        if sig or active:
            r.active = self._active(sorted(active | {int(s[2]) for s in sig}))

    def _quiet(self, a: int) -> int:
        """Bar times from ``a`` while nothing trades: no signal, no live order anywhere.

        Such a bar time only gives the engine its closes (and the timers, marks and the start
        of day that fall in it), so a span of them goes to the engine as ONE market-data frame
        applied at the span's last clock: a record's price and its time are overwritten by
        the instrument's next record, so only each instrument's last record of the span
        counts; the span is played this way only when all of those are in its last bar time
        (else its bar times go one by one). No live order means no stop can trigger and
        no timer is due; the span ends at a mark, at midnight, at the next signal and at a
        chunk of close records. The engine's recent-closes samples (one per bar time) are
        the closes carried forward, appended as ``_sample_closes`` would have. Returns the
        next bar time to play.
        """
        r = self._r
        nt = len(r.starts)
        b = min(int(r.s_bar_at(a)), nt, (a // _CHUNK + 1) * _CHUNK)
        b = min(b, int(np.searchsorted(r.day, r.day[a], side="right")))
        c0 = self.clock
        mark = False
        if r.next_mark:
            m = a if c0 >= r.next_mark else int(np.searchsorted(r.t_close, r.next_mark))
            if m < b:
                b, mark = m + 1, True
        lo, hi = int(r.starts[a]), int(r.ends[b - 1])
        c_end = max(c0, int(r.t_close[b - 1]))
        inst = r.inst[lo:hi]
        bar = np.repeat(np.arange(b - a), r.ends[a:b] - r.starts[a:b])
        width = self.n_cols
        present = np.zeros((b - a, width), dtype=bool)
        present[bar, inst] = True
        if (b - a > 1 and (present.any(axis=0) != present[-1]).any()) or \
                self.loop.timer_due(c_end):
            for k in range(a, b):  # the exact path, one bar time at a time
                self._bar(k)
            return b
        self.res.spans += 1
        self.res.quiet_bar_times += b - a
        t_a = int(r.uts[a])
        self.clock = max(c0, t_a)
        if t_a // NS_PER_DAY != r.day_now:
            r.day_now = t_a // NS_PER_DAY
            self._input(KIND_START_OF_DAY, b"")
        if r.sample is not None:
            last0 = [self.loop.reference_price(i)[0] for i in range(self.n_sampled)]
        self.clock = c_end
        size = _MD.size
        self._gateway(r.mv[(lo - r.base) * size:(hi - r.base) * size])
        self._pump()
        if r.sample is not None:
            self._sample_span(present, bar, inst, r.close[lo:hi], last0)
        if mark:
            r.next_mark = c_end + self.mark_ns
            self._input(KIND_MARK_TO_MARKET, b"")
        return b

    def _sample_span(self, present: np.ndarray, bar: np.ndarray, inst: np.ndarray,
                     close: np.ndarray, last0: list[int]) -> None:
        """Append to the engine's recent closes what ``_sample_closes`` would have appended
        after each bar time of a quiet span: every instrument's last price (the close
        carried forward from ``last0``) when it is above zero."""
        nb, width = present.shape
        n = self.n_sampled
        start = np.zeros((1, max(width, n)), dtype=np.int64)
        start[0, :n] = last0
        vals = np.zeros((nb, max(width, n)), dtype=np.int64)
        vals[bar, inst] = close
        if not present.all():  # carry each instrument's close forward over its gaps
            idx = np.where(present, np.arange(1, nb + 1)[:, None], 0)
            if width < n:
                idx = np.pad(idx, ((0, 0), (0, n - width)))
            np.maximum.accumulate(idx, axis=0, out=idx)
            vals = np.take_along_axis(np.concatenate((start, vals)), idx, axis=0)
        keep = min(nb, _CLOSES_KEPT)
        cols = vals[nb - keep:, :n].T
        ok = cols > 0
        closes = self.engine._closes
        every = bool(ok.all())
        for i, col in enumerate(cols.tolist()):
            if not every:
                col = [v for v in col if v > 0]
                if not col:
                    continue
            d = closes.get(i)
            if d is None:
                d = closes[i] = deque(maxlen=_CLOSES_KEPT)
            d.extend(col)

    def _signal(self, row: tuple[int, int, int, int, int], bar_ts: int) -> None:
        s_ts, strategy, instrument, kind, value = row
        self.clock = max(self.clock, bar_ts, int(s_ts))
        self.res.signals += 1
        rec = _SIGNAL.encode(self.res.signals, 0, self.clock, value=value, price=0,
                             account=ANY_ID, strategy=strategy, instrument=instrument,
                             mode=kind)
        self._input(int(MsgType.SIGNAL), rec)
        self._pump()

    def _close_frames(self, inst: np.ndarray, close: np.ndarray, vol: np.ndarray,
                      t_close: np.ndarray) -> bytes:
        """GW_MARKET_DATA records for every bar's close, built at once (numpy)."""
        arr = np.zeros(len(inst), dtype=_MD.dtype)
        arr["magic"] = wire.MAGIC
        arr["version"] = wire.VERSION
        arr["msg_type"] = int(MsgType.GW_MARKET_DATA)
        arr["length"] = _MD.size
        arr["send_ns"] = t_close
        half = np.zeros(len(inst), dtype=np.int64)
        depth = np.zeros(len(inst), dtype=np.int64)
        for i, vi in self.venue.inst.items():
            sel = inst == i
            if not sel.any():
                continue
            bps = self.venue.slip_bps[i]
            h = -(-close[sel] * bps // 10_000)
            h = -(-h // vi.tick) * vi.tick
            half[sel] = np.maximum(h, vi.tick)
            q = np.where(vol[sel] > 0, vol[sel] // self.venue.levels,
                         self.venue.depth_lots * vi.lot)
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

    def positions(self) -> list[dict[str, int]]:
        """Final position, fees and P&L per account and instrument (raw integers)."""
        out = []
        core = self.core
        for a in self.accounts:
            for i in sorted(self.venue.inst):
                p = core.position(a, i)
                if not (p["qty"] or p["realized"] or p["fees"] or p["cost"]):
                    continue
                out.append({"account": a, "instrument": i, "qty": int(p["qty"]),
                            "cost": int(p["cost"]), "realized": int(p["realized"]),
                            "fees": int(p["fees"]), "unrealized": int(p["unrealized"])})
        return out


class _Progress:
    """A rich progress bar over bar timestamps (nothing when off)."""

    def __init__(self, total: int, on: bool) -> None:
        self.p: Any = None
        if on:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            self.p = Progress(TextColumn("replay"), BarColumn(), MofNCompleteColumn(),
                              TextColumn("bar times"), TimeElapsedColumn(),
                              TimeRemainingColumn(), transient=False)
            self.p.start()
            self.task = self.p.add_task("replay", total=total)

    def update(self, k: int) -> None:
        if self.p is not None:
            self.p.update(self.task, completed=k)

    def close(self, k: int) -> None:
        if self.p is not None:
            self.p.update(self.task, completed=k)
            self.p.stop()


# ------------------------------------------------------------------------------ paper twin
@dataclass
class PaperResult:
    """What a paper run over bars produced (the same fill tuples as ``ReplayResult``)."""

    fills_list: list[tuple[int, ...]] = field(default_factory=list)
    positions: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    signals: int = 0
    answers: int = 0
    wall_s: float = 0.0


def run_paper(config_path: str, bars: pa.Table, signals: pa.Table | None, workdir: str,
              quiet_s: float = 0.01, timeout_s: float = 60.0) -> PaperResult:
    """Paper trading over ``bars`` in real time: the engine PROCESS
    (``python -m oms_core.engine --config config_path``) with :class:`BarVenue` as its
    gateway over ZeroMQ, signals sent by a client (DEALER) as they fall due.

    The configuration must give ipc/tcp endpoints to ``[engine] commands`` and to the
    exchange's ``orders`` and ``events`` links. Each point of every bar's path (open, the two
    extremes, close; every instrument) is quoted, its fills and market data are pushed to the
    engine on the gateway events socket, and the venue answers the engine's orders until the
    engine has been quiet for ``quiet_s`` seconds; then the next point comes. Timestamps are
    the engine's wall clock.
    """
    import os
    import selectors
    import signal as _signal
    import subprocess

    import zmq

    from oms_core import security

    cfg = load_config(config_path)
    ex = next(iter(cfg.exchanges.values()))
    writer_ep = f"ipc://{workdir}/paper-writer"
    keys: dict[str, Any] = {}
    if security.security_on(cfg):  # the venue and the client speak CURVE, as peers do
        security.write_keys(cfg, missing_only=True)
        gw_keys = security.client_keys(cfg, security.gateway_key(ex.name))
        keys = {ex.events: gw_keys, ex.orders: gw_keys,
                writer_ep: security.client_keys(cfg, security.WRITER_KEY),
                cfg.engine.commands: security.operator_keys(cfg)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "oms_core.engine", "--config", config_path, "--writer",
         writer_ep, "--log-level", "WARNING"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        cwd=str(Path(__file__).resolve().parent.parent))
    ctx = zmq.Context()
    socks: list[Any] = []
    out = PaperResult()
    t0 = time.perf_counter()
    try:
        sel = selectors.DefaultSelector()
        assert proc.stdout is not None
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 30
        line = ""
        while not line.startswith("READY"):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("paper: the engine did not start")
            if sel.select(0.5):
                line = proc.stdout.readline()
        sel.close()

        def sock(kind: int, ep: str) -> Any:
            s = ctx.socket(kind)
            s.setsockopt(zmq.LINGER, 0)
            if ep in keys:
                keys[ep].apply(s)
            s.connect(ep)
            socks.append(s)
            return s

        gw_in = sock(zmq.PUSH, ex.events)
        gw_orders = sock(zmq.PULL, ex.orders)
        wr = sock(zmq.PULL, writer_ep)
        client = sock(zmq.DEALER, cfg.engine.commands)
        venue = BarVenue(cfg)
        end_by = time.monotonic() + timeout_s

        def settle() -> None:
            # answer the engine's orders until it has been quiet for quiet_s
            quiet_until = time.monotonic() + quiet_s
            while True:
                left = quiet_until - time.monotonic()
                if left <= 0:
                    return
                if time.monotonic() > end_by:
                    raise TimeoutError("paper run over its time limit")
                if gw_orders.poll(max(1, int(left * 1000))):
                    for rec in wire.decode_frame(gw_orders.recv()):
                        venue.on_engine(rec)
                    frame = venue.take_reports()
                    if frame:
                        gw_in.send(frame)
                    quiet_until = time.monotonic() + quiet_s

        def point(i: int, price: int, volume: int) -> None:
            depth = venue.depth(i, volume)
            venue.now = time.time_ns()
            venue.quote(i, price, depth)
            gw_in.send(venue.take_reports() + venue.market_data(i, price, depth))
            settle()

        ts = bars.column("ts").to_numpy()
        cols = {k: bars.column(k).to_numpy() for k in
                ("instrument", "open", "high", "low", "close", "volume")}
        sig_rows = (list(zip(*[signals.column(k).to_numpy().tolist() for k in
                               ("ts", "strategy", "instrument", "kind", "value")], strict=True))
                    if signals is not None else [])
        uts = np.unique(ts)
        s_bar = np.searchsorted(uts, np.asarray([r[0] for r in sig_rows], dtype=np.int64))
        for k, t in enumerate(uts.tolist()):
            rows = np.flatnonzero(ts == t).tolist()
            for j in rows:
                point(int(cols["instrument"][j]), int(cols["open"][j]), int(cols["volume"][j]))
            for r in (r for r, b in zip(sig_rows, s_bar.tolist(), strict=True) if b == k):
                out.signals += 1
                client.send(_SIGNAL.encode(out.signals, 0, time.time_ns(), value=r[4], price=0,
                                           account=ANY_ID, strategy=r[1], instrument=r[2],
                                           mode=r[3]))
                got = False
                while not got:
                    if not client.poll(5000):
                        raise TimeoutError("paper: no answer to a signal")
                    for a in wire.decode_frame(client.recv()):
                        out.answers += 1
                        got = got or a.request_id == out.signals
                settle()
            for j in rows:
                i = int(cols["instrument"][j])
                up = cols["close"][j] >= cols["open"][j]
                path = (cols["low"][j], cols["high"][j]) if up else (cols["high"][j],
                                                                    cols["low"][j])
                for p in path:
                    point(i, int(p), int(cols["volume"][j]))
                point(i, int(cols["close"][j]), int(cols["volume"][j]))
        settle()
        # the engine's event stream (what the writer gets): fills and positions
        while wr.poll(300):
            frame = wr.recv()
            off = 0
            while off < len(frame):
                _m, _v, _f, mt, length, _s, _r, _t = _HDR.unpack_from(frame, off)
                if mt == MsgType.FILL:
                    f = wire.decode(frame, off)
                    out.fills_list.append((f.account, f.strategy, f.instrument, f.side,
                                           f.quantity, f.price, f.fee, f.fee_asset,
                                           f.liquidity))
                elif mt == MsgType.POSITION_UPDATE:
                    pu = wire.decode(frame, off)
                    out.positions[(pu.account, pu.instrument)] = (pu.quantity,
                                                                  pu.realized_pnl)
                off += length
    finally:
        for s in socks:
            s.close(0)
        ctx.term()
        if proc.poll() is None:
            os.kill(proc.pid, _signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    out.wall_s = time.perf_counter() - t0
    return out


# ------------------------------------------------------------------------------ entry point
def run_replay(cfg: OmsConfig, bars: pa.Table, signals: pa.Table | None,
               out: str | None = None, parquet: str | None = None, progress: bool = False,
               record_fills: bool = False, mark_every_s: int = 3600,
               fast: bool = True) -> ReplayResult:
    """Replay into ``out`` (a new DuckDB file; refused when it exists) and/or Parquet.

    ``fast=False``: the step-by-step reference (same results, slower; see :class:`Replayer`).
    """
    store = None
    if out or parquet:
        from writer.store import Store

        if out and Path(out).exists():
            raise FileExistsError(f"{out} exists; replay writes a new database")
        path = out or str(Path(parquet or ".") / "replay.duckdb")
        store = Store(path)
    try:
        rp = Replayer(cfg, store, record_fills=record_fills, mark_every_s=mark_every_s,
                      fast=fast)
        res = rp.run(bars, signals, progress=progress)
        if store is not None:
            _write_summary(store, cfg, res)
            if parquet:
                from writer.store import export_parquet
                export_parquet(store.con, parquet)
            store.checkpoint()
        return res
    finally:
        if store is not None:
            store.close()


def _write_summary(store: Any, cfg: OmsConfig, res: ReplayResult) -> None:
    con = store.con
    con.execute("CREATE TABLE IF NOT EXISTS replay_summary (account UINTEGER, instrument "
                "UINTEGER, qty BIGINT, cost BIGINT, realized BIGINT, fees BIGINT, "
                "unrealized BIGINT)")
    con.execute("CREATE TABLE IF NOT EXISTS replay_run (bars BIGINT, signals BIGINT, "
                "events BIGINT, fills BIGINT, digest VARCHAR)")
    if res.positions:
        cols = ("account", "instrument", "qty", "cost", "realized", "fees", "unrealized")
        tbl = pa.table({c: [p[c] for p in res.positions] for c in cols})
        con.register("_summary", tbl)
        con.execute("INSERT INTO replay_summary SELECT * FROM _summary")
        con.unregister("_summary")
    con.execute("INSERT INTO replay_run VALUES (?, ?, ?, ?, ?)",
                [res.bars, res.signals, res.events, res.fills, res.digest])


def main(argv: Sequence[str] | None = None) -> int:
    """``oms replay``: replay bars and signals through the engine; return an exit status."""
    ap = argparse.ArgumentParser(prog="oms replay", description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="the TOML configuration (oms_core.config)")
    ap.add_argument("--bars", help="bars, Parquet or CSV (default: [replay].bars)")
    ap.add_argument("--signals", help="signals, Parquet or CSV (default: [replay].signals)")
    ap.add_argument("--out", help="DuckDB file to create with the results")
    ap.add_argument("--parquet", help="also export every table as Parquet under this directory")
    ap.add_argument("--mark-every", type=int, default=3600,
                    help="simulated seconds between mark-to-market inputs (default 3600)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(list(sys.argv[1:] if argv is None else argv))
    from rich.console import Console

    console = Console(stderr=True)
    try:
        cfg = load_config(args.config)
        bars_path = args.bars or cfg.replay.bars
        sig_path = args.signals if args.signals is not None else cfg.replay.signals
        if not bars_path:
            print("oms replay: no bars (--bars or [replay].bars)", file=sys.stderr)
            return 2
        precisions = {i.id: (i.price_precision, i.qty_precision)
                      for i in cfg.instruments.values()}
        bars = load_bars(bars_path, instruments=cfg.ids.instruments, precisions=precisions)
        signals = (load_signals(sig_path, cfg.ids.strategies, cfg.ids.instruments,
                                {i: q for i, (_, q) in precisions.items()})
                   if sig_path else None)
        res = run_replay(cfg, bars, signals, args.out, args.parquet,
                         progress=not args.quiet, mark_every_s=args.mark_every)
    except (OSError, ValueError) as e:
        print(f"oms replay: {e}", file=sys.stderr)
        return 2
    _print_summary(console, cfg, res, args.out)
    return 0


def _print_summary(console: Any, cfg: OmsConfig, res: ReplayResult, out: str | None) -> None:
    from decimal import Decimal

    from rich.table import Table

    console.print(f"replayed {res.bars:,} bars ({res.timestamps:,} bar times) and "
                  f"{res.signals:,} signals in {res.wall_s:.2f} s: "
                  f"{res.bars_per_s:,.0f} bars/s, {res.signals_per_s:,.0f} signals/s; "
                  f"{res.acks:,} acks, {res.rejects:,} rejects, {res.fills:,} fills, "
                  f"{res.events:,} events" + (f" -> {out}" if out else ""))
    console.print(f"digest {res.digest}")
    t = Table(title="positions at the end")
    for col in ("account", "instrument", "qty", "realized", "fees", "unrealized"):
        t.add_column(col, justify="right")
    names = {v: k for k, v in cfg.ids.accounts.items()}
    for p in res.positions:
        ic = cfg.instrument_by_id(p["instrument"])
        money = cfg.assets[ic.quote].precision
        t.add_row(names.get(p["account"], str(p["account"])), ic.symbol,
                  str(Decimal(p["qty"]).scaleb(-ic.qty_precision)),
                  str(Decimal(p["realized"]).scaleb(-money)),
                  str(Decimal(p["fees"]).scaleb(-money)),
                  str(Decimal(p["unrealized"]).scaleb(-money)))
    console.print(t)


if __name__ == "__main__":
    sys.exit(main())
