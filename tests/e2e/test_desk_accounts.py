"""`oms run` on examples/desk.toml: three clients, two exchanges, each client on venue
accounts of its own.

Real processes on loopback (two simulators, the engine, the Binance gateway for spot_a, the
ccxt gateway for spot_b, the writer), orders and a signal through the engine's command socket
(bindings/client.py). Asserted from each simulator's own per-account records (its REST API,
signed with each account's generated keys): no order ever reached another client's account,
an order of a client with no account at an exchange is refused there, the fees are charged
in the asset the venue says and the engine stores that asset, and each client's engine
position equals its own venue account's trades, at both exchanges.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bindings.client import OmsClient
from oms_core.config import OmsConfig, load_config
from oms_core.enums import TERMINAL_STATUSES, OrderStatus, Reject, Side
from oms_core.supervisor import free_port, sim_key_files

ROOT = Path(__file__).resolve().parents[2]
DESK = ROOT / "examples" / "desk.toml"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
OMS = [sys.executable, "-m", "oms_core.cli"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def write_desk(directory: Path) -> Path:
    """examples/desk.toml with free loopback ports and its files under ``directory``."""
    text = DESK.read_text().replace("../var/desk/", "")
    ports = {p: str(free_port()) for p in sorted(set(re.findall(r"127\.0\.0\.1:(\d+)", text)))}
    text = re.sub(r"127\.0\.0\.1:(\d+)", lambda m: f"127.0.0.1:{ports[m.group(1)]}", text)
    path = directory / "desk.toml"
    path.write_text(text)
    return path


def start(config: Path, run_dir: Path) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(OMS + ["run", "--config", str(config), "--run-dir", str(run_dir),
                                   "--backoff", "0.2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)
    assert proc.stdout is not None
    end = time.monotonic() + 90
    while time.monotonic() < end:
        r, _, _ = select.select([proc.stdout], [], [], 0.2)
        if r:
            line = proc.stdout.readline()
            if line.startswith("READY "):
                return proc, json.loads(line[6:])
            if not line and proc.poll() is not None:
                break
    proc.kill()
    raise RuntimeError(f"oms run did not start: {proc.stderr.read()[-3000:]}")


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=10)


class Venue:
    """One simulated venue account, read through the venue's own signed REST API."""

    def __init__(self, run_dir: Path, cfg: OmsConfig, exchange: str, client: str) -> None:
        key_file, secret_file = sim_key_files(run_dir, exchange, client)
        self.key = key_file.read_text().strip()
        self.secret = secret_file.read_text().strip().encode()
        ports = json.loads((run_dir / f"sim-{exchange}.json").read_text())
        self.base = ports["base_url"]
        self.symbols = {i.exchange_symbol: i for i in cfg.instruments.values()
                        if i.exchange == exchange}

    def get(self, path: str, **params: Any) -> Any:
        params["timestamp"] = int(time.time() * 1000)
        q = urllib.parse.urlencode(params)
        sig = hmac.new(self.secret, q.encode(), hashlib.sha256).hexdigest()
        req = urllib.request.Request(f"{self.base}/api/v3{path}?{q}&signature={sig}",
                                     headers={"X-MBX-APIKEY": self.key})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def orders(self) -> list[dict[str, Any]]:
        return [o for s in self.symbols for o in self.get("/allOrders", symbol=s)]

    def trades(self) -> list[dict[str, Any]]:
        return [t for s in self.symbols for t in self.get("/myTrades", symbol=s)]


def raw(value: str, precision: int) -> int:
    return int(Decimal(value).scaleb(precision))


def test_each_client_trades_on_its_own_venue_accounts(tmp_path: Path) -> None:
    config = write_desk(tmp_path)
    cfg = load_config(config)
    ids = {n: c.id for n, c in cfg.clients.items()}
    inst = cfg.instruments
    strategy_of = {i: s.id for s in cfg.strategies.values() for i in s.instruments}
    run_dir = tmp_path / "run"
    proc, ready = start(config, run_dir)
    try:
        names = {n for n in os.listdir(run_dir / "logs")}
        assert {"gateway-spot_a-0.log", "gateway-spot_b-0.log"} <= names
        venues = {(ex, c): Venue(run_dir, cfg, ex, c)
                  for c, cc in cfg.clients.items() for ex in cc.exchange_accounts}
        assert len({v.key for v in venues.values()}) == 4  # alice x 2, bob, carol
        client = OmsClient(ready["shards"]["0"]["commands"], timeout=5.0, precisions={
            i.id: (i.price_precision, i.qty_precision) for i in inst.values()})
        client.hello(list(ids.values()), heartbeat_ms=0)
        # market buys of each client at each exchange it has an account at
        plan = [("alice", "BTCUSDT", "0.01"), ("alice", "SOLUSDT", "5"),
                ("alice", "ETHUSDT_B", "0.1"), ("bob", "ETHUSDT", "0.3"),
                ("bob", "BTCUSDT", "0.002"), ("carol", "ETHUSDT_B", "0.2"),
                ("carol", "SOLUSDT", "2")]
        order_client: dict[int, str] = {}
        for who, sym, qty in plan:
            end = time.monotonic() + 30
            while True:  # until both gateways have published prices
                r = client.submit(inst[sym].id, Side.BUY, qty, account=ids[who],
                                  strategy=strategy_of[sym])
                if r.ok or r.code != Reject.NO_REFERENCE_PRICE or time.monotonic() > end:
                    break
                time.sleep(0.3)
            assert r.ok, (who, sym, r)
            order_client[r.order_id] = who
        # bob has no account at spot_b: his order there is refused, never sent on other keys
        stray = client.submit(inst["SOLUSDT"].id, Side.BUY, "1", account=ids["bob"],
                              strategy=strategy_of["SOLUSDT"])
        # a signal: alice (vol brackets) and bob (pct brackets) enter BTCUSDT
        client.signal(inst["BTCUSDT"].id, 1, strategy=strategy_of["BTCUSDT"])

        def engine_orders(who: str) -> dict[int, Any]:
            res = client.orders(open_only=False, account=ids[who])
            return {o.order_id: o for o in res.rows}

        def positions(who: str) -> dict[int, int]:
            return {p.instrument: p.quantity
                    for p in client.positions(account=ids[who]).rows}

        def venue_positions(who: str) -> dict[int, int]:
            out: dict[int, int] = defaultdict(int)
            for (_ex, c), v in venues.items():
                if c != who:
                    continue
                for t in v.trades():
                    i = v.symbols[t["symbol"]]
                    q = raw(t["qty"], i.qty_precision)
                    out[i.id] += q if t["isBuyer"] else -q
            return {k: q for k, q in out.items() if q}

        def venue_balances(who: str) -> dict[int, int]:
            out: dict[int, int] = defaultdict(int)
            for (_ex, c), v in venues.items():
                if c == who:
                    for b in v.get("/account")["balances"]:
                        a = cfg.assets[b["asset"]]
                        out[a.id] += raw(b["free"], a.precision) + raw(b["locked"], a.precision)
            return {k: q for k, q in out.items() if q}

        def differences() -> list[tuple[str, Any, Any]]:
            """Where a client's engine positions or balances differ from its venue accounts'
            (empty once every order came back; re-read until then: fills are in flight)."""
            out: list[tuple[str, Any, Any]] = []
            for who in ids:
                held = {k: q for k, q in positions(who).items() if q}
                if not held or held != venue_positions(who):
                    out.append((who, held, venue_positions(who)))
                bal = {b.asset: b.total for b in client.balances(account=ids[who]).rows}
                if bal != venue_balances(who):
                    out.append((who, bal, venue_balances(who)))
            if not all(o.order_id not in order_client or o.status in TERMINAL_STATUSES
                       for who in ids for o in engine_orders(who).values()):
                out.append(("orders", "not all final", None))
            return out

        def settle() -> list[tuple[str, Any, Any]]:
            end = time.monotonic() + 60
            while (diff := differences()) and time.monotonic() < end:
                time.sleep(0.5)
            return diff

        # each client's engine positions equal its own venue accounts' trades at both
        # venues, and its balances what those accounts hold together (fees in the coin too)
        assert settle() == []
        # alice's positions per strategy: trend at spot_a, swing at spot_b; together her total
        per_strategy = {st.name: {p.instrument: p.quantity for p in client.positions(
            account=ids["alice"], strategy=st.id).rows if p.quantity}
            for st in cfg.strategies.values()}
        assert set(per_strategy["trend"]) == {inst["BTCUSDT"].id}
        assert set(per_strategy["swing"]) == {inst["SOLUSDT"].id, inst["ETHUSDT_B"].id}
        assert {**per_strategy["trend"], **per_strategy["swing"]} == {
            k: q for k, q in positions("alice").items() if q}
        held = {who: {cfg.instrument_by_id(k).symbol for k, q in positions(who).items() if q}
                for who in ids}
        assert {"BTCUSDT", "SOLUSDT", "ETHUSDT_B"} <= held["alice"]
        assert held["bob"] == {"ETHUSDT", "BTCUSDT"}
        assert held["carol"] == {"ETHUSDT_B", "SOLUSDT"}
        # every order at a venue account is an engine order of that account's client
        prefix = "oms0-"
        seen: dict[str, tuple[str, str]] = {}
        for (ex, who), v in venues.items():
            mine = engine_orders(who)
            for o in v.orders():
                cid = o["clientOrderId"]
                assert cid.startswith(prefix) and int(cid[len(prefix):]) in mine, (ex, who, o)
                assert cid not in seen, (cid, seen[cid], (ex, who))
                seen[cid] = (ex, who)
        for oid, who in order_client.items():
            assert seen[f"{prefix}{oid}"][1] == who
        if stray.ok:  # accepted by the engine: the spot_b gateway refused it
            assert f"{prefix}{stray.order_id}" not in seen
            end = time.monotonic() + 10
            while time.monotonic() < end and (
                    engine_orders("bob")[stray.order_id].status != OrderStatus.REJECTED):
                time.sleep(0.2)
            assert engine_orders("bob")[stray.order_id].status == OrderStatus.REJECTED
        # kill -9 of the engine: the supervisor restarts it; it reconciles with both gateways,
        # every venue account of each, and trades on; nothing lost or doubled
        client.close()
        pid = next(p["pid"] for p in json.loads((run_dir / "state.json").read_text())[
            "processes"] if p["name"] == "engine-0")
        os.kill(pid, signal.SIGKILL)
        log = run_dir / "logs" / "engine-0.log"
        end = time.monotonic() + 60
        # (the first start's gateways said hello and were reconciled too: read the second's)
        while time.monotonic() < end and "RECONCILED " not in log.read_text().partition(
                "--- start 2 at")[2]:
            time.sleep(0.3)
        line = next(x for x in log.read_text().partition("--- start 2 at")[2].splitlines()
                    if x.startswith("RECONCILED "))
        rec = json.loads(line[len("RECONCILED "):])
        assert rec["ok"] and rec["missing"] == [], rec
        assert all(r["balance_diffs"] == [] for r in rec["reports"].values()), rec
        assert rec["accounts"] == {"0": [ids["alice"], ids["bob"]],
                                   "1": [ids["alice"], ids["carol"]]}
        client = OmsClient(ready["shards"]["0"]["commands"], timeout=5.0, precisions={
            i.id: (i.price_precision, i.qty_precision) for i in inst.values()})
        client.hello(list(ids.values()), heartbeat_ms=0)
        # (swing is single-entry: its clients are in, so they reduce)
        for who, sym, side, qty in (("bob", "ETHUSDT", Side.BUY, "0.1"),
                                    ("carol", "SOLUSDT", Side.SELL, "1"),
                                    ("alice", "ETHUSDT_B", Side.SELL, "0.05")):
            end = time.monotonic() + 30
            while True:  # trading resumes once the reconciliation lifted the gate
                r = client.submit(inst[sym].id, side, qty, account=ids[who],
                                  strategy=strategy_of[sym])
                if r.ok or time.monotonic() > end:
                    break
                time.sleep(0.3)
            assert r.ok, (who, sym, r)
            order_client[r.order_id] = who
        assert settle() == []
        # the venues charge buy fees in the base asset
        venue_fees: dict[tuple[int, int], int] = defaultdict(int)
        for (_ex, who), v in venues.items():
            for t in v.trades():
                i = v.symbols[t["symbol"]]
                assert t["commissionAsset"] == (i.base if t["isBuyer"] else i.quote)
                a = cfg.assets[t["commissionAsset"]]
                venue_fees[(ids[who], a.id)] += raw(t["commission"], a.precision)
        client.close()
    finally:
        stop(proc)
    # the engine booked each fee with the asset the venue charged (DuckDB, after the stop)
    import duckdb

    con = duckdb.connect(ready["shards"]["0"]["database"], read_only=True)
    try:
        rows = con.execute("""
            with o as (select distinct order_id, account from orders)
            select o.account, e.fee_asset, sum(e.fee) from executions e join o using (order_id)
            group by all""").fetchall()
    finally:
        con.close()
    assert {(a, f): int(s) for a, f, s in rows if s} == dict(venue_fees)
