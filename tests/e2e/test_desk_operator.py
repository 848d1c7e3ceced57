"""What the operator sees of a running desk (`oms run` on examples/desk.toml): `oms status`
shows each gateway's connection state with the venue accounts it serves (a gateway that
stops talking shows as not heard, and it is heard again after kill -9 and its restart), the
engine's recent risk alerts, and the venue's code of an order the venue refused, which the
client and DuckDB get too.

Real processes on loopback; the refusals are the venue's own: the simulator's -2010 for a buy
over the venue account's balance (the engine's balance check switched off for it) and the
ccxt gateway's -2015 for a client with no account at its exchange.
"""

from __future__ import annotations

import os
import signal
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from desk import ENV, OMS, ROOT, Desk, wait_until

from bindings.client import Ack, AlertRow, GatewayRow, Rejected, order_reject_text
from bindings.wire.spec import MsgType
from oms_core.cli import gather_status
from oms_core.enums import Alert, Limit, OrderStatus, OrderType, Reject, Side

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

GATEWAY_A = "gateway-spot_a-0"  # the Binance gateway of spot_a, shard 0


def _status(desk: Desk) -> dict[str, Any]:
    """What `oms status` gathers (in this process: polled)."""
    return gather_status(desk.cfg, pings=1, timeout=5.0, alerts=10)["shards"]["0"]


def _gateway(desk: Desk, exchange: str) -> dict[str, Any]:
    return next(g for g in _status(desk)["gateways"] if g["exchange"] == exchange)


def _oms_status_text(desk: Desk) -> str:
    r = subprocess.run(OMS + ["status", "--config", str(desk.config), "--pings", "1",
                              "--alerts", "10"], capture_output=True, text=True, env={
                                  **ENV, "COLUMNS": "250"}, cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _rejected_update(desk: Desk, order_id: int) -> Any:
    def seen() -> Any:
        return next((e for e in desk.events(0.3) if e.msg_type == MsgType.ORDER_UPDATE
                     and e.order_id == order_id and e.status == OrderStatus.REJECTED), None)

    return wait_until(seen, 20, 0.0)


def test_status_shows_gateways_alerts_and_venue_rejects(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    run = desk.start()
    c = desk.c
    try:
        # -- gateway connection state and the venue accounts each gateway serves
        healthy = wait_until(lambda: all(
            g["state"] == "HEALTHY" and not g["silent"] for g in _status(desk)["gateways"]),
            30)
        assert healthy, _status(desk)["gateways"]
        gws = {g["exchange"]: g for g in _status(desk)["gateways"]}
        assert gws["spot_a"]["accounts"] == ["alice", "bob"]
        assert gws["spot_b"]["accounts"] == ["alice", "carol"]
        rows = c.gateways().rows
        assert rows and all(isinstance(r, GatewayRow) for r in rows)

        # -- the venue refuses a buy over bob's venue balance (100000 USDT at spot_a)
        for limit, value in ((Limit.CHECK_BALANCE, 0), (Limit.MAX_ORDER_NOTIONAL, 10**15),
                             (Limit.MAX_NET_EXPOSURE, 10**15),
                             (Limit.MAX_GROSS_EXPOSURE, 10**15)):
            assert isinstance(c.set_limit("bob", limit, value), Ack)
        inst = desk.cfg.instruments["BTCUSDT"]
        venue = desk.venues[("spot_a", "bob")]
        bid = Decimal(venue.book_ticker(inst.exchange_symbol)["bidPrice"])
        price = (bid * Decimal("0.97")).quantize(Decimal(inst.tick).scaleb(-inst.price_precision))
        big = desk.buy_sell("bob", "BTCUSDT", Side.BUY, "3", price=str(price),
                            order_type=OrderType.LIMIT)
        assert isinstance(big, Ack), big
        upd = _rejected_update(desk, big.order_id)
        assert upd is not None, "no REJECTED update for the order over the venue balance"
        assert (upd.venue_code, upd.reason) == (-2010, Reject.VENUE_REJECTED)
        assert order_reject_text(upd).startswith("rejected by venue: -2010 ")
        # -- and the ccxt gateway refuses bob, who has no account at spot_b: -2015
        stray = desk.buy_sell("bob", "SOLUSDT", Side.BUY, "1")
        if isinstance(stray, Ack):  # (the engine may refuse it first)
            upd = _rejected_update(desk, stray.order_id)
            assert upd is not None and upd.venue_code == -2015, upd
            assert "no venue account" in order_reject_text(upd)
        else:
            assert isinstance(stray, Rejected)
        held = {o.order_id: o for o in c.orders(open_only=False, account="bob").rows}
        assert held[big.order_id].venue_code == -2010  # the query row keeps it

        # -- a breaker trips: bob's reject-rate breaker (1 per second, burst 1) on two
        # orders the engine refuses (outside the price collar)
        for limit in (Limit.REJECT_RATE, Limit.REJECT_BURST):
            assert isinstance(c.set_limit("bob", limit, 1), Ack)
        far = str((bid * 2).quantize(Decimal(inst.tick).scaleb(-inst.price_precision)))
        for _ in range(2):
            r = c.submit("BTCUSDT", Side.BUY, "0.001", far, account="bob", strategy="trend")
            assert isinstance(r, Rejected) and r.code == Reject.PRICE_COLLAR, r
        alerts = c.alerts(limit=5).rows
        assert alerts and isinstance(alerts[0], AlertRow), alerts
        assert (alerts[0].alert, alerts[0].account) == (Alert.REJECT_RATE_BREAKER,
                                                        desk.cfg.clients["bob"].id)
        assert len(c.alerts(limit=1).rows) == 1
        st = _status(desk)
        assert st["alerts"][0]["kind"] == "REJECT_RATE_BREAKER"
        assert st["alerts"][0]["account"] == "bob"
        bob = st["clients"]["bob"]
        assert [o["venue_code"] for o in bob["rejected"] if o["order_id"] == big.order_id] == [
            -2010]
        assert "account: HALT" in bob["kill"]
        text = _oms_status_text(desk)
        assert "REJECT_RATE_BREAKER" in text, text
        assert "rejected by venue: -2010" in text, text
        assert "HEALTHY" in text and "alice, bob" in text, text

        # -- a gateway that stops talking is shown as not heard, not as its last HEALTHY
        pid = run.processes()[GATEWAY_A]["pid"]
        starts = run.processes()[GATEWAY_A]["starts"]
        os.kill(pid, signal.SIGSTOP)
        try:
            silent = wait_until(lambda: _gateway(desk, "spot_a")["silent"], 20)
            assert silent, _gateway(desk, "spot_a")
            g = _gateway(desk, "spot_a")
            assert g["text"].startswith("NOT HEARD for ") and "HEALTHY" in g["text"], g
            assert not _gateway(desk, "spot_b")["silent"]
            assert "NOT HEARD for" in _oms_status_text(desk)
        finally:
            os.kill(pid, signal.SIGKILL)  # kill -9; the supervisor starts it again
        back = wait_until(lambda: run.processes()[GATEWAY_A]["alive"]
                          and run.processes()[GATEWAY_A]["starts"] > starts, 60)
        assert back, run.processes()[GATEWAY_A]
        again = wait_until(lambda: (g := _gateway(desk, "spot_a"))["state"] == "HEALTHY"
                           and not g["silent"], 60)
        assert again, _gateway(desk, "spot_a")
    finally:
        assert desk.stop() == 0
    # -- DuckDB stores the venue's code with the refused order
    con = duckdb.connect(run.database, read_only=True)
    try:
        codes = con.execute("select venue_code, reason from orders where order_id = ? "
                            "and status = ?", [big.order_id, int(OrderStatus.REJECTED)]
                            ).fetchall()
    finally:
        con.close()
    assert codes == [(-2010, int(Reject.VENUE_REJECTED))], codes
