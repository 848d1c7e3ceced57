"""`oms run` end to end on loopback: real processes (simulated exchange, two engine shards,
gateways, writers, the example publisher), real sockets, DuckDB read back.

publisher -(PUB/SUB)-> engine shards -> paper gateways -> simulator -> fills -> positions ->
DuckDB, for three clients on two strategies; status, halt/resume, a SIGKILLed gateway and
writer restarted by the supervisor, SIGTERM with nothing lost. Configuration errors are
refused with the file and the key.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from oms_core.config import load_config
from oms_core.demo import write_demo_config
from oms_core.engine.process import wait_ready
from oms_core.security import operator_keys

ROOT = Path(__file__).resolve().parents[3]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
OMS = [sys.executable, "-m", "oms_core.cli"]


def _oms(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(OMS + list(args), capture_output=True, text=True, timeout=timeout,
                          env=ENV, cwd=ROOT)


def test_configuration_errors_are_refused_with_file_and_key(tmp_path: Path) -> None:
    path = write_demo_config(tmp_path)
    text = path.read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('fixed_qty = { BTCUSDT = "0.05", ETHUSDT = "1" }',
                                'fixed_qty = { BTCUSDT = 0.05, ETHUSDT = "1" }'))
    r = _oms("run", "--config", str(bad))
    assert r.returncode == 2
    assert "bad.toml: clients.alice.orders.fixed_qty.BTCUSDT:" in r.stderr
    assert "floats are inexact" in r.stderr
    typo = tmp_path / "typo.toml"
    typo.write_text(text.replace("[strategies.trend]", "[strategies.trend]\nsingle_entri = 1"))
    r = _oms("run", "--config", str(typo))
    assert r.returncode == 2 and "typo.toml: strategies.trend.single_entri: unknown key" in (
        r.stderr)
    r = _oms("run", "--config", str(tmp_path / "missing.toml"))
    assert r.returncode == 2 and "missing.toml: cannot read" in r.stderr
    # the status and kill commands refuse the same way
    r = _oms("halt", "--config", str(bad))
    assert r.returncode == 2 and "clients.alice.orders.fixed_qty.BTCUSDT" in r.stderr


# ---------------------------------------------------------------------------- the full run
class Run:
    def __init__(self, tmp: Path) -> None:
        self.dir = tmp
        self.config = write_demo_config(tmp)
        # carol (strategy "swing") gets a shard of her own
        text = self.config.read_text().replace("[clients.carol]\n", "[clients.carol]\nshard = 1\n")
        self.config.write_text(text)
        self.proc = subprocess.Popen(OMS + ["run", "--config", str(self.config), "--run-dir",
                                            str(tmp / "run"), "--backoff", "0.2"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=ENV, cwd=ROOT)
        self.ready = self._wait_ready(45.0)
        self.publisher: subprocess.Popen[str] | None = None

    def _wait_ready(self, timeout: float) -> dict[str, Any]:
        seen = wait_ready(self.proc, timeout)  # oms run prints READY as the engine does
        if "READY" in seen:
            return dict(seen["READY"][1])
        self.proc.kill()
        raise RuntimeError(f"oms run did not start: {self.proc.stderr.read()[-3000:]}")

    def status(self) -> dict[str, Any]:
        r = _oms("status", "--config", str(self.config), "--json", "--pings", "20")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def proc_info(self, name: str) -> dict[str, Any]:
        st = self.status()["supervisor"]
        return next(p for p in st["processes"] if p["name"] == name)

    def stop(self) -> tuple[int, str]:
        if self.publisher is not None and self.publisher.poll() is None:
            self.publisher.send_signal(signal.SIGTERM)
            self.publisher.wait(10)
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=60)
        return self.proc.returncode, out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    r = Run(tmp_path_factory.mktemp("oms"))
    try:
        yield r
    finally:
        r.kill()


def _wait(pred: Any, timeout: float, what: str) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.3)
    raise TimeoutError(what)


def _positions(run: Run) -> dict[str, list[dict[str, str]]]:
    st = run.status()
    return {name: cl["positions"] for sh in st["shards"].values()
            for name, cl in sh["clients"].items()}


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_paper_trading_through_two_shards(run: Run) -> None:
    st = run.status()
    names = {p["name"] for p in st["supervisor"]["processes"]}
    assert {"sim-sim", "engine-0", "engine-1", "writer-0", "writer-1", "gateway-sim-0",
            "gateway-sim-1"} <= names
    assert all(p["alive"] for p in st["supervisor"]["processes"])
    assert st["shards"]["0"]["connected"] and st["shards"]["1"]["connected"]
    assert set(st["shards"]["0"]["clients"]) == {"alice", "bob"}
    assert set(st["shards"]["1"]["clients"]) == {"carol"}
    assert st["shards"]["0"]["latency_ns"]["p50"] > 0
    # the publisher PUBlishes; every shard SUBscribes and trades for its own clients
    run.publisher = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "publisher.py"), "--config", str(run.config),
         "--via", "pub", "--interval", "0.3", "--fast", "2", "--slow", "4", "--duration", "40"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV, cwd=ROOT)

    def traded() -> dict[str, Any] | None:
        pos = _positions(run)
        have = {n for n, rows in pos.items() if rows}
        return pos if {"alice", "bob", "carol"} <= have else None

    pos = _wait(traded, 40, "all three clients traded")
    assert {r["instrument"] for r in pos["carol"]} == {"ETHUSDT"}  # swing trades ETH only


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_halt_and_resume(run: Run) -> None:
    r = _oms("halt", "--config", str(run.config), "--account", "carol")
    assert r.returncode == 0 and "shard 1: halt account: ok" in r.stdout, r.stdout + r.stderr
    r = _oms("resume", "--config", str(run.config), "--account", "carol")
    assert r.returncode == 0 and "shard 1: resume account: ok" in r.stdout
    r = _oms("halt", "--config", str(run.config), "--strategy", "trend", "--reduce-only")
    assert r.returncode == 0 and r.stdout.count(": ok") == 2  # both shards
    r = _oms("resume", "--config", str(run.config))
    assert r.returncode == 0 and r.stdout.count("resume global: ok") == 2
    r = _oms("halt", "--config", str(run.config), "--account", "nobody")
    assert r.returncode == 2


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_crashed_gateway_and_writer_are_restarted(run: Run) -> None:
    for name in ("gateway-sim-0", "writer-1"):
        before = run.proc_info(name)
        assert before["alive"] and before["pid"]
        os.kill(before["pid"], signal.SIGKILL)

        def back(name: str = name, old: int = before["pid"]) -> bool:
            p = run.proc_info(name)
            return p["alive"] and p["pid"] != old and p["restarts"] >= 1

        _wait(back, 20, f"{name} restarted")
    # trading goes on through the new gateway: shard 0 gets new fills
    n0 = _fill_count(run)
    _wait(lambda: _fill_count(run) > n0, 30, "fills after the restart")


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_killed_engine_recovers_reconciles_and_trades_on(run: Run) -> None:
    """kill -9 of an engine under `oms run`: the supervisor restarts it, it recovers from its
    journal, reconciles with the gateway (trading is gated until then) and trades on."""
    before = run.proc_info("engine-0")
    assert before["alive"] and before["pid"]
    n0 = _fill_count(run)
    os.kill(before["pid"], signal.SIGKILL)

    def back() -> bool:
        p = run.proc_info("engine-0")
        return p["alive"] and p["pid"] != before["pid"] and p["restarts"] >= 1

    _wait(back, 30, "engine-0 restarted")
    # nothing acknowledged before the kill is lost, and the gate lifts: new fills
    _wait(lambda: _fill_count(run) >= n0, 20, "the fills from before the kill")
    _wait(lambda: _fill_count(run) > n0, 40, "fills after the restart (reconciled, resumed)")


def _fill_count(run: Run) -> int:
    from bindings.client import OmsClient
    from bindings.wire.spec import QueryKind

    with OmsClient(run.ready["shards"]["0"]["commands"], timeout=3,
                   curve=operator_keys(load_config(str(run.config)))) as c:
        res = c.query(QueryKind.ORDERS, account=1)
    return sum(o.filled for o in res.rows)


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_sigterm_stops_everything_and_loses_nothing(run: Run) -> None:
    import duckdb

    from bindings.client import OmsClient
    from bindings.wire.spec import QueryKind

    # what the engines hold right before the stop (filled quantity per order)
    filled: dict[int, dict[int, int]] = {}
    run.publisher.send_signal(signal.SIGTERM)
    run.publisher.wait(10)
    time.sleep(1.0)  # let in-flight orders come back from the venue
    keys = operator_keys(load_config(str(run.config)))
    for k, sh in run.ready["shards"].items():
        with OmsClient(sh["commands"], timeout=3, curve=keys) as c:
            filled[int(k)] = {}
            for account in (0, 1, 2):
                res = c.query(QueryKind.ORDERS, account=account)
                for o in getattr(res, "rows", []):
                    filled[int(k)][o.order_id] = o.filled
    code, out = run.stop()
    assert code == 0, out
    stopped = json.loads(out.strip().splitlines()[-1][8:])
    assert all(v == 0 for v in stopped.values()), stopped
    total = 0
    for k, sh in run.ready["shards"].items():
        con = duckdb.connect(sh["database"], read_only=True)
        rows = dict(con.execute("select order_id, sum(quantity) from executions group by 1")
                    .fetchall())
        seqs = [r[0] for r in con.execute("select seq from executions").fetchall()]
        con.close()
        assert len(seqs) == len(set(seqs))
        want = {oid: f for oid, f in filled[int(k)].items() if f}
        assert want, f"shard {k} has no fills"
        # every fill the engine booked is in DuckDB, once
        for oid, f in want.items():
            assert rows.get(oid, 0) >= f, (k, oid, f, rows.get(oid))
        total += len(want)
    assert total > 3
