"""Unit tests of the gateway's cold parts: backoff, rate limiter, bounded set, config."""

from __future__ import annotations

import random

import pytest

from gateways.binance.gateway import BoundedSet
from gateways.config import config_from_dict
from gateways.ratelimit import Banned, RateLimiter
from oms_core.backoff import Backoff


def test_backoff_grows_capped_with_jitter():
    b = Backoff(0.5, 4.0, random.Random(1))
    delays = [b.next_delay() for _ in range(10)]
    assert all(0.05 <= d <= 4.0 for d in delays)
    assert len(set(delays)) == 10  # jittered
    b.reset()
    assert b.attempt == 0 and b.next_delay() <= 0.5


async def test_limiter_weights_headers_429_418():
    now = [120.0]
    rl = RateLimiter(limit_1m=100, safety=0.9, clock=lambda: now[0])
    await rl.acquire(50)
    assert rl.used == 50
    rl.update(200, {"X-MBX-USED-WEIGHT-1M": "85"})  # the exchange's count wins
    assert rl.used == 85
    rl.update(429, {"Retry-After": "7"})
    assert rl.blocked_until == 127.0 and rl.n_429 == 1
    rl.update(418, {"Retry-After": "3600"})
    with pytest.raises(Banned):
        await rl.acquire(1)
    now[0] = 180.0 + 3600  # new minute, ban over
    await rl.acquire(1)
    assert rl.used == 1


def test_bounded_set_forgets_oldest():
    s = BoundedSet(3)
    assert s.add(1) and s.add(2) and s.add(3) and not s.add(3)
    s.add(4)
    assert 1 not in s and 4 in s and len(s) == 3


def test_config_and_secrets(tmp_path, monkeypatch):
    key = tmp_path / "k"
    key.write_text("abc\n")
    cfg = config_from_dict({"kind": "binance", "api_key_file": str(key),
                            "api_secret_env": "GW_T_SECRET",
                            "instruments": [{"id": 1, "symbol": "ethusdt", "price_decimals": 2,
                                             "qty_decimals": 4}],
                            "engine": {"orders": "tcp://127.0.0.1:1", "bind": True}})
    monkeypatch.setenv("GW_T_SECRET", "s3cret")
    assert cfg.credentials() == ("abc", "s3cret")
    assert "ETHUSDT" in cfg.instrument_by_symbol() and cfg.engine.bind
    monkeypatch.delenv("GW_T_SECRET")
    with pytest.raises(RuntimeError) as exc:
        cfg.credentials()
    assert "s3cret" not in str(exc.value)
