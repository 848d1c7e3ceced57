"""The supervisor with small real child processes: readiness, restart with exponential
back-off, status over ZeroMQ, ordered shutdown."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from oms_core.supervisor import ChildSpec, Supervisor, ask_status, free_port

pytestmark = pytest.mark.timeout(30)

SLEEPER = [sys.executable, "-c", "import sys, time; print('READY up', flush=True); "
                                 "time.sleep(30)"]
CRASHER = [sys.executable, "-c", "import sys; sys.exit(3)"]


def _until(pred, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.02)
    raise TimeoutError


def test_restart_backoff_status_and_shutdown(tmp_path: Path) -> None:
    ep = f"tcp://127.0.0.1:{free_port()}"
    sup = Supervisor([ChildSpec("a", SLEEPER, stop_rank=1, ready_line="READY "),
                      ChildSpec("b", SLEEPER, stop_rank=0, ready_line="READY ")],
                     tmp_path, status_endpoint=ep, backoff_s=0.1, stable_s=60)
    try:
        sup.start(timeout=10)
        a = sup.child("a")
        assert a.ready_info == "up"
        first = a.pid
        os.kill(first, signal.SIGKILL)
        _until(lambda: (sup.step() or True) and a.pid not in (None, first))
        assert a.starts == 2 and a.last_exit == -signal.SIGKILL
        # a second crash soon after waits twice as long
        os.kill(a.pid, signal.SIGKILL)
        _until(lambda: (sup.step() or True) and a.next_start > 0)
        assert a.failures == 2
        assert 0.1 < a.next_start - time.monotonic() <= 0.2
        _until(lambda: (sup.step() or True) and a.pid is not None)
        # status over ZeroMQ, answered from the supervisor's loop
        import threading

        got = {}
        t = threading.Thread(target=lambda: got.update(st=ask_status(ep, 5.0)))
        t.start()
        _until(lambda: (sup.step() or True) and not t.is_alive())
        procs = {p["name"]: p for p in got["st"]["processes"]}
        assert procs["a"]["restarts"] == 2 and procs["b"]["restarts"] == 0
        assert (tmp_path / "state.json").exists()
    finally:
        codes = sup.shutdown()
    assert codes == {"a": -signal.SIGTERM, "b": -signal.SIGTERM}


def test_a_child_that_fails_to_start_is_reported(tmp_path: Path) -> None:
    sup = Supervisor([ChildSpec("bad", CRASHER, stop_rank=0, ready_line="READY ")], tmp_path)
    with pytest.raises(RuntimeError, match="bad exited with status 3 while starting"):
        sup.start(timeout=10)
