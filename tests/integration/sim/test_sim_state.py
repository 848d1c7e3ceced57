"""The simulated venue remembers across a restart (``--state``): balances, order records,
trades and open orders (resting again under their own ids, with what was left of them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sim_fixtures import sim_config

from gateways.sim import constants as c
from gateways.sim import state
from gateways.sim.server import SimServer

pytestmark = pytest.mark.timeout(60)


def _venue() -> SimServer:
    # the market ticks only when the test steps it
    return SimServer(sim_config(market={"enabled": True, "tick_ms": 3_600_000}))


def _orders(server: SimServer, account: int = 0) -> dict[int, dict[str, Any]]:
    return {r.order_id: r.to_query() for r in server.ex.accounts[account].records.values()}


def test_a_restarted_venue_keeps_balances_records_trades_and_open_orders(
        tmp_path: Path) -> None:
    first = _venue()
    ex = first.ex
    first.market.step()
    book = ex.markets["BTCUSDT"].book
    bid, ask = book.best(c.SIDE_BUY)[0], book.best(c.SIDE_SELL)[0]
    ex.place_order(0, "BTCUSDT", "BUY", "MARKET", "0.01")
    deep = ex.place_order(0, "BTCUSDT", "BUY", "LIMIT", "0.01", c.fmt(bid - 100 * c.SCALE),
                          "GTC", client_order_id="deep")["orderId"]
    stop = ex.place_order(0, "BTCUSDT", "SELL", "STOP_LOSS", "0.005",
                          stop_price=c.fmt(bid - 200 * c.SCALE))["orderId"]
    # a sell at the touch, half taken by another participant's market buy
    top = ask - c.to_fixed("0.01")
    half = ex.place_order(0, "BTCUSDT", "SELL", "LIMIT", "0.02", c.fmt(top), "GTC")["orderId"]
    ex.sim_submit("BTCUSDT", c.SIDE_BUY, c.OT_MARKET, c.TIF_GTC, 0, c.to_fixed("0.01"))
    rec = ex.accounts[0].records[("BTCUSDT", half)]
    assert rec.status == c.ST_PARTIALLY_FILLED and rec.filled == c.to_fixed("0.01")
    before = state.snapshot(first)
    orders, trades = _orders(first), list(ex.accounts[0].trades)
    path = tmp_path / "sim-state.json"
    state.save(first, path)

    second = _venue()
    assert state.load(second, path)
    ex2 = second.ex
    book2 = ex2.markets["BTCUSDT"].book
    after = state.snapshot(second)["accounts"]
    assert {n: a["balances"] for n, a in after.items()} == {
        n: a["balances"] for n, a in before["accounts"].items()}
    assert _orders(second) == orders and list(ex2.accounts[0].trades) == trades
    assert book2.next_order_id == book.next_order_id
    assert book2.next_trade_id == book.next_trade_id
    # the open orders rest again, under their own ids, with what was left of them
    assert book2.order(deep)["qty"] - book2.order(deep)["filled"] == c.to_fixed("0.01")
    assert book2.order(half)["qty"] == c.to_fixed("0.01")
    assert book2.order(stop) is not None and book2.n_stops == 1
    assert ex2.ledger.locked(0, ex2.asset_index["BTC"]) == ex.ledger.locked(
        0, ex.asset_index["BTC"])
    # trading goes on: the rest of the half-filled sell fills, counted on top of its past
    reports: list[dict[str, Any]] = []
    ex2.user_listeners.append(lambda acct, p: reports.append(p))
    second.market.step()
    ex2.sim_submit("BTCUSDT", c.SIDE_BUY, c.OT_MARKET, c.TIF_GTC, 0, c.to_fixed("0.01"))
    rec2 = ex2.accounts[0].records[("BTCUSDT", half)]
    assert rec2.status == c.ST_FILLED and rec2.filled == c.to_fixed("0.02")
    last = [r for r in reports if r.get("e") == "executionReport" and r["i"] == half][-1]
    assert (last["X"], last["z"]) == ("FILLED", "0.02000000")
    new = ex2.place_order(0, "BTCUSDT", "BUY", "MARKET", "0.001")
    assert new["orderId"] >= book.next_order_id
    assert ex2.accounts[0].trades[-1]["id"] >= book.next_trade_id
    # the client order id is still known
    assert ex2.find_order(0, "BTCUSDT", None, "deep").order_id == deep


def test_no_state_file_starts_fresh_and_ids_never_go_back(tmp_path: Path) -> None:
    server = _venue()
    assert not state.load(server, tmp_path / "none.json")
    book = server.ex.markets["BTCUSDT"].book
    book.resume(10, 10, 0)
    book.resume(5, 5, 0)  # an empty book may start anywhere
    server.market.step()
    with pytest.raises(ValueError, match="only go forward"):
        book.resume(book.next_order_id - 1, book.next_trade_id, 0)


def test_ids_go_on_from_the_later_of_the_saved_ids_and_this_start(tmp_path: Path) -> None:
    first = _venue()
    first.market.step()
    rest = first.ex.place_order(0, "BTCUSDT", "BUY", "LIMIT", "0.01", "40000", "GTC")
    path = tmp_path / "state.json"
    state.save(first, path)
    later = SimServer(sim_config(market={"enabled": True, "tick_ms": 3_600_000},
                                 first_id=10**9))
    assert state.load(later, path)
    book = later.ex.markets["BTCUSDT"].book
    assert book.order(rest["orderId"]) is not None
    assert book.next_order_id == book.next_trade_id == 10**9
