"""Helpers of the crash tests of the real engine: the engine process, a pipelining client on
a raw DEALER socket, and a test gateway thread that fills every order it is sent.

Everything is real: ``python -m oms_core.engine --journal DIR`` in a subprocess, ZeroMQ over
ipc:// sockets in the test's temporary directory, the real journal on disk.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import zmq

from bindings.wire import records as wire
from bindings.wire.spec import ExecType, MsgType
from oms_core.engine import process
from oms_core.engine.process import base_config, config_args, spawn_engine, wait_ready

BUY_PX, SELL_PX = 4_990_000, 5_010_000  # two price levels: average costs stay exact
QTY = 100
FEE = 3
PX = Decimal(10) ** -2  # instrument 1: price precision 2, quantity precision 5
QX = Decimal(10) ** -5
AX = Decimal(10) ** -8  # asset precision 8


def venue_of_account1(cfg: dict[str, Any]) -> dict[str, Any]:
    """``cfg`` with account 1 the only one at exchange1: the venue peers of these tests
    (:class:`Gateway`, the simulator's one account) answer a reconciliation for it alone."""
    for name in ("account2", "account3"):
        cfg["clients"][name].update(strategies=[], exchange_accounts={})
    return cfg


def write_config(tmp: Path, **engine: Any) -> Path:
    return process.write_config(venue_of_account1(base_config(tmp, "ipc", **engine)),
                                tmp / "engine.toml")


class Engine:
    """``python -m oms_core.engine --config F --journal DIR`` as a child; kill -9 or SIGTERM."""

    def __init__(self, config: Path, journal: Path, *extra: str) -> None:
        self.args = [sys.executable, "-m", "oms_core.engine", *config_args(config),
                     "--journal", str(journal), "--log-level", "WARNING", *extra]
        self.err_path = config.parent / "engine-stderr.log"
        self.proc: subprocess.Popen[str] | None = None
        self.endpoints: dict[str, str] = {}
        self.recovered: dict[str, Any] = {}
        self.reconciled: dict[str, Any] = {}
        self.stopped: dict[str, Any] = {}

    def start(self, timeout: float = 30.0) -> Engine:
        with open(self.err_path, "a") as err:
            self.proc = spawn_engine(self.args, err)
        seen = wait_ready(self.proc, timeout)
        self.recovered = seen.get("RECOVERED", (0, {}))[1]
        self.reconciled = seen.get("RECONCILED", (0, {}))[1]
        if "READY" in seen:
            self.endpoints = seen["READY"][1]
            return self
        self.kill9()
        raise RuntimeError(f"engine did not start: {self.err_path.read_text()[-3000:]}")

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(10)
            if self.proc.stdout is not None:
                self.proc.stdout.close()

    def stop(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=timeout)
        for ln in out.splitlines():
            if ln.startswith("STOPPED "):
                self.stopped = json.loads(ln[8:])
        return self.proc.returncode


@dataclass
class GwFill:
    order_id: int
    trade_id: int
    side: int
    qty: int
    price: int
    fee: int


class Gateway(threading.Thread):
    """The venue: ACK + one full FILL for every GW_NEW_ORDER; after an engine restart it
    re-sends every fill it ever reported (as a reconnecting gateway would), so the engine
    must drop the ones it already booked."""

    def __init__(self, ctx: zmq.Context, eps: dict[str, str]) -> None:
        super().__init__(daemon=True, name="test-gateway")
        self.orders = ctx.socket(zmq.PULL)
        self.reports = ctx.socket(zmq.PUSH)
        for s in (self.orders, self.reports):
            s.setsockopt(zmq.LINGER, 0)
        self.orders.connect(eps["gateway_orders_1"])
        self.reports.connect(eps["gateway_events"])
        self.fills: dict[int, GwFill] = {}  # trade id -> fill
        self.by_order: dict[int, int] = {}  # order id -> trade id
        self.next_trade = 1_000
        self.pending: deque[bytes] = deque()
        self.want_resend = threading.Event()
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.seq = 0

    def _report(self, **kw: Any) -> bytes:
        self.seq += 1
        return wire.encode("GW_EXEC_REPORT", 0, self.seq, time.time_ns(), **kw)

    def _fill_frame(self, f: GwFill) -> bytes:
        return self._report(order_id=f.order_id, exec_type=int(ExecType.FILL),
                            trade_id=f.trade_id, last_qty=f.qty, last_price=f.price, fee=f.fee,
                            fee_asset=2, account=1, instrument=1, liquidity=1)

    def run(self) -> None:
        while not self.stop_flag.is_set():
            if self.want_resend.is_set():
                self.want_resend.clear()
                with self.lock:
                    self.pending.extend(self._fill_frame(f) for f in self.fills.values())
            if self.orders.poll(10):
                for _ in range(1000):
                    try:
                        frame = self.orders.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    for r in wire.decode_frame(frame):
                        if r.msg_type == MsgType.GW_RECONCILE:
                            self._answer_reconcile(r.request_id)
                            continue
                        if r.msg_type != MsgType.GW_NEW_ORDER or r.order_id in self.by_order:
                            continue
                        f = GwFill(r.order_id, self.next_trade, r.side, r.quantity, r.price, FEE)
                        self.next_trade += 1
                        with self.lock:
                            self.fills[f.trade_id] = f
                            self.by_order[f.order_id] = f.trade_id
                        self.pending.append(self._report(order_id=r.order_id, exec_type=int(
                            ExecType.ACK), account=1, instrument=1, exch_order_id=r.order_id))
                        self.pending.append(self._fill_frame(f))
            while self.pending:
                try:
                    self.reports.send(self.pending[0], zmq.NOBLOCK)
                except zmq.Again:
                    break
                self.pending.popleft()

    def _answer_reconcile(self, rid: int) -> None:
        """Answer an engine's GW_RECONCILE: every order is filled (none open), every fill."""
        with self.lock:
            fills = list(self.fills.values())
        for f in fills:
            self.seq += 1
            self.pending.append(wire.encode(
                "GW_EXEC_REPORT", rid, self.seq, time.time_ns(), 1, order_id=f.order_id,
                exec_type=int(ExecType.FILL), trade_id=f.trade_id, last_qty=f.qty,
                last_price=f.price, fee=f.fee, fee_asset=2, account=1, instrument=1,
                liquidity=1))
        self.seq += 1
        self.pending.append(wire.encode("GW_RECONCILE_END", rid, self.seq, time.time_ns(), 0,
                                        n_fills=len(fills), account=1, gateway_id=1))

    def close(self) -> None:
        self.stop_flag.set()
        self.join(5)
        self.orders.close(0)
        self.reports.close(0)

    def expected(self) -> dict[str, Decimal]:
        """Position, realized PnL and fee balance of account 1, recomputed in Decimal."""
        pos = Decimal(0)
        realized = Decimal(0)
        fees = Decimal(0)
        avg = Decimal(0)
        with self.lock:
            fills = sorted(self.fills.values(), key=lambda f: f.trade_id)
        for f in fills:  # the engine books them in this order only if reports are in order
            q = Decimal(f.qty) * QX * (1 if f.side == 1 else -1)
            p = Decimal(f.price) * PX
            fees += Decimal(f.fee) * AX
            if pos == 0 or (pos > 0) == (q > 0):
                avg = (avg * abs(pos) + p * abs(q)) / (abs(pos) + abs(q))
                pos += q
            else:
                closed = min(abs(q), abs(pos))
                realized += (p - avg) * closed * (1 if pos > 0 else -1)
                pos += q
                if pos != 0 and (pos > 0) == (q > 0):
                    avg = p
        return {"qty": pos, "realized": realized, "fees": fees}


class Trader:
    """A client on a raw DEALER socket: frames of ``per_frame`` NEW_ORDER records, at most
    ``window`` frames in flight; remembers every ACK (client order id -> order id)."""

    def __init__(self, ctx: zmq.Context, endpoint: str, acked: dict[int, int],
                 next_cl: int, per_frame: int = 10, window: int = 2) -> None:
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.acked = acked
        self.rejected: set[int] = set()
        self.next_cl = next_cl
        self.per_frame = per_frame
        self.window = window
        self.in_flight = 0

    def _frame(self) -> bytes:
        recs = []
        for _ in range(self.per_frame):
            cl = self.next_cl
            self.next_cl += 1
            side = 1 if cl % 2 else 2
            recs.append(wire.encode("NEW_ORDER", cl, 0, time.time_ns(), 0, client_order_id=cl,
                                    price=BUY_PX if side == 1 else SELL_PX, quantity=QTY,
                                    account=1, strategy=1, instrument=1, side=side,
                                    order_type=2, tif=1))
        return b"".join(recs)

    def pump(self, until: float, alive: Any) -> None:
        """Send and collect answers until ``until`` (monotonic) or ``alive()`` is False."""
        while time.monotonic() < until and alive():
            while self.in_flight < self.window:
                self.sock.send(self._frame())
                self.in_flight += 1
            if self.sock.poll(20):
                self._take()

    def _take(self) -> None:
        while True:
            try:
                frame = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            n = 0
            for r in wire.decode_frame(frame):
                if r.msg_type == MsgType.ACK and r.cmd_type == MsgType.NEW_ORDER:
                    self.acked[r.client_order_id] = r.order_id
                    n += 1
                elif r.msg_type == MsgType.REJECT:
                    self.rejected.add(r.client_order_id)
                    n += 1
            if n:
                self.in_flight -= 1

    def close(self) -> None:
        self.sock.close(0)


def query(ctx: zmq.Context, endpoint: str, kind: int, rid: int, timeout: float = 10.0
          ) -> list[Any]:
    """Rows of one QUERY (account 1, everything), through its own DEALER."""
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(endpoint)
    try:
        s.send(wire.encode("QUERY", rid, 0, time.time_ns(), 0, kind=kind, account=1,
                           strategy=0xFFFFFFFF, instrument=0xFFFFFFFF))
        rows: list[Any] = []
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not s.poll(100):
                continue
            for r in wire.decode_frame(s.recv()):
                if r.msg_type == MsgType.QUERY_RESULT and r.request_id == rid:
                    assert r.code == 0, r
                    return rows
                if r.request_id == rid:
                    rows.append(r)
        raise TimeoutError(f"query {kind} not answered")
    finally:
        s.close(0)
