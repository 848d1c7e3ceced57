"""`oms status` shows why an engine's trading stays halted: the supervisor keeps each engine's
last RECONCILED line (a real child process writing it to its log) and the status says which
exchange failed and how."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from oms_core.cli import halt_lines
from oms_core.supervisor import ChildSpec, Supervisor


def test_status_shows_the_halt_and_why(tmp_path: Path) -> None:
    verdicts = [
        {"ok": False, "missing": [1], "why": {"1": "no answer"}, "halted": True,
         "reports": {}},
        {"ok": False, "missing": [1], "why": {"1": "incomplete answer (code -1003)"},
         "halted": True, "reports": {}},
    ]
    script = "; ".join([
        "import time", "print('LISTENING {}', flush=True)",
        *(f"print('RECONCILED ' + {json.dumps(json.dumps(v))}, flush=True)" for v in verdicts),
        "time.sleep(30)"])
    spec = ChildSpec("engine-0", [sys.executable, "-c", script], stop_rank=0,
                     ready_line="LISTENING ", report_line="RECONCILED ", shard=0)
    sup = Supervisor([spec], tmp_path)
    try:
        sup.start(timeout=20)
        end = time.monotonic() + 10
        proc = sup.status()["processes"][0]
        while time.monotonic() < end and "-1003" not in json.dumps(proc["report"]):
            time.sleep(0.05)
            proc = sup.status()["processes"][0]
        assert proc["report"]["why"] == {"1": "incomplete answer (code -1003)"}, proc
        assert halt_lines(sup.status()) == [
            "engine-0: trading HALTED: reconciliation failed (exchange 1: incomplete answer "
            "(code -1003)); it resumes when the gateway answers, or `oms resume`"]
        state = json.loads((tmp_path / "state.json").read_text())
        assert state["processes"][0]["report"]["halted"] is True
    finally:
        sup.shutdown()
    # a verdict that lifted the halt shows nothing
    assert halt_lines({"processes": [{"name": "engine-0", "report": {
        "ok": True, "halted": False, "why": {}}}]}) == []
