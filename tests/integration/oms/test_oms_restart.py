"""A restart of ``oms run`` over an existing journal trades again by itself: the engine
recovers, is bound before the gateways start, reconciles with them and lifts its restart
gate without an admin. Real processes (simulator, engine, gateway, writer) on loopback.
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

from bindings.client import Ack, OmsClient
from bindings.wire.spec import QueryKind
from oms_core.config import load_config
from oms_core.demo import write_demo_config
from oms_core.engine.process import ROOT, wait_ready
from oms_core.enums import OrderType, Side, TimeInForce
from oms_core.security import operator_keys

OMS = [sys.executable, "-m", "oms_core.cli"]
ENV = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}


class OmsRun:
    def __init__(self, config: Path, run_dir: Path) -> None:
        self.config = config
        self.proc = subprocess.Popen(OMS + ["run", "--config", str(config), "--run-dir",
                                            str(run_dir)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)
        self.ready = self._wait_ready(60)

    def _wait_ready(self, timeout: float) -> dict[str, Any]:
        seen = wait_ready(self.proc, timeout)  # oms run prints READY as the engine does
        if "READY" in seen:
            return dict(seen["READY"][1])
        self.proc.kill()
        raise RuntimeError("oms run did not start")

    def status(self) -> dict[str, Any]:
        r = subprocess.run(OMS + ["status", "--config", str(self.config), "--json", "--pings",
                                  "2"], capture_output=True, text=True, timeout=30, env=ENV,
                           cwd=ROOT)
        return json.loads(r.stdout)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.communicate(timeout=60)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _trade_within(run: OmsRun, seconds: float) -> float:
    """Buy 0.001 BTC at market for alice until one is accepted and her position grows;
    the seconds it took."""
    cfg = load_config(str(run.config))
    alice, btc = cfg.clients["alice"], cfg.instruments["BTCUSDT"]
    trend = cfg.strategies["trend"]
    ep = run.ready["shards"]["0"]["commands"]
    t0 = time.monotonic()
    last: Any = None
    with OmsClient(ep, timeout=3, curve=operator_keys(cfg)) as c:

        def held() -> int:
            rows = c.query(QueryKind.POSITIONS, account=alice.id).rows
            return sum(p.quantity for p in rows if p.instrument == btc.id)

        before = held()
        while time.monotonic() - t0 < seconds:
            last = c.submit(btc.id, Side.BUY, 10, 0, account=alice.id, strategy=trend.id,
                            order_type=OrderType.MARKET, tif=TimeInForce.IOC)
            if isinstance(last, Ack):
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"no order accepted within {seconds} s: {last}")
        while time.monotonic() - t0 < seconds + 20:
            if held() > before:
                return time.monotonic() - t0
            time.sleep(0.2)
    raise AssertionError(f"the accepted order {last} was not filled")


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_restart_over_the_journal_trades_again_without_an_admin(tmp_path: Path) -> None:
    config = write_demo_config(tmp_path)
    run_dir = tmp_path / "run"
    first = OmsRun(config, run_dir)
    try:
        _trade_within(first, 20)
        assert first.stop() == 0
    finally:
        first.kill()
    second = OmsRun(config, run_dir)
    try:
        took = _trade_within(second, 15)
        engine = next(p for p in second.status()["supervisor"]["processes"]
                      if p["name"] == "engine-0")
        assert engine["report"]["ok"] and not engine["report"]["halted"], engine
        assert engine["restarts"] == 0
        print(f"restart: trading {took:.1f} s after READY")

        # kill -9 of the gateway: its new process says hello, the engine reconciles with it
        log = run_dir / "logs" / "engine-0.log"
        verdicts = log.read_text().count("\nRECONCILED ")
        gw = next(p for p in second.status()["supervisor"]["processes"]
                  if p["name"] == "gateway-sim-0")
        os.kill(gw["pid"], signal.SIGKILL)
        end = time.monotonic() + 30
        while time.monotonic() < end and log.read_text().count("\nRECONCILED ") == verdicts:
            time.sleep(0.2)
        assert log.read_text().count("\nRECONCILED ") > verdicts, "no reconciliation"
        assert "gateway 0 (exchange 0) started: reconciling with it" in log.read_text()
        _trade_within(second, 20)
        assert second.stop() == 0
    finally:
        second.kill()
