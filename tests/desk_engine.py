"""A real engine process on the full OMS TOML (``oms_core/config/``), with the test playing
the gateway over real ZeroMQ sockets on ipc:// in the test's directory.

The configuration: USDT / BTC / ETH, one simulated exchange, BTCUSDT and ETHUSDT, strategy
``trend`` on both; clients alice (fixed 0.01 BTC / 0.1 ETH, long only, cancel on disconnect),
bob (volatility-targeted: refused until enough bars) and carol (fixed 0.02 BTC, long /
short), in the order given to :func:`write_desk`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import zmq

from bindings.wire import records as wire
from bindings.wire.spec import ExecType, MsgType
from oms_core.engine.process import spawn_engine, wait_ready

HEAD = """
[oms]
mode = "paper"

[engine]
commands = "ipc://{d}/cmd"
signals = "ipc://{d}/sig"
events = "ipc://{d}/pub"
health = "ipc://{d}/health"
journal_dir = "{d}/journal"
journal_durability = "sync"

[assets]
USDT = {{ precision = 8 }}
BTC = {{ precision = 8 }}
ETH = {{ precision = 8 }}

[exchanges.sim]
kind = "sim"
orders = "ipc://{d}/gw-orders"
events = "ipc://{d}/gw-events"
market_data = "ipc://{d}/gw-md"

[instruments.BTCUSDT]
base = "BTC"
quote = "USDT"
tick = "{btc_tick}"
lot = "0.0001"
min_qty = "0.0001"
max_qty = "100"

[instruments.ETHUSDT]
base = "ETH"
quote = "USDT"
tick = "0.01"
lot = "0.0001"
min_qty = "0.0001"
max_qty = "1000"

[strategies.trend]
instruments = ["BTCUSDT", "ETHUSDT"]

[defaults.limits]
max_open_orders = 100
collar_bps = 1000
"""

CLIENTS = {
    "alice": """
[clients.alice]
strategies = ["trend"]
cash = {{ USDT = "100000" }}
cancel_on_disconnect = true

[clients.alice.exchange_accounts.sim]
account = "alice"

[clients.alice.orders]
direction = "long_only"
sizing = "fixed"
fixed_qty = {{ BTCUSDT = "0.01", ETHUSDT = "0.1" }}
""",
    "bob": """
[clients.bob]
strategies = ["trend"]
cash = {{ USDT = "50000" }}

[clients.bob.exchange_accounts.sim]
account = "bob"

[clients.bob.orders]
direction = "long_short"
sizing = "vol_target"
vol_target = "0.01"
vol_window = 500
""",
    "carol": """
[clients.carol]
strategies = ["trend"]
cash = {{ USDT = "70000" }}

[clients.carol.exchange_accounts.sim]
account = "carol"

[clients.carol.orders]
direction = "long_short"
sizing = "fixed"
fixed_qty = {{ BTCUSDT = "0.02", ETHUSDT = "0.2" }}
""",
}


def write_desk(d: Path, clients: Iterable[str] = ("alice", "bob"),
               btc_tick: str = "0.01") -> Path:
    """Write ``d/desk.toml`` with the named client blocks in that order; return its path."""
    text = HEAD.format(d=d, btc_tick=btc_tick) + "".join(
        CLIENTS[c].format(d=d) for c in clients)
    path = d / "desk.toml"
    path.write_text(text)
    return path


class DeskEngine:
    """``python -m oms_core.engine --config desk.toml`` (no reconciliation gate: the test is
    the gateway and answers nothing of it)."""

    def __init__(self, config: Path, *extra: str) -> None:
        self.config = config
        self.args = [sys.executable, "-m", "oms_core.engine", "--config", str(config),
                     "--log-level", "WARNING", "--no-reconcile", *extra]
        self.proc: subprocess.Popen[str] | None = None
        self.endpoints: dict[str, str] = {}
        self.stderr = ""

    def start(self, timeout: float = 20.0) -> DeskEngine:
        self.proc = spawn_engine(self.args, subprocess.PIPE)
        seen = wait_ready(self.proc, timeout)
        if "READY" not in seen:
            self.stop()
            raise RuntimeError(f"engine did not start: {self.stderr}")
        self.endpoints = seen["READY"][1]
        return self

    def run_to_exit(self, timeout: float = 20.0) -> int:
        """Start and expect the engine to refuse: return its exit status (stderr kept)."""
        self.proc = spawn_engine(self.args, subprocess.PIPE)
        try:
            _, self.stderr = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:  # it started instead of refusing
            return -self.stop()
        return self.proc.returncode

    def stop(self, timeout: float = 15.0) -> int:
        p = self.proc
        assert p is not None
        if p.poll() is None:
            p.terminate()
        try:
            _, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
        self.stderr = err or ""
        return p.returncode

    def __enter__(self) -> DeskEngine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()


class Venue:
    """The test as the exchange's gateway: takes the engine's orders, reports acks and
    fills, publishes top of book."""

    def __init__(self, d: Path) -> None:
        self.ctx = zmq.Context()
        self.orders = self.ctx.socket(zmq.PULL)
        self.reports = self.ctx.socket(zmq.PUSH)
        self.md = self.ctx.socket(zmq.PUB)
        for s, name in ((self.orders, "gw-orders"), (self.reports, "gw-events"),
                        (self.md, "gw-md")):
            s.setsockopt(zmq.LINGER, 0)
            s.connect(f"ipc://{d}/{name}")
        self.seq = 0
        self.trade_id = 0
        self.pending: list[Any] = []

    def recv(self, pred: Callable[[Any], bool], timeout: float = 5.0) -> Any:
        """The first record from the engine matching ``pred`` (the others are kept)."""
        end = time.monotonic() + timeout
        while True:
            for i, rec in enumerate(self.pending):
                if pred(rec):
                    return self.pending.pop(i)
            if time.monotonic() >= end:
                raise TimeoutError("no such order reached the gateway")
            if self.orders.poll(50):
                self.pending += wire.decode_frame(self.orders.recv())

    def report(self, **fields: Any) -> None:
        self.seq += 1
        self.reports.send(wire.encode("GW_EXEC_REPORT", 0, self.seq, time.time_ns(), **fields))

    def quote(self, instrument: int, bid: int, ask: int) -> None:
        self.seq += 1
        self.md.send(wire.encode("GW_MARKET_DATA", 0, self.seq, time.time_ns(), bid=bid,
                                 bid_qty=10**6, ask=ask, ask_qty=10**6, last=(bid + ask) // 2,
                                 instrument=instrument))

    def fill(self, order: Any, qty: int, price: int) -> None:
        """Acknowledge ``order`` (a GW_NEW_ORDER) and fill ``qty`` of it at ``price``."""
        self.trade_id += 1
        common = {"order_id": order.order_id, "account": order.account,
                  "instrument": order.instrument}
        self.report(exec_type=ExecType.ACK, exch_order_id=order.order_id, **common)
        self.report(exec_type=ExecType.FILL, exch_order_id=order.order_id,
                    trade_id=self.trade_id, last_qty=qty, last_price=price, liquidity=1,
                    cum_qty=qty, leaves_qty=order.quantity - qty, **common)

    def close(self) -> None:
        self.ctx.destroy(0)


def until(pred: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``pred`` every 50 ms until it is truthy; return its value (bounded)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise TimeoutError(f"{what} not reached in {timeout} s")


def is_new_order(rec: Any) -> bool:
    return rec.msg_type == MsgType.GW_NEW_ORDER
