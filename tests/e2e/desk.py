"""`oms run` on examples/desk.toml for end-to-end tests: real processes on loopback, and each
simulator's own per-account records to hold the engine to.

* :func:`write_desk` copies the desk with free ports and its files under a directory;
* :class:`OmsRun` is one `oms run` (start, SIGTERM, the pids of its children, kill -9 of one);
* :class:`Venue` is one simulated venue account, read with its own signed REST calls, and the
  simulator's admin calls (move a mid, step the market);
* :class:`Desk` puts them together: a client by names (bindings/client.py), what each client
  holds in the engine and at its venue accounts, and what DuckDB booked after the stop.

Every wait is bounded.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from bindings.client import OmsClient, Rejected
from oms_core.config import OmsConfig, load_config
from oms_core.engine.process import wait_ready
from oms_core.enums import TERMINAL_STATUSES, OrderStatus, Reject
from oms_core.supervisor import free_port, sim_key_files

ROOT = Path(__file__).resolve().parents[2]
DESK = ROOT / "examples" / "desk.toml"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
OMS = [sys.executable, "-m", "oms_core.cli"]
PREFIX = "oms0-"  # client order ids of shard 0 at the venues
READER_IP = "127.0.0.2"  # the tests read the venues from here (still loopback)


def write_desk(directory: Path, bar_interval_s: int | None = None) -> Path:
    """examples/desk.toml with free loopback ports and its files under ``directory``;
    ``bar_interval_s``: bars of that many seconds for every strategy (volatility brackets
    within seconds instead of the desk's minutes)."""
    text = DESK.read_text().replace("../var/desk/", "")
    if bar_interval_s is not None:
        text = re.sub(r"^(\[strategies\.\w+\])$", rf"\1\nbar_interval_s = {bar_interval_s}",
                      text, flags=re.M)
    ports = {p: str(free_port()) for p in sorted(set(re.findall(r"127\.0\.0\.1:(\d+)", text)))}
    text = re.sub(r"127\.0\.0\.1:(\d+)", lambda m: f"127.0.0.1:{ports[m.group(1)]}", text)
    path = directory / "desk.toml"
    path.write_text(text)
    return path


def raw(value: str, precision: int) -> int:
    return int(Decimal(value).scaleb(precision))


def wait_until(pred: Callable[[], Any], timeout: float, interval: float = 0.3) -> Any:
    """``pred()`` once it is truthy, or its last (falsy) value after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not (value := pred()) and time.monotonic() < end:
        time.sleep(interval)
    return value


# ------------------------------------------------------------------------------ oms run
class OmsRun:
    """One `oms run --config CONFIG --run-dir RUN_DIR` (its stderr in ``RUN_DIR.err``)."""

    def __init__(self, config: Path, run_dir: Path, timeout: float = 90.0) -> None:
        self.run_dir = run_dir
        self.err = run_dir.with_suffix(".err")
        with open(self.err, "ab") as err:
            self.proc = subprocess.Popen(
                OMS + ["run", "--config", str(config), "--run-dir", str(run_dir),
                       "--backoff", "0.2"], stdout=subprocess.PIPE, stderr=err, text=True,
                env=ENV, cwd=ROOT)
        self.ready = self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> dict[str, Any]:
        seen = wait_ready(self.proc, timeout)  # oms run prints READY as the engine does
        if "READY" in seen:
            return dict(seen["READY"][1])
        self.kill()
        raise RuntimeError(f"oms run did not start: {self.err.read_text()[-3000:]}")

    @property
    def commands(self) -> str:
        return str(self.ready["shards"]["0"]["commands"])

    @property
    def database(self) -> str:
        return str(self.ready["shards"]["0"]["database"])

    def processes(self) -> dict[str, dict[str, Any]]:
        state = json.loads((self.run_dir / "state.json").read_text())
        return {p["name"]: p for p in state["processes"]}

    def kill9(self, name: str, timeout: float = 60.0) -> int:
        """kill -9 the child ``name``; wait until the supervisor started it again (alive,
        another pid); return its new pid."""
        before = self.processes()[name]
        os.kill(before["pid"], signal.SIGKILL)

        def restarted() -> int:
            p = self.processes()[name]
            return p["pid"] if p["alive"] and p["starts"] > before["starts"] else 0

        pid = wait_until(restarted, timeout, 0.1)
        assert pid, (name, self.processes()[name])
        return int(pid)

    def log(self, name: str, start: int | None = None) -> str:
        """The log of child ``name``: all of it, or only the output of its ``start``-th start."""
        text = (self.run_dir / "logs" / f"{name}.log").read_text(errors="replace")
        if start is None:
            return text
        return text.split(f"--- start {start} at", 1)[-1].split(f"--- start {start + 1} at")[0]

    def stop(self, timeout: float = 120.0) -> int:
        """SIGTERM, wait; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.proc.returncode)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=10)


# ------------------------------------------------------------------------------ the venue
class Venue:
    """One simulated venue account, read through the venue's own signed REST API."""

    def __init__(self, run_dir: Path, cfg: OmsConfig, exchange: str, client: str) -> None:
        self.exchange, self.client = exchange, client
        key_file, secret_file = sim_key_files(run_dir, exchange, client)
        self.key = key_file.read_text().strip()
        self.secret = secret_file.read_text().strip().encode()
        ports = json.loads((run_dir / f"sim-{exchange}.json").read_text())
        self.base = ports["base_url"]
        self.symbols = {i.exchange_symbol: i for i in cfg.instruments.values()
                        if i.exchange == exchange}

    def _request(self, method: str, path: str, headers: dict[str, str] | None = None) -> Any:
        # from a loopback address of its own: the venue counts request weight per IP, and
        # these reads must not use up the gateways' budget (nor be refused with theirs)
        url = urllib.parse.urlsplit(self.base)
        conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10,
                                          source_address=(READER_IP, 0))
        try:
            conn.request(method, path, headers=headers or {})
            r = conn.getresponse()
            body = json.loads(r.read())
            if r.status != 200:
                raise RuntimeError(f"{method} {path.split('?')[0]}: {r.status} {body}")
            return body
        finally:
            conn.close()

    def call(self, method: str, path: str, **params: Any) -> Any:
        params["timestamp"] = int(time.time() * 1000)
        q = urllib.parse.urlencode(params)
        sig = hmac.new(self.secret, q.encode(), hashlib.sha256).hexdigest()
        return self._request(method, f"/api/v3{path}?{q}&signature={sig}",
                             {"X-MBX-APIKEY": self.key})

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, **params)

    def orders(self) -> list[dict[str, Any]]:
        return [o for s in self.symbols for o in self.get("/allOrders", symbol=s)]

    def trades(self) -> list[dict[str, Any]]:
        return [t for s in self.symbols for t in self.get("/myTrades", symbol=s)]

    def book_ticker(self, symbol: str) -> dict[str, str]:
        """The venue's best bid and ask of ``symbol`` (public)."""
        return dict(self._request("GET", "/api/v3/ticker/bookTicker?" + urllib.parse.urlencode(
            {"symbol": symbol})))

    def admin(self, path: str, **params: Any) -> Any:
        """A simulator admin call (``/_sim/...``, docs/simulator.md); not signed."""
        return self._request("POST", f"/_sim/{path}?{urllib.parse.urlencode(params)}")


# ------------------------------------------------------------------------------ the desk
class Desk:
    """`oms run` on the desk in ``directory``, with a client by names and every venue
    account of every client."""

    def __init__(self, directory: Path, bar_interval_s: int | None = None) -> None:
        self.config = write_desk(directory, bar_interval_s)
        self.run_dir = directory / "run"
        self.run: OmsRun | None = None
        self.client: OmsClient | None = None
        self.cfg = load_config(self.config, identity=False)
        self.strategy_of = {i: s.name for s in self.cfg.strategies.values()
                            for i in s.instruments}

    def add_user(self, name: str, role: str, clients: tuple[str, ...] = (),
                 strategies: tuple[str, ...] = ()) -> None:
        """Give the desk (before :meth:`start`) the key holder ``[security.users.<name>]``,
        scoped to ``clients`` or ``strategies``."""
        table = f'\n[security.users.{name}]\nrole = "{role}"\n'
        if clients:
            table += f"clients = {json.dumps(list(clients))}\n"
        if strategies:
            table += f"strategies = {json.dumps(list(strategies))}\n"
        self.config.write_text(self.config.read_text() + table)

    # -- processes
    def start(self) -> OmsRun:
        self.run = OmsRun(self.config, self.run_dir)
        self.cfg = load_config(self.config)  # ids as recorded beside the journal
        self.venues = {(ex, c): Venue(self.run_dir, self.cfg, ex, c)
                       for c, cc in self.cfg.clients.items() for ex in cc.exchange_accounts}
        self.connect()
        return self.run

    def connect(self) -> OmsClient:
        """A new client connection (the old one closed), hello for every client's events."""
        if self.client is not None:
            self.client.close()
        assert self.run is not None
        self.client = OmsClient(self.run.commands, config=self.cfg, timeout=5.0)
        # a long heartbeat interval: this client sends no heartbeats, and a session silent
        # for three intervals ends (with security on, a new session without HELLO follows no
        # account: the events a test waits for would go nowhere)
        self.client.hello(list(self.cfg.clients), heartbeat_ms=600_000)
        return self.client

    def stop(self) -> int:
        if self.client is not None:
            self.client.close()
            self.client = None
        assert self.run is not None
        return self.run.stop()

    def events(self, timeout: float = 0.2) -> list[Any]:
        """The events the engine sent this connection since the last call."""
        return list(self.c.events(timeout))

    @property
    def c(self) -> OmsClient:
        assert self.client is not None
        return self.client

    # -- commands
    def until_accepted(self, send: Callable[[], Any], timeout: float = 30.0,
                       retry: tuple[int, ...] = (Reject.NO_REFERENCE_PRICE,)) -> Any:
        """``send()`` until it is not refused with one of ``retry`` (prices not yet in, the
        restart gate still closed); the last answer."""
        end = time.monotonic() + timeout
        while True:
            r = send()
            if not isinstance(r, Rejected) or r.code not in retry or time.monotonic() > end:
                return r
            time.sleep(0.3)

    def buy_sell(self, who: str, symbol: str, side: int, qty: str, timeout: float = 30.0,
                 retry: tuple[int, ...] = (Reject.NO_REFERENCE_PRICE,), **kw: Any) -> Any:
        return self.until_accepted(lambda: self.c.submit(
            symbol, side, qty, account=who, strategy=self.strategy_of[symbol], **kw),
            timeout, retry)

    # -- the engine's view
    def engine_orders(self, who: str) -> dict[int, Any]:
        return {o.order_id: o for o in self.c.orders(open_only=False, account=who).rows}

    def positions(self, who: str) -> dict[int, int]:
        return {p.instrument: p.quantity for p in self.c.positions(account=who).rows
                if p.quantity}

    def balances(self, who: str) -> dict[int, int]:
        return {b.asset: b.total for b in self.c.balances(account=who).rows if b.total}

    # -- the venues' view
    def accounts_of(self, who: str) -> Iterator[Venue]:
        return (v for (_ex, c), v in self.venues.items() if c == who)

    def venue_positions(self, who: str) -> dict[int, int]:
        out: dict[int, int] = defaultdict(int)
        for v in self.accounts_of(who):
            for t in v.trades():
                i = v.symbols[t["symbol"]]
                q = raw(t["qty"], i.qty_precision)
                out[i.id] += q if t["isBuyer"] else -q
        return {k: q for k, q in out.items() if q}

    def venue_balances(self, who: str) -> dict[int, int]:
        out: dict[int, int] = defaultdict(int)
        for v in self.accounts_of(who):
            for b in v.get("/account")["balances"]:
                a = self.cfg.assets[b["asset"]]
                out[a.id] += raw(b["free"], a.precision) + raw(b["locked"], a.precision)
        return {k: q for k, q in out.items() if q}

    def venue_fills(self) -> Counter[tuple[str, int, int]]:
        """Every venue trade of every account: (client, engine order id, venue trade id)."""
        out: Counter[tuple[str, int, int]] = Counter()
        for (_ex, who), v in self.venues.items():
            cid = {o["orderId"]: o["clientOrderId"] for o in v.orders()}
            for t in v.trades():
                c = cid[t["orderId"]]
                assert c.startswith(PREFIX), (who, t, c)
                out[(who, int(c[len(PREFIX):]), int(t["id"]))] += 1
        return out

    def venue_orders(self) -> set[tuple[str, int]]:
        """Every order at every venue account: (the account's client, engine order id)."""
        out = set()
        for (_ex, who), v in self.venues.items():
            for o in v.orders():
                cid = o["clientOrderId"]
                assert cid.startswith(PREFIX), (who, o)
                out.add((who, int(cid[len(PREFIX):])))
        return out

    def venue_fees(self) -> dict[tuple[int, int], int]:
        """(account id, fee asset id) -> the fees the venues charged; buys pay in the base."""
        fees: dict[tuple[int, int], int] = defaultdict(int)
        for (_ex, who), v in self.venues.items():
            for t in v.trades():
                i = v.symbols[t["symbol"]]
                assert t["commissionAsset"] == (i.base if t["isBuyer"] else i.quote), t
                a = self.cfg.assets[t["commissionAsset"]]
                fees[(self.cfg.clients[who].id, a.id)] += raw(t["commission"], a.precision)
        return dict(fees)

    # -- engine against venue
    def differences(self, clients: tuple[str, ...] = ()) -> list[tuple[str, Any, Any]]:
        """Where a client's engine positions or balances differ from its venue accounts',
        and orders the engine has sent that are not final yet (empty once every order came
        back; re-read until then: fills are in flight)."""
        out: list[tuple[str, Any, Any]] = []
        for who in clients or tuple(self.cfg.clients):
            if self.positions(who) != (venue := self.venue_positions(who)):
                out.append((who, self.positions(who), venue))
            if self.balances(who) != (venue := self.venue_balances(who)):
                out.append((who, self.balances(who), venue))
        return out

    def settle(self, timeout: float = 60.0,
               pending: Callable[[], list[Any]] = lambda: []) -> list[tuple[str, Any, Any]]:
        """Wait until ``pending()`` is empty (the engine's side: cheap), then until
        :meth:`differences` is (the venues' records: read at most once a second); what is
        left (empty when all came back and the engine equals the venues)."""
        end = time.monotonic() + timeout
        while True:
            if waiting := pending():
                diff: list[tuple[str, Any, Any]] = [("pending", waiting, None)]
            elif not (diff := self.differences()):
                return diff
            if time.monotonic() > end:
                return diff
            time.sleep(0.3 if waiting else 1.0)

    def not_final(self, order_ids: dict[int, str]) -> list[tuple[str, int, str]]:
        """Those of ``order_ids`` (engine id -> client) not in a final state in the engine:
        (client, order id, status name)."""
        by_client: dict[str, list[int]] = defaultdict(list)
        for oid, who in order_ids.items():
            by_client[who].append(oid)
        out = []
        for who, oids in by_client.items():
            orders = self.engine_orders(who)
            out += [(who, oid, OrderStatus(orders[oid].status).name) for oid in oids
                    if oid in orders and orders[oid].status not in TERMINAL_STATUSES]
        return out


def booked_fills(database: str) -> Counter[tuple[int, int, int]]:
    """(account id, engine order id, venue trade id) of every execution in DuckDB, counted."""
    import duckdb

    con = duckdb.connect(database, read_only=True)
    try:
        rows = con.execute("""
            with o as (select distinct order_id, account from orders)
            select o.account, e.order_id, e.trade_id from executions e join o using (order_id)
            """).fetchall()
    finally:
        con.close()
    return Counter((int(a), int(o), int(t)) for a, o, t in rows)


def order_accounts(database: str) -> dict[int, set[int]]:
    """Engine order id -> the accounts DuckDB holds it under (one each, when all is well)."""
    import duckdb

    con = duckdb.connect(database, read_only=True)
    try:
        rows = con.execute("select distinct order_id, account from orders").fetchall()
    finally:
        con.close()
    out: dict[int, set[int]] = defaultdict(set)
    for oid, account in rows:
        out[int(oid)].add(int(account))
    return dict(out)


def foreign_orders(desk: Desk, venue_orders: set[tuple[str, int]]
                   ) -> list[tuple[str, int, set[int]]]:
    """Venue orders that are not an engine order of the client whose account holds them
    (DuckDB after the stop): (client, order id, accounts the engine has it under)."""
    accounts = order_accounts(desk.run.database if desk.run else "")
    out = []
    for who, oid in sorted(venue_orders):
        if accounts.get(oid) != {desk.cfg.clients[who].id}:
            out.append((who, oid, accounts.get(oid, set())))
    return out


def booked_fees(database: str) -> dict[tuple[int, int], int]:
    """(account id, fee asset id) -> the fees DuckDB holds."""
    import duckdb

    con = duckdb.connect(database, read_only=True)
    try:
        rows = con.execute("""
            with o as (select distinct order_id, account from orders)
            select o.account, e.fee_asset, sum(e.fee) from executions e join o using (order_id)
            group by all""").fetchall()
    finally:
        con.close()
    return {(int(a), int(f)): int(s) for a, f, s in rows if s}
