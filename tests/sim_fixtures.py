"""Pytest fixtures for the simulated Binance exchange, importable by any integration test.

Usage from any test module (tests/ is on sys.path: tests/conftest.py)::

    from sim_fixtures import sim, sim_process, ccxt_binance  # noqa: F401  (fixtures)

    async def test_x(sim):                   # in-process server, market off, fresh per test
        sim.rest_url  # http://127.0.0.1:PORT/api/v3
        sim.server.fault(rate_limit=1)

Both fixtures yield a ``SimHandle``: base/REST/ws URLs and the test API keys/secrets.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateways.sim.config import DEFAULT_ACCOUNTS, SimConfig
from gateways.sim.server import SimServer

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class SimHandle:
    base_url: str  # http://127.0.0.1:PORT
    ws_url: str  # ws://127.0.0.1:PORT
    keys: list[tuple[str, str]]  # (api_key, secret) per configured account
    server: SimServer | None = None  # in-process only
    proc: subprocess.Popen[bytes] | None = None  # subprocess only
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def rest_url(self) -> str:
        return self.base_url + "/api/v3"


def sim_config(**overrides: Any) -> SimConfig:
    """A test config: default symbols/accounts, synthetic market off unless asked."""
    d: dict[str, Any] = {"market": {"enabled": False}}
    d.update(overrides)
    return SimConfig.from_dict(d)


def _keys(cfg: SimConfig) -> list[tuple[str, str]]:
    return [(a.api_key, a.secret) for a in cfg.accounts]


async def start_sim(cfg: SimConfig | None = None) -> SimHandle:
    """Start an in-process server on a free loopback port (stop it with ``handle.server``)."""
    cfg = cfg or sim_config()
    server = SimServer(cfg)
    await server.start("127.0.0.1", 0)
    return SimHandle(server.base_url, server.ws_url, _keys(cfg), server=server)


@pytest.fixture
async def sim() -> AsyncIterator[SimHandle]:
    """In-process simulator, synthetic market off (tests drive the book themselves)."""
    h = await start_sim()
    try:
        yield h
    finally:
        assert h.server is not None
        await h.server.stop()


@pytest.fixture
async def sim_market() -> AsyncIterator[SimHandle]:
    """In-process simulator with the synthetic market running (10 ms ticks)."""
    h = await start_sim(sim_config(market={"enabled": True, "tick_ms": 10}))
    try:
        yield h
    finally:
        assert h.server is not None
        await h.server.stop()


def start_sim_process(extra_args: list[str] | None = None, timeout_s: float = 15.0
                      ) -> SimHandle:
    """Run ``python -m gateways.sim --port 0`` as a subprocess; wait for its ports file."""
    fd, ports = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    os.unlink(ports)
    cmd = [sys.executable, "-m", "gateways.sim", "--port", "0", "--ports-file", ports,
           *(extra_args or [])]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(ports):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            _, err = proc.communicate(timeout=5)
            raise RuntimeError(f"simulator did not start: {err.decode()[-2000:]}")
        time.sleep(0.05)
    info = json.loads(Path(ports).read_text())
    os.unlink(ports)
    cfg = SimConfig.from_dict({"accounts": DEFAULT_ACCOUNTS})
    return SimHandle(info["base_url"], info["ws"], _keys(cfg), proc=proc, info=info)


def stop_sim_process(h: SimHandle, timeout_s: float = 10.0) -> int:
    assert h.proc is not None
    if h.proc.poll() is None:
        h.proc.send_signal(signal.SIGTERM)
        try:
            h.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            h.proc.kill()
            h.proc.wait(timeout=timeout_s)
    if h.proc.stdout:
        h.proc.stdout.close()
    if h.proc.stderr:
        h.proc.stderr.close()
    return h.proc.returncode


@pytest.fixture
def sim_process() -> Iterator[SimHandle]:
    """The simulator as a separate process (synthetic market on), default config."""
    h = start_sim_process()
    try:
        yield h
    finally:
        stop_sim_process(h)


def ccxt_binance(h: SimHandle, account: int = 0) -> Any:
    """A ccxt async ``binance`` client pointed at the simulator (close it when done)."""
    import ccxt.async_support as ccxt_async

    key, secret = h.keys[account]
    ex = ccxt_async.binance({
        "apiKey": key,
        "secret": secret,
        "enableRateLimit": False,
        "timeout": 10_000,
        "options": {
            "defaultType": "spot",
            "fetchMarkets": {"types": ["spot"]},  # only /api/v3/exchangeInfo
            "fetchCurrencies": False,  # no sapi capital/config/getall
            "fetchMargins": False,  # no sapi margin pairs
        },
    })
    api = dict(ex.urls["api"])
    for name in ("public", "private"):
        api[name] = h.rest_url
    api["v1"] = h.base_url + "/api/v1"
    ex.urls["api"] = api
    return ex


async def wait_for(pred: Any, timeout_s: float = 5.0, interval_s: float = 0.01) -> None:
    """Poll ``pred()`` until true; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval_s)
