"""Run the real engine in a child process (integration tests, benchmarks, supervisors)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import tomli_w

ROOT = Path(__file__).resolve().parents[2]  # the repository (PYTHONPATH of the child)
_PR_SET_PDEATHSIG = 1


try:  # resolved here, not in the forked child (which only makes the call)
    import ctypes

    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: children outlive a killed parent
    _prctl = None


def die_with_parent() -> None:
    """``preexec_fn`` for test and benchmark children: SIGKILL them when the process that
    started them dies (a test run killed by a timeout must not leave engines running)."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def stop_with_parent() -> None:
    """``preexec_fn`` for supervised children: SIGTERM them (a clean stop: the engine answers
    what arrived and closes its journal) when the supervisor that started them dies, so a
    killed ``oms run`` leaves nothing trading unsupervised."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def stop_with_parent_signals_held() -> None:
    """:func:`stop_with_parent`, and SIGTERM / SIGINT start blocked: one sent before the
    child's handlers exist waits for them instead of killing it without a clean close. Only
    for programs that unblock them once their handlers are in place (every process of this
    project: engine, gateway, writer, simulator)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    stop_with_parent()


def to_toml(cfg: dict[str, Any]) -> str:
    """Write an engine config as TOML; a key of a table set to None is left out (the
    engine's default holds)."""
    return tomli_w.dumps({k: {kk: vv for kk, vv in v.items() if vv is not None}
                          if isinstance(v, dict) else v for k, v in cfg.items()})


def base_config(tmp: Path, transport: str = "ipc", **engine: Any) -> dict[str, Any]:
    """A small market: BTC/USDT on exchange 1, accounts 1..3, strategy 1 on accounts 1, 2."""

    def ep(name: str) -> str:
        return f"ipc://{tmp}/{name}" if transport == "ipc" else "tcp://127.0.0.1:*"

    eng = {
        "client": ep("client"), "public": ep("pub"), "writer": ep("writer"),
        "gateway_events": ep("gw-events"), "gateway_md": ep("gw-md"),
        "security": False, "heartbeat_ms": 1000, "timer_ms": 20,
    }
    eng.update(engine)
    return {
        "engine": eng,
        "assets": [{"id": 1, "name": "BTC", "precision": 8},
                   {"id": 2, "name": "USDT", "precision": 8}],
        "instruments": [{"id": 1, "symbol": "BTCUSDT", "exchange": 1, "base": 1, "quote": 2,
                         "price_precision": 2, "qty_precision": 5, "tick": 1, "lot": 1,
                         "min_qty": 1, "max_qty": 10**12, "last": 5_000_000}],
        "accounts": [{"id": 1, "cancel_on_disconnect": True,
                      "limits": {"MAX_OPEN_ORDERS": 10_000_000}},
                     {"id": 2, "limits": {"MAX_OPEN_ORDERS": 10_000_000}},
                     {"id": 3}],
        "strategies": [{"id": 1, "accounts": [1, 2], "size": 100}],
        "gateways": [{"exchange": 1, "orders": ep("gw-orders-1")}],
    }


STARTUP_LINES = ("RECOVERED", "RECONCILED", "READY")


def spawn_engine(args: list[str], stderr: Any,
                 env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``args`` (a ``python -m oms_core.engine`` command) from the repository, stdout
    piped for its start-up lines, dying with this process."""
    return subprocess.Popen(args, cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=stderr,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
                            preexec_fn=die_with_parent)


def wait_ready(proc: subprocess.Popen[str], timeout: float,
               t0: float | None = None) -> dict[str, tuple[float, Any]]:
    """Read the engine's start-up lines until READY (or exit, or ``timeout`` seconds).

    Return ``{word: (seconds since t0 on perf_counter, parsed JSON)}`` for each of
    RECOVERED / RECONCILED / READY seen; no "READY" key means it did not start.
    """
    assert proc.stdout is not None
    t0 = time.perf_counter() if t0 is None else t0
    seen: dict[str, tuple[float, Any]] = {}
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([proc.stdout], [], [], 0.2)
        if not r:
            continue
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        word, _, rest = line.partition(" ")
        if word in STARTUP_LINES:
            seen[word] = (time.perf_counter() - t0, json.loads(rest))
            if word == "READY":
                break
    return seen


class EngineProcess:
    """``with EngineProcess(cfg, tmp) as e: e.endpoints["client"]``; SIGTERM on exit."""

    def __init__(self, cfg: dict[str, Any], tmp: Path, extra_args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None) -> None:
        self.path = tmp / "engine.toml"
        self.path.write_text(to_toml(cfg))
        self.args = [sys.executable, "-m", "oms_core.engine", "--config", str(self.path),
                     "--log-level", "WARNING", *extra_args]
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self.proc: subprocess.Popen[str] | None = None
        self.endpoints: dict[str, str] = {}
        self.stopped_line = ""

    def start(self, timeout: float = 20.0) -> EngineProcess:
        self.proc = spawn_engine(self.args, subprocess.PIPE, self.env)
        seen = wait_ready(self.proc, timeout)
        if "READY" in seen:
            self.endpoints = seen["READY"][1]
            return self
        err = self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
        self.kill()
        raise RuntimeError(f"engine did not start: {err}")

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; return the exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self.stopped_line = next((ln for ln in out.splitlines() if ln.startswith("STOPPED")),
                                 "")
        return self.proc.returncode

    def stats(self) -> dict[str, Any]:
        return json.loads(self.stopped_line[8:]) if self.stopped_line else {}

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> EngineProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.stop()
            except Exception:
                self.kill()
