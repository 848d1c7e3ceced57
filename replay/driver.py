"""The replay driver: historical bars and signals through the engine, on a simulated clock.

Live, paper and replay drive the same engine: every input here goes through the engine's one
entry point (:class:`oms_core.engine.Engine` and its compiled ``EngineLoop``:
``apply_input`` for signals and engine-internal inputs, ``on_gateway_frame`` for venue reports
and market data). Only the clock and the gateway differ:

* the clock is the data: bar timestamps (and signal timestamps) are the engine's receive
  times; nothing reads the wall clock, so the same input gives the same output, bit for bit
  (the wall-clock send stamps the engine writes into its records are replaced by the
  simulated time before anything is stored or hashed);
* the gateway is :class:`replay.venue.BarVenue`.

Speed without changing a bit (``Replayer(fast=True)``, the default; ``fast=False`` is the
step-by-step reference it is tested against): spans of bar times with no live order and no
signal go to the engine as one market-data frame, and the venue places a quote in its book
only when it can matter (see :meth:`Replayer._quiet` and :class:`replay.venue.BarVenue`).

Results go to DuckDB through the writer's own code (:class:`writer.store.Store`,
:class:`writer.drain.Batcher`: the same tables as live) plus two small tables,
``replay_summary`` (final position, fees and P&L per account and instrument) and
``replay_run`` (counts and the digest of every event record). See docs/replay.md.
"""

from __future__ import annotations

import hashlib
import struct
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from bindings.wire import records as wire
from bindings.wire.spec import ANY_ID, MsgType
from oms_core.config import OmsConfig
from oms_core.engine import KIND_MARK_TO_MARKET, KIND_START_OF_DAY, KIND_TIMER, Engine
from oms_core.engine.config import build_core, from_oms_config
from oms_core.engine.entry import apply_internal, apply_trusted_gateway_frame
from replay.venue import MARKET_DATA, BarVenue
from writer.drain import Batcher
from writer.store import Store, export_parquet

__all__ = ["ReplayResult", "Replayer", "run_replay"]

NS_PER_DAY = 86_400_000_000_000

HEADER = struct.Struct("<HBBHHQQq")  # the wire record header (bindings/wire/spec.py)
_SIGNAL = wire.CODECS["SIGNAL"]
_ACK_NS = wire.CODECS["ACK"].dtype.fields["ack_ns"][1]
_REJECT_NS = wire.CODECS["REJECT"].dtype.fields["reject_ns"][1]
_CHUNK = 1 << 14  # bar times whose close records are built at once (bounded memory)
_CLOSES_KEPT = 1024  # the engine's recent closes per instrument (Engine._sample_closes)


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
        _m, _v, _f, mt, length, _s, _r, _t = HEADER.unpack_from(b, off)
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
    sample: Any = None  # Engine._sample_closes
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

    def __init__(self, cfg: OmsConfig, store: Store | None = None, record_fills: bool = False,
                 mark_every_s: int = 3600, flush_rows: int = 200_000,
                 fast: bool = True) -> None:
        self.cfg = cfg
        self.fast = fast
        # built as the engine process builds it for the same file (``load_engine_config``)
        self.ecfg = from_oms_config(cfg)
        self.core = build_core(self.ecfg)
        self.engine = Engine(self.core, None, self.ecfg)
        self.loop = self.engine.loop
        self.venue = BarVenue(cfg, lazy=fast)
        self.n_cols = max(self.venue.books, default=-1) + 1  # instrument ids index columns
        self.n_sampled = len(cfg.instruments)  # the instruments _sample_closes samples
        self.quotes = (0, 0)  # (quotes asked for, quotes placed in a book) by the last run
        self.store = store
        self.flush_rows = flush_rows
        self.batcher: Batcher | None = None
        if store is not None:
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
        apply_internal(self.loop, kind, self.clock, payload)
        self._collect()

    def _gateway(self, frame: Any) -> None:
        apply_trusted_gateway_frame(self.loop, frame, self.clock)
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
            _m, _v, _f, mt, length, _s, _r, _t = HEADER.unpack_from(frame, off)
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
        r.sample = self.engine._sample_closes
        r.spans = self.fast
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
        r.mv = memoryview(self.venue.close_frames(r.inst[base:top], r.close[base:top],
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
        size = MARKET_DATA.size
        self._gateway(r.mv[(lo - r.base) * size:(hi - r.base) * size])
        self._pump()
        if self.loop.timer_due(self.clock):
            self._input(KIND_TIMER, b"")
            self._pump()
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
        last0 = [self.loop.reference_price(i)[0] for i in range(self.n_sampled)]
        self.clock = c_end
        size = MARKET_DATA.size
        self._gateway(r.mv[(lo - r.base) * size:(hi - r.base) * size])
        self._pump()
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



def run_replay(cfg: OmsConfig, bars: pa.Table, signals: pa.Table | None,
               out: str | None = None, parquet: str | None = None, progress: bool = False,
               record_fills: bool = False, mark_every_s: int = 3600,
               fast: bool = True) -> ReplayResult:
    """Replay into ``out`` (a new DuckDB file; refused when it exists) and/or Parquet.

    ``fast=False``: the step-by-step reference (same results, slower; see :class:`Replayer`).
    """
    store = None
    if out or parquet:
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
                export_parquet(store.con, parquet)
            store.checkpoint()
        return res
    finally:
        if store is not None:
            store.close()


def _write_summary(store: Store, cfg: OmsConfig, res: ReplayResult) -> None:
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


