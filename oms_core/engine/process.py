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
    """Write an engine configuration (:func:`base_config`) as TOML, its ``ids`` left out (they
    go to the ``--ids`` file, :func:`write_config`); a key of a table set to None is left out
    (the default holds)."""

    def clean(v: Any) -> Any:
        return {k: clean(x) for k, x in v.items() if x is not None} if isinstance(v, dict) else v

    return tomli_w.dumps({k: clean(v) for k, v in cfg.items() if k != "ids"})


def ids_path(config: Path) -> Path:
    """Where :func:`write_config` keeps the ids of ``config``'s names (``--ids``)."""
    return config.with_suffix(".ids.json")


def write_config(cfg: dict[str, Any], path: Path) -> Path:
    """Write :func:`base_config`'s ``cfg`` to ``path`` and its ids beside it; return ``path``."""
    path.write_text(to_toml(cfg))
    ids_path(path).write_text(json.dumps(cfg.get("ids", {})))
    return path


def config_args(path: Path) -> list[str]:
    """The engine's ``--config`` arguments for ``path`` (with ``--ids`` where
    :func:`write_config` wrote them)."""
    ids = ids_path(path)
    return ["--config", str(path), *(["--ids", str(ids)] if ids.exists() else [])]


def written_settings(path: Path) -> Any:
    """The EngineConfig of a file :func:`write_config` wrote (its ids with it)."""
    from oms_core.engine.config import load_engine_config

    return load_engine_config(path, ids=json.loads(ids_path(path).read_text()))


def engine_settings(cfg: dict[str, Any], shard: int = 0) -> Any:
    """The EngineConfig of :func:`base_config`'s ``cfg`` (its tables and ids) in this process."""
    from oms_core.engine.config import load_engine_config

    return load_engine_config({k: v for k, v in cfg.items() if k != "ids"}, shard,
                              ids=cfg.get("ids"))


def base_config(tmp: Path, transport: str = "ipc", security: bool = False,
                **engine: Any) -> dict[str, Any]:
    """A small market in the full format (``oms_core/config``): BTC (asset 1) / USDT (2),
    BTCUSDT (instrument 1, last 50,000.00) on exchange1 (1), clients account1..3 (ids 1..3),
    strategy1 (1) followed by account1 and account2 with a fixed size of 0.001 BTC.
    ``engine``: more ``[engine]`` keys; ``security``: ``[security] mode = "on"`` with the
    keys in ``tmp/keys`` (:func:`write_keys`). ``ids`` holds the ids to keep by name."""

    def ep(name: str) -> str:
        return f"ipc://{tmp}/{name}" if transport == "ipc" else "tcp://127.0.0.1:*"

    def client(strategies: list[str], fixed_qty: str, open_orders: int | None,
               cancel_on_disconnect: bool = False) -> dict[str, Any]:
        return {"strategies": strategies, "cancel_on_disconnect": cancel_on_disconnect,
                "cash": {}, "limits": {"max_open_orders": open_orders} if open_orders else {},
                "orders": {"entry": "limit", "fixed_qty": {"BTCUSDT": fixed_qty}},
                "exchange_accounts": {"exchange1": {}}}

    return {
        "engine": {"commands": ep("client"), "events": ep("pub"), "health": ep("health"),
                   "writer": ep("writer"),
                   "signals": "", "journal_dir": "", "heartbeat_ms": 1000, "timer_ms": 20,
                   **engine},
        "security": {"mode": "on" if security else "off", "keys_dir": str(tmp / "keys")},
        "assets": {"BTC": {"precision": 8}, "USDT": {"precision": 8}},
        "exchanges": {"exchange1": {"kind": "sim", "orders": ep("gw-orders-1"),
                                    "events": ep("gw-events"), "market_data": ep("gw-md")}},
        "instruments": {"BTCUSDT": {
            "exchange": "exchange1", "base": "BTC", "quote": "USDT", "price_precision": 2,
            "qty_precision": 5, "tick": "0.01", "lot": "0.00001", "min_qty": "0.00001",
            "max_qty": "10000000.00000", "reference_price": "50000.00"}},
        "strategies": {"strategy1": {"instruments": ["BTCUSDT"]}},
        "clients": {"account1": client(["strategy1"], "0.00100", 10_000_000, True),
                    "account2": client(["strategy1"], "0.00100", 10_000_000),
                    "account3": client([], "0.00001", None)},
        "ids": {"assets": {"BTC": 1, "USDT": 2}, "exchanges": {"exchange1": 1},
                "instruments": {"BTCUSDT": 1}, "strategies": {"strategy1": 1},
                "accounts": {"account1": 1, "account2": 2, "account3": 3}},
    }


def write_keys(cfg: dict[str, Any]) -> dict[str, Any]:
    """Generate the keys of ``cfg`` (:func:`base_config` with ``security``, its
    ``[security.users]``) into its ``keys_dir`` as ``oms keys`` does; return what each key's
    holder needs to reach the engine (name -> CurveClientKeys): every user, ``operator``
    (admin), ``writer`` and ``gateway-exchange1``."""
    from oms_core import security
    from oms_core.config import parse_config

    oms = parse_config(to_toml(cfg), file="engine.toml", ids=cfg.get("ids"))
    security.write_keys(oms, force=True)
    return {n: security.client_keys(oms, n) for n in security.key_names(oms)
            if n != security.ENGINE_KEY}


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
        self.path = write_config(cfg, tmp / "engine.toml")
        self.args = [sys.executable, "-m", "oms_core.engine", *config_args(self.path),
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

    def engine_config(self) -> Any:
        """The settings the engine was started with (its file and ids, loaded again)."""
        return written_settings(self.path)

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
