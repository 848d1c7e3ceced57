"""A killed `oms run` leaves nothing trading unsupervised: every child gets SIGTERM when the
supervisor dies, and the engine stops cleanly (it answers what arrived, closes its journal)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from test_oms_run import Run


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by init) counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_children_stop_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    run = Run(tmp_path)
    try:
        state = json.loads((tmp_path / "run" / "state.json").read_text())
        pids = {p["name"]: p["pid"] for p in state["processes"] if p["pid"]}
        assert {"engine-0", "engine-1", "writer-0", "gateway-sim-0", "sim-sim"} <= set(pids)
        os.kill(run.proc.pid, signal.SIGKILL)
        run.proc.wait(10)
        end = time.monotonic() + 60
        while time.monotonic() < end and any(_alive(p) for p in pids.values()):
            time.sleep(0.2)
        assert not [n for n, p in pids.items() if _alive(p)]
        for k in (0, 1):  # the engines stopped cleanly, not killed
            log = (tmp_path / "run" / "logs" / f"engine-{k}.log").read_text()
            assert "STOPPED " in log.rsplit("--- start", 1)[-1], log[-2000:]
    finally:
        run.kill()
