"""`oms halt --cancel`, `oms cancel` and `oms flatten` against a running `oms run` (real
processes on loopback: simulator, two engine shards, gateways, writers)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from test_oms_run import Run, _oms, _wait

from bindings.client import Ack, OmsClient
from oms_core.config import load_config
from oms_core.engine.config import shard_endpoint
from oms_core.enums import OrderType, Reject, Side
from oms_core.security import operator_keys

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    r = Run(tmp_path_factory.mktemp("control"))
    try:
        yield r
    finally:
        r.kill()


def _client(run: Run, name: str) -> tuple[OmsClient, int]:
    cfg = load_config(run.config)
    c = cfg.clients[name]
    return OmsClient(shard_endpoint(cfg.engine.commands, c.shard), timeout=5.0,
                     curve=operator_keys(cfg)), c.id


def _open(run: Run, name: str) -> int:
    c, acct = _client(run, name)
    with c:
        return len(c.orders(account=acct).rows)


def _positions(run: Run, name: str) -> dict[int, int]:
    c, acct = _client(run, name)
    with c:
        return {p.instrument: p.quantity for p in c.positions(account=acct).rows if p.quantity}


def _buy_market(run: Run, name: str, qty: int) -> None:
    """A direct market buy (strategy 0), retried until the engine has a reference price."""
    c, acct = _client(run, name)
    with c:
        def sent() -> bool:
            r = c.submit(0, Side.BUY, qty, order_type=OrderType.MARKET, account=acct)
            assert isinstance(r, Ack) or r.code == Reject.NO_REFERENCE_PRICE, r
            return isinstance(r, Ack)

        _wait(sent, 20.0, "market buy accepted")


def _rest_below_market(run: Run, name: str, price: int) -> None:
    """A limit buy 3% under ``price`` (inside the 5% collar): it rests at the venue."""
    c, acct = _client(run, name)
    with c:
        r = c.submit(0, Side.BUY, 100, price * 97 // 100, account=acct)
        assert isinstance(r, Ack), r


def _avg_price(run: Run, name: str) -> int:
    c, acct = _client(run, name)
    with c:
        return next(p.avg_price for p in c.positions(account=acct).rows if p.instrument == 0)


def test_halt_cancel_then_flatten_closes_only_the_named_client(run: Run) -> None:
    cfg = str(run.config)
    _buy_market(run, "alice", 200)
    _wait(lambda: _positions(run, "alice").get(0) == 200, 20.0, "alice holds 0.02 BTC")
    price = _avg_price(run, "alice")
    _rest_below_market(run, "alice", price)
    _rest_below_market(run, "bob", price)
    _wait(lambda: _open(run, "alice") == 1 and _open(run, "bob") == 1, 10.0, "orders rest")

    r = _oms("halt", "--config", cfg, "--account", "alice", "--cancel")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "alice: cancel: ok" in r.stdout
    _wait(lambda: _open(run, "alice") == 0, 10.0, "alice's resting order canceled")
    assert _open(run, "bob") == 1  # not in scope

    # status shows the halt, the balances, the open orders and the P&L of each client
    import json
    from decimal import Decimal

    r = _oms("status", "--config", cfg, "--json", "--pings", "5")
    assert r.returncode == 0, r.stderr
    clients = {n: c for sh in json.loads(r.stdout)["shards"].values()
               for n, c in sh["clients"].items()}
    assert clients["alice"]["kill"] == ["account: HALT"] and clients["bob"]["kill"] == []
    assert clients["alice"]["open_orders"] == []
    (bob_order,) = clients["bob"]["open_orders"]
    assert (bob_order["instrument"], bob_order["side"], bob_order["qty"]) == (
        "BTCUSDT", "buy", "0.0100")
    assert set(clients["alice"]["balances"]["USDT"]) == {"free", "total"}
    (pos,) = [p for p in clients["alice"]["positions"] if p["instrument"] == "BTCUSDT"]
    assert Decimal(pos["qty"]) == Decimal("0.02") and Decimal(pos["fees"]) > 0
    Decimal(pos["unrealized"])  # a number (the market moves it)
    r = _oms("status", "--config", cfg, "--pings", "5")
    assert r.returncode == 0 and "account: HALT" in r.stdout and "BTCUSDT buy" in r.stdout, (
        r.stdout)

    # halted: the closing order is refused and the operator is told why
    r = _oms("flatten", "--config", cfg, "--account", "alice", "--settle", "5", timeout=60)
    assert r.returncode == 1 and "account is halted" in r.stdout, r.stdout
    assert "oms halt --reduce-only" in r.stdout
    assert _positions(run, "alice").get(0) == 200

    r = _oms("halt", "--config", cfg, "--account", "alice", "--reduce-only")
    assert r.returncode == 0, r.stdout
    r = _oms("flatten", "--config", cfg, "--account", "alice", timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "alice: close BTCUSDT sell 200 (raw): ok" in r.stdout
    _wait(lambda: not _positions(run, "alice"), 20.0, "alice flat")
    assert _open(run, "bob") == 1
    assert _oms("resume", "--config", cfg, "--account", "alice").returncode == 0


def test_cancel_by_instrument_and_unknown_names(run: Run) -> None:
    cfg = str(run.config)
    _buy_market(run, "carol", 100)  # carol trades on shard 1
    _wait(lambda: _positions(run, "carol").get(0) == 100, 20.0, "carol holds 0.01 BTC")
    _rest_below_market(run, "carol", _avg_price(run, "carol"))
    _wait(lambda: _open(run, "carol") == 1, 10.0, "carol's order rests")
    r = _oms("cancel", "--config", cfg, "--instrument", "ETHUSDT")
    assert r.returncode == 0, r.stdout + r.stderr
    time.sleep(1.0)
    assert _open(run, "carol") == 1 and _open(run, "bob") == 1  # BTCUSDT orders stay
    r = _oms("cancel", "--config", cfg, "--instrument", "BTCUSDT")
    assert r.returncode == 0 and "carol: cancel: ok" in r.stdout and "bob: cancel: ok" in (
        r.stdout)
    _wait(lambda: _open(run, "carol") == 0 and _open(run, "bob") == 0, 10.0, "all canceled")
    for args in (("--account", "mallory"), ("--strategy", "nope"), ("--instrument", "X")):
        r = _oms("cancel", "--config", cfg, *args)
        assert r.returncode == 2 and "no " in r.stderr, r.stderr
