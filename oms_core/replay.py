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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from bindings.wire import records as wire
from bindings.wire.spec import ANY_ID, ExecType, MsgType
from gateways.sim import constants as sc
from gateways.sim.matching import Book, Ledger
from oms_core.config import OmsConfig, load_config
from oms_core.engine import KIND_MARK_TO_MARKET, KIND_START_OF_DAY, KIND_TIMER, Engine
from oms_core.engine.config import EngineConfig, build_core, load_engine_config
from oms_core.enums import Limit, OrderType, Side, TimeInForce
from oms_core.replay_data import load_bars, load_signals

__all__ = [
    "BarVenue", "PaperResult", "ReplayResult", "Replayer", "engine_config", "main",
    "run_paper", "run_replay",
]

ADMIN = 3  # bindings.security.Role.ADMIN
ALL_ACCOUNTS = (1 << 64) - 1
NS_PER_DAY = 86_400_000_000_000
SIM_DECIMALS = 8  # the matching engine counts 1e-8 units
_DEEP = 10**17  # the venue's balances: the core checks money, the venue only matches

_HDR = struct.Struct("<HBBHHQQq")
_MD = wire.CODECS["GW_MARKET_DATA"]
_EXEC = wire.CODECS["GW_EXEC_REPORT"]
_SIGNAL = wire.CODECS["SIGNAL"]
_ACK_NS = wire.CODECS["ACK"].dtype.fields["ack_ns"][1]
_REJECT_NS = wire.CODECS["REJECT"].dtype.fields["reject_ns"][1]
_OU = wire.CODECS["ORDER_UPDATE"].dtype


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
    """

    def __init__(self, cfg: OmsConfig, levels: int = 5, depth_lots: int = 100) -> None:
        self.levels = levels
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
        return _MD.encode(0, 0, self.now, bid=price - half, bid_qty=depth, ask=price + half,
                          ask_qty=depth, last=price, last_qty=0, exch_ts_ns=self.now,
                          gw_ts_ns=self.now, instrument=instrument)

    def depth(self, instrument: int, volume: int) -> int:
        lot = self.inst[instrument].lot
        q = volume // self.levels if volume > 0 else self.depth_lots * lot
        return max(lot, q // lot * lot)

    def quote(self, instrument: int, price: int, depth: int) -> None:
        """Replace the provider's quotes by ``levels`` levels per side around ``price``.

        New quotes that cross resting user orders trade with them (the user is the maker):
        that is how a resting limit order fills when the bar's path reaches it.
        """
        book = self.books[instrument]
        vi = self.inst[instrument]
        for bid in self.lp_orders[instrument]:
            book.cancel(bid, self.lp)
        lp: list[int] = []
        half = self.half_spread(instrument, price)
        q = depth * vi.qmult
        for k in range(self.levels):
            for side, px in ((sc.SIDE_BUY, price - half - k * half),
                             (sc.SIDE_SELL, price + half + k * half)):
                if px <= 0:
                    continue
                r = book.submit(self.lp, side, sc.OT_LIMIT, sc.TIF_GTC, px * vi.pmult, q)
                if r > 0:
                    lp.append(r)
        self.lp_orders[instrument] = lp
        self._events(instrument)

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
        self.reports.append(_EXEC.encode(0, 0, self.now, exch_ts_ns=self.now,
                                         gw_recv_ns=self.now, **f))

    def _new(self, r: Any) -> None:
        vi = self.inst.get(r.instrument)
        if vi is None:
            self._report(order_id=r.order_id, account=r.account, instrument=r.instrument,
                         exec_type=int(ExecType.REJECT), exch_code=-1121)
            return
        ot = r.order_type
        if ot in (OrderType.MARKET, OrderType.STOP_MARKET, OrderType.TAKE_PROFIT,
                  OrderType.TRAILING_STOP) and not r.trigger_price:
            otype, price = sc.OT_MARKET, 0
        elif ot in (OrderType.LIMIT, OrderType.STOP_LIMIT) and not r.trigger_price:
            otype, price = sc.OT_LIMIT, r.price * vi.pmult
        else:  # a trigger at the venue (native stops): not modelled by the replay venue
            self._report(order_id=r.order_id, account=r.account, instrument=r.instrument,
                         exec_type=int(ExecType.REJECT), exch_code=-1013)
            return
        tif = {TimeInForce.IOC: sc.TIF_IOC, TimeInForce.FOK: sc.TIF_FOK}.get(
            TimeInForce(r.tif) if r.tif in (1, 2, 3, 4, 5) else TimeInForce.GTC, sc.TIF_GTC)
        self._submit(_VenueOrder(r.order_id, r.account, r.instrument, r.side, r.quantity, 0, 0),
                     otype, tif, price, r.quantity)

    def _submit(self, vo: _VenueOrder, otype: int, tif: int, price: int, qty: int) -> None:
        vi = self.inst[vo.instrument]
        book = self.books[vo.instrument]
        side = sc.SIDE_BUY if vo.side == Side.BUY else sc.SIDE_SELL
        # register before matching: the events of the submit name the new book id
        bid = book.next_order_id
        self.orders[(vo.instrument, bid)] = vo
        self.by_oid[vo.oid] = (vo.instrument, bid)
        self.user_open[vo.instrument] += 1
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
        book.cancel(key[1], r.account)
        book.clear_events()  # the cancel is part of the replace: no CANCELED report
        self._forget(*key)
        vi = self.inst[vo.instrument]
        self._report(order_id=vo.oid, account=vo.account, instrument=vo.instrument,
                     exec_type=int(ExecType.REPLACED), price=r.price, quantity=r.quantity,
                     cum_qty=vo.filled, leaves_qty=r.quantity - vo.filled)
        nvo = _VenueOrder(vo.oid, vo.account, vo.instrument, vo.side, r.quantity, vo.filled,
                          vo.filled)
        bid = book.next_order_id
        self.orders[(vo.instrument, bid)] = nvo
        self.by_oid[vo.oid] = (vo.instrument, bid)
        self.user_open[vo.instrument] += 1
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
        for (kind, bid, account, side, status, trade_id, price, qty, _quote, commission,
             _filled, _cq, _counter, maker) in book.events(True):
            if account == self.lp:
                continue
            vo = self.orders.get((instrument, bid))
            if vo is None:
                continue
            if kind == sc.EV_NEW:
                self._report(order_id=vo.oid, exch_order_id=bid, account=vo.account,
                             instrument=instrument, exec_type=int(ExecType.ACK))
            elif kind == sc.EV_TRADE:
                q = qty // vi.qmult
                vo.filled += q
                buy = side == sc.SIDE_BUY
                fee_asset = vi.base if buy else vi.quote
                fee = commission // (vi.base_div if buy else vi.quote_div)
                self.n_fills += 1
                self.fees[fee_asset] = self.fees.get(fee_asset, 0) + fee
                self._report(order_id=vo.oid, exch_order_id=bid, trade_id=trade_id * 2 + side,
                             last_qty=q, last_price=price // vi.pmult, fee=fee,
                             cum_qty=vo.filled, leaves_qty=vo.qty - vo.filled,
                             account=vo.account, instrument=instrument, fee_asset=fee_asset,
                             exec_type=int(ExecType.FILL), liquidity=1 if maker else 2)
            elif kind in (sc.EV_CANCELED, sc.EV_EXPIRED):
                et = ExecType.CANCELED if kind == sc.EV_CANCELED else ExecType.EXPIRED
                self._report(order_id=vo.oid, exch_order_id=bid, cum_qty=vo.filled,
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
    """

    def __init__(self, cfg: OmsConfig, store: Any = None, record_fills: bool = False,
                 mark_every_s: int = 3600, flush_rows: int = 200_000) -> None:
        self.cfg = cfg
        self.ecfg = engine_config(cfg)
        self.core = engine_core(cfg, self.ecfg)
        self.engine = Engine(self.core, None, self.ecfg)
        self.loop = self.engine.loop
        self.venue = BarVenue(cfg)
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
        lp.begin(ADMIN, ALL_ACCOUNTS, 0, False)
        lp.apply_input(kind, self.clock, payload, False)
        self._collect()

    def _gateway(self, frame: Any) -> None:
        lp = self.loop
        lp.begin(ADMIN, ALL_ACCOUNTS, 0, False)
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
        o_, h_, l_, c_ = (bars.column(k).to_numpy() for k in ("open", "high", "low", "close"))
        vol = bars.column("volume").to_numpy()
        n = len(ts)
        res.bars = n
        known = np.isin(inst, np.fromiter(self.venue.books, dtype=np.int64))
        if not known.all():
            raise ValueError(f"bars for unknown instrument ids "
                             f"{sorted(set(inst[~known].tolist()))[:5]}")
        starts = np.flatnonzero(np.r_[True, ts[1:] != ts[:-1]]) if n else np.zeros(0, int)
        ends = np.r_[starts[1:], n] if n else starts
        uts = ts[starts] if n else ts
        res.timestamps = len(starts)
        step = int(np.min(np.diff(uts))) if len(uts) > 1 else 60_000_000_000
        size = _MD.size
        chunk = 1 << 14  # bar times whose close records are built at once (bounded memory)
        base = 0
        mv = memoryview(b"")
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
        s_bounds = np.searchsorted(s_bar, np.arange(len(starts) + 1), side="left")
        active: set[int] = set()
        next_mark = int(uts[0]) + self.mark_ns if n and self.mark_ns else 0
        day = int(uts[0]) // NS_PER_DAY if n else 0
        prog = _Progress(len(starts), progress)
        sample = getattr(self.engine, "_sample_closes", None)
        if getattr(self.ecfg, "oms", None) is None:
            sample = None
        try:
            for k in range(len(starts)):
                t = int(uts[k])
                if k % chunk == 0:
                    base = int(starts[k])
                    top = int(ends[min(k + chunk, len(starts)) - 1])
                    mv = memoryview(self._close_frames(inst[base:top], c_[base:top],
                                                       vol[base:top],
                                                       ts[base:top] + step - 1))
                self.clock = max(self.clock, t)
                if t // NS_PER_DAY != day:
                    day = t // NS_PER_DAY
                    self._input(KIND_START_OF_DAY, b"")
                lo, hi = int(starts[k]), int(ends[k])
                sig = sig_rows[s_bounds[k]:s_bounds[k + 1]]
                if sig or active:
                    detail = sorted(active | {int(r[2]) for r in sig})
                    rows = {int(inst[j]): j for j in range(lo, hi)}
                    detail = [i for i in detail if i in rows]
                    for i in detail:
                        j = rows[i]
                        self._point(i, int(o_[j]), int(vol[j]))
                    for row in sig:
                        self._signal(row, t)
                    for i in detail:
                        j = rows[i]
                        up = c_[j] >= o_[j]
                        path = (l_[j], h_[j]) if up else (h_[j], l_[j])
                        for p, frac in zip(path, (1, 2), strict=True):
                            self.clock = max(self.clock, t + frac * step // 3)
                            self._point(i, int(p), int(vol[j]))
                    self.clock = max(self.clock, t + step - 1)
                    for i in detail:
                        j = rows[i]
                        self.venue.now = self.clock
                        self.venue.quote(i, int(c_[j]), self.venue.depth(i, int(vol[j])))
                        self._pump()
                else:
                    self.clock = max(self.clock, t + step - 1)
                self._gateway(mv[(lo - base) * size:(hi - base) * size])
                self._pump()
                if self.loop.timer_due(self.clock):
                    self._input(KIND_TIMER, b"")
                    self._pump()
                if sample is not None:
                    sample()  # the engine's recent closes (volatility sizing): one per bar
                if next_mark and self.clock >= next_mark:
                    next_mark = self.clock + self.mark_ns
                    self._input(KIND_MARK_TO_MARKET, b"")
                if sig or active:
                    active = self._active(sorted(active | {int(r[2]) for r in sig}))
                if k & 1023 == 0:
                    prog.update(k)
            # signals after the last bar: applied at their own time, after everything
            for row in sig_rows[s_bounds[len(starts)]:]:
                self.clock = max(self.clock, int(row[0]))
                self._signal(row, int(row[0]))
            self._input(KIND_MARK_TO_MARKET, b"")
            self.flush()
        finally:
            prog.close(len(starts))
        res.wall_s = time.perf_counter() - t_wall
        res.digest = self.h.hexdigest()
        res.orders = int(self.loop.n_acks)
        res.positions = self.positions()
        return res

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

    cfg = load_config(config_path)
    ex = next(iter(cfg.exchanges.values()))
    writer_ep = f"ipc://{workdir}/paper-writer"
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
               record_fills: bool = False, mark_every_s: int = 3600) -> ReplayResult:
    """Replay into ``out`` (a new DuckDB file; refused when it exists) and/or Parquet."""
    store = None
    if out or parquet:
        from writer.store import Store

        if out and Path(out).exists():
            raise FileExistsError(f"{out} exists; replay writes a new database")
        path = out or str(Path(parquet or ".") / "replay.duckdb")
        store = Store(path)
    try:
        rp = Replayer(cfg, store, record_fills=record_fills, mark_every_s=mark_every_s)
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
        bars = load_bars(bars_path, instruments=cfg.ids.instruments)
        signals = (load_signals(sig_path, cfg.ids.strategies, cfg.ids.instruments)
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
