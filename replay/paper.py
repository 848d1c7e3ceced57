"""The paper harness: the engine PROCESS in real time with :class:`replay.venue.BarVenue` as
its gateway over ZeroMQ, over the same bars and signals a replay takes.

It is the live twin of :class:`replay.driver.Replayer`: the same bars through real sockets and
the engine's wall clock give the same fills and final positions (tests/integration/
replay/test_replay_paper.py, benchmarks/bench_replay.py hold the two to it).
"""

from __future__ import annotations

import os
import selectors
import signal as _signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import zmq

from bindings.wire import records as wire
from bindings.wire.spec import ANY_ID, MsgType
from oms_core import security
from oms_core.config import load_config
from replay.driver import HEADER
from replay.venue import BarVenue

__all__ = ["PaperResult", "run_paper"]

_SIGNAL = wire.CODECS["SIGNAL"]


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
                _m, _v, _f, mt, length, _s, _r, _t = HEADER.unpack_from(frame, off)
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
