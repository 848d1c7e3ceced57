"""`oms run` on examples/desk.toml through faults: kill -9 of each process kind in turn (the
engine, the Binance gateway of spot_a, the ccxt gateway of spot_b, the writer), kill -9 of a
gateway that never acted on an order sent to it, an outage of each simulated venue, and a
full restart of `oms run` on the same journal.

Orders are in flight at each fault (a market order and a limit order at the touch sent just
before it). After each fault trading resumes without any admin command, and at the end
nothing is lost or doubled: every venue trade of every account is booked exactly once in
the engine (positions and balances equal the venue accounts') and in DuckDB (fills by venue
trade id), and nothing is booked that the venues did not trade.
"""

from __future__ import annotations

import os
import signal
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from desk import PREFIX, Desk, booked_fees, booked_fills, foreign_orders, wait_until

from oms_core.enums import OrderStatus, OrderType, Reject, Side, TimeInForce

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

# every rejection is retried: after a fault the engine may still be reconciling
ANY_REJECT = tuple(Reject)


class Trader:
    """Each client trades at each venue it has an account at, orders remembered."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.orders: dict[int, str] = {}  # engine order id -> client

    def send(self, who: str, symbol: str, side: int, qty: str, **kw: Any) -> None:
        r = self.desk.buy_sell(who, symbol, side, qty, retry=ANY_REJECT, **kw)
        assert r.ok, (who, symbol, side, qty, r)
        self.orders[r.order_id] = who

    def round(self) -> None:
        """A buy of each trend client at spot_a; at spot_b each swing client (single entry)
        sells what it holds or enters again."""
        d = self.desk
        self.send("alice", "BTCUSDT", Side.BUY, "0.002")
        self.send("bob", "ETHUSDT", Side.BUY, "0.01")
        sol = d.cfg.instruments["SOLUSDT"]
        for who in ("alice", "carol"):
            held = d.positions(who).get(sol.id, 0)
            if held:
                qty = str(d.c.decimal_qty("SOLUSDT", held))
                self.send(who, "SOLUSDT", Side.SELL, qty)
            else:
                self.send(who, "SOLUSDT", Side.BUY, "1")

    def in_flight(self) -> None:
        """Orders the fault meets on their way: a market buy, and a marketable limit buy
        (a little above the best ask: it trades at once)."""
        d = self.desk
        self.send("bob", "BTCUSDT", Side.BUY, "0.001")
        ask = Decimal(d.venues[("spot_a", "alice")].book_ticker("ETHUSDT")["askPrice"])
        price = (ask * Decimal("1.002")).quantize(Decimal("0.01"))
        self.send("alice", "ETHUSDT", Side.BUY, "0.01", price=str(price),
                  order_type=OrderType.LIMIT, tif=TimeInForce.GTC)

    def settled(self, phase: str, timeout: float = 60.0) -> None:
        diff = self.desk.settle(timeout, lambda: self.desk.not_final(self.orders))
        assert diff == [], (phase, diff)


def _engine_ready_again(desk: Desk, start: int) -> bool:
    assert desk.run is not None
    return "RECONCILED " in desk.run.log("engine-0", start)


def test_kill9_of_each_process_and_a_full_restart_lose_and_double_nothing(
        tmp_path: Path) -> None:
    t0 = time.monotonic()
    desk = Desk(tmp_path)
    run = desk.start()
    trader = Trader(desk)
    try:
        trader.round()
        trader.settled("start")
        for name in ("engine-0", "gateway-spot_a-0", "gateway-spot_b-0", "writer-0"):
            trader.in_flight()
            starts = run.processes()[name]["starts"]
            run.kill9(name)
            if name == "engine-0":
                assert wait_until(lambda s=starts: _engine_ready_again(desk, s + 1), 60), \
                    run.log(name, starts + 1)[-3000:]
                desk.connect()
            trader.round()
            trader.settled(f"kill -9 {name}")
        # an order the gateway never acted on: sent while it is stopped, then kill -9; the
        # engine holds it in doubt and asks the venue, which never had it
        pid = run.processes()["gateway-spot_a-0"]["pid"]
        os.kill(pid, signal.SIGSTOP)
        trader.send("bob", "ETHUSDT", Side.BUY, "0.01")
        run.kill9("gateway-spot_a-0")
        trader.round()
        trader.settled("an order the killed gateway never sent")
        # a fill while the gateway is down: alice's bid rests at spot_a, the gateway stops
        # (SIGSTOP: no stream, no answers), the market trades through the bid, then kill -9;
        # the restarted gateway's reconciliation books the fill, once
        venue = desk.venues[("spot_a", "alice")]
        bid = Decimal(venue.book_ticker("BTCUSDT")["bidPrice"])
        price = (bid * Decimal("0.999")).quantize(Decimal("0.01"))
        r = desk.buy_sell("alice", "BTCUSDT", Side.BUY, "0.001", retry=ANY_REJECT,
                          price=str(price), order_type=OrderType.LIMIT, tif=TimeInForce.GTC)
        assert r.ok, r
        trader.orders[r.order_id] = "alice"
        assert wait_until(lambda: desk.engine_orders("alice")[r.order_id].status
                          == OrderStatus.NEW, 30), desk.engine_orders("alice")[r.order_id]
        pid = run.processes()["gateway-spot_a-0"]["pid"]
        os.kill(pid, signal.SIGSTOP)
        try:
            venue.admin("mid", symbol="BTCUSDT", price=str(price * Decimal("0.998")))
            cid = f"{PREFIX}{r.order_id}"
            assert wait_until(lambda: any(o["clientOrderId"] == cid and o["status"] == "FILLED"
                                          for o in venue.orders()), 30), "not filled at venue"
        finally:
            run.kill9("gateway-spot_a-0")
        trader.round()
        trader.settled("a fill while the gateway was down")
        assert desk.engine_orders("alice")[r.order_id].status == OrderStatus.FILLED
        # a venue that stops answering for a while (SIGSTOP), then comes back
        for exchange in ("spot_a", "spot_b"):
            pid = run.processes()[f"sim-{exchange}"]["pid"]
            trader.in_flight()
            os.kill(pid, signal.SIGSTOP)
            try:
                time.sleep(3)
            finally:
                os.kill(pid, signal.SIGCONT)
            trader.round()
            trader.settled(f"outage of {exchange}")
        # the whole desk stopped and started again on the same journal
        trader.in_flight()
        assert desk.stop() == 0
        run = desk.start()
        trader.round()
        trader.settled("full restart")
        venue_fills = desk.venue_fills()
        venue_fees = desk.venue_fees()
        venue_orders = desk.venue_orders()
        assert desk.stop() == 0
    finally:
        desk.stop()
        run.kill()
    # every venue trade booked once in DuckDB, nothing the venues did not trade
    ids = {n: c.id for n, c in desk.cfg.clients.items()}
    expected = {(ids[who], oid, tid): n for (who, oid, tid), n in venue_fills.items()}
    assert set(expected.values()) == {1}
    booked = booked_fills(run.database)
    assert {k: n for k, n in booked.items() if n != 1} == {}
    assert booked == expected
    assert booked_fees(run.database) == venue_fees
    # no order ever reached another client's venue account
    assert foreign_orders(desk, venue_orders) == []
    print(f"desk faults: {len(expected)} venue trades, {time.monotonic() - t0:.0f} s")
