"""The supervisor's status endpoint answers anyone who reaches it (no key): it says what runs and
whether trading is halted, never an account's data. An engine's RECONCILED line carries the
accounts' balance differences, booked fills and adopted orders; they stay in the engine's log
and the run directory's state.json, and the endpoint shows the verdict only."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from oms_core.cli import halt_lines
from oms_core.config import EngineConfig
from oms_core.supervisor import ChildSpec, Supervisor, ask_status, free_port

# what a restarted engine reports after reconciling (oms_core/engine/reconcile.py: report())
REPORT = {"ok": False, "missing": [1], "why": {"1": "balance differs"}, "halted": True,
          "reports": {"1": {"booked_fills": [7001], "closed": [7002],
                            "balance_diffs": [[3, 2, 123456789000, 987654321000]],
                            "adopted": [[3, 7003]]}},
          "accounts": {"1": [3, 4]}}


def test_status_endpoint_shows_the_verdict_not_the_accounts(tmp_path: Path) -> None:
    script = "; ".join(["import time", "print('LISTENING {}', flush=True)",
                        f"print('RECONCILED ' + {json.dumps(json.dumps(REPORT))}, flush=True)",
                        "time.sleep(30)"])
    spec = ChildSpec("engine-0", [sys.executable, "-c", script], stop_rank=0,
                     ready_line="LISTENING ", report_line="RECONCILED ", shard=0)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    sup = Supervisor([spec], tmp_path, status_endpoint=endpoint)
    try:
        sup.start(timeout=20)
        end = time.monotonic() + 10
        while time.monotonic() < end and not sup.status()["processes"][0]["report"]:
            time.sleep(0.05)
        got: dict[str, object] = {}
        asker = threading.Thread(target=lambda: got.update(st=ask_status(endpoint, 5.0)))
        asker.start()
        end = time.monotonic() + 10
        while asker.is_alive() and time.monotonic() < end:
            sup.step()
            time.sleep(0.02)
        asker.join(1)
        status = got["st"]
        assert isinstance(status, dict)
        report = status["processes"][0]["report"]
        assert report == {"ok": False, "missing": [1], "why": {"1": "balance differs"},
                          "halted": True}
        text = json.dumps(status)
        for detail in ("123456789000", "987654321000", "7001", "7002", "7003",
                       "balance_diffs", "booked_fills"):
            assert detail not in text, detail
        # `oms status` still says why trading is halted, from what the endpoint gives
        assert halt_lines(status) == [
            "engine-0: trading HALTED: reconciliation failed (exchange 1: balance differs); "
            "it resumes when the gateway answers, or `oms resume`"]
        # the operator's own file keeps the whole report
        sup.write_state()
        state = json.loads((tmp_path / "state.json").read_text())
        assert state["processes"][0]["report"] == REPORT
    finally:
        sup.shutdown()


def test_status_endpoint_is_on_loopback_by_default() -> None:
    assert EngineConfig().health.startswith("tcp://127.0.0.1:")
