"""UNKNOWN is an order state: a submit whose outcome the gateway cannot tell (GW_EXEC_REPORT
STATUS with status 0) is UNKNOWN for the client and in DuckDB, and is resolved by query (the
gateway's, or the engine's reconciliation on its timer when the gateway does not resolve it),
never by a blind re-send.

Real parts: the engine process with its journal, the real writer process into DuckDB, the
Python client, ZeroMQ over ipc://; the test plays the gateway (it answers GW_RECONCILE itself).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
import zmq

from bindings.client import Ack, OmsClient
from bindings.wire import records as wire
from bindings.wire.spec import HeaderFlag, MsgType, QueryKind
from oms_core.engine.process import ROOT, EngineProcess, base_config
from oms_core.enums import OrderStatus, Side

pytestmark = pytest.mark.timeout(90)


class GatewayPeer:
    """Orders in from the engine, reports out; every record it gets is kept."""

    def __init__(self, eps: dict[str, str]) -> None:
        self.ctx = zmq.Context()
        self.orders = self.ctx.socket(zmq.PULL)
        self.reports = self.ctx.socket(zmq.PUSH)
        for s, name in ((self.orders, "gateway_orders_1"), (self.reports, "gateway_events")):
            s.setsockopt(zmq.LINGER, 0)
            s.connect(eps[name])
        self.seq = 0

    def next_record(self, msg_type: int, timeout: float) -> Any:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.orders.poll(50):
                for rec in wire.decode_frame(self.orders.recv()):
                    if rec.msg_type == msg_type:
                        return rec
        return None

    def send(self, name: str, request_id: int = 0, flags: int = 0, **fields: Any) -> None:
        self.seq += 1
        self.reports.send(wire.encode(name, request_id, self.seq, time.time_ns(), flags,
                                      **fields))

    def close(self) -> None:
        self.ctx.destroy(0)


def _status(c: OmsClient, order_id: int) -> OrderStatus:
    rows = c.query(QueryKind.ORDERS, account=1).rows
    return OrderStatus(next(o.status for o in rows if o.order_id == order_id))


def test_unknown_is_a_state_resolved_by_the_reconciliation_timer(tmp_path: Path) -> None:
    jdir, db = tmp_path / "journal", tmp_path / "oms.duckdb"
    from engine_crash_fixtures import venue_of_account1

    e = EngineProcess(venue_of_account1(base_config(tmp_path, "ipc")), tmp_path,
                      ("--journal", str(jdir), "--unknown-reconcile-s", "1")).start()
    writer_ep = e.endpoints["writer"]
    gw = GatewayPeer(e.endpoints)
    try:
        with OmsClient(e.endpoints["client"], account=1, timeout=5) as c:
            c.hello([1], heartbeat_ms=0)
            ids = []
            for cl in (1, 2):
                r = c.submit(1, Side.BUY, 1, 4_999_000, client_order_id=cl)
                assert isinstance(r, Ack), r
                ids.append(r.order_id)
                sent = gw.next_record(MsgType.GW_NEW_ORDER, 5)
                assert sent is not None and sent.order_id == r.order_id
                # the venue's answer was lost: the gateway says "in doubt"
                gw.send("GW_EXEC_REPORT", order_id=r.order_id, account=1, instrument=1,
                        exec_type=10, status=0)
            a, b = ids
            seen: dict[int, set[int]] = {a: set(), b: set()}
            end = time.monotonic() + 5
            while time.monotonic() < end and not all(
                    OrderStatus.UNKNOWN in s for s in seen.values()):
                for ev in c.events(0.05):
                    if ev.msg_type == MsgType.ORDER_UPDATE and ev.order_id in seen:
                        seen[ev.order_id].add(ev.status)
            assert all(OrderStatus.UNKNOWN in s for s in seen.values()), seen
            assert _status(c, a) == _status(c, b) == OrderStatus.UNKNOWN

            # nobody resolves them: the engine reconciles on its timer, never re-sends
            req = gw.next_record(MsgType.GW_RECONCILE, 10)
            assert req is not None, "no reconciliation for the orders in doubt"
            # the venue holds A (accepted after all) and has never seen B
            gw.send("GW_EXEC_REPORT", req.request_id, int(HeaderFlag.QUERY_ROW), order_id=a,
                    exch_order_id=77, account=1, instrument=1, exec_type=10, cum_qty=0,
                    leaves_qty=1, status=int(OrderStatus.NEW), quantity=1, price=4_999_000)
            gw.send("GW_RECONCILE_END", req.request_id, int(HeaderFlag.QUERY_ROW),
                    n_orders=1, account=1, gateway_id=1, code=0)
            end = time.monotonic() + 5
            while time.monotonic() < end and (
                    _status(c, a), _status(c, b)) != (OrderStatus.NEW, OrderStatus.REJECTED):
                time.sleep(0.05)
            assert (_status(c, a), _status(c, b)) == (OrderStatus.NEW, OrderStatus.REJECTED)
            # no order went to the venue a second time
            assert gw.next_record(MsgType.GW_NEW_ORDER, 0.5) is None
        assert e.stop() == 0
    finally:
        gw.close()
        e.kill()
    # the writer's catch-up pass from the journal (as after `oms run` stops) into DuckDB
    subprocess.run([sys.executable, "-m", "writer", "--engine", writer_ep, "--journal",
                    str(jdir), "--db", str(db), "--max-seconds", "0.3"], cwd=ROOT,
                   env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True, timeout=60,
                   capture_output=True)
    con = duckdb.connect(str(db), read_only=True)
    try:
        history = con.execute(
            "SELECT o.order_id, s.name FROM orders o JOIN order_statuses s ON s.code = o.status "
            "ORDER BY o.seq").fetchall()
        final = dict(con.execute("SELECT order_id, status_name FROM order_states").fetchall())
    finally:
        con.close()
    for oid in (a, b):
        assert [n for o, n in history if o == oid][:2] == ["PENDING_NEW", "UNKNOWN"], history
    assert final == {a: "NEW", b: "REJECTED"}


async def test_lost_ack_at_the_real_gateway_is_unknown_then_resolved_by_its_query(
        tmp_path: Path, monkeypatch: Any) -> None:
    """The simulator places the order but drops the HTTP answer: the Binance gateway reports
    the order in doubt, the engine shows UNKNOWN, the gateway's query by client order id
    finds it and it becomes NEW; the venue holds it once. (The venue's streams stall a
    moment: its own report of the new order would otherwise beat the lost answer.)"""
    import asyncio

    from sim_fixtures import start_sim
    from test_reconcile_engine import _config, _gateway, _order, _orders, _stop

    from gateways.sim import constants as c

    h = await start_sim()
    assert h.server is not None
    ex = h.server.ex
    ex.ledger.deposit(ex.sim_account, ex.asset_index["BTC"], 10**12)
    ex.ledger.deposit(ex.sim_account, ex.asset_index["USDT"], 10**16)
    for side, px in ((c.SIDE_BUY, "45000.00"), (c.SIDE_SELL, "55000.00")):
        ex.sim_submit("BTCUSDT", side, c.OT_LIMIT, c.TIF_GTC, c.to_fixed(px), c.to_fixed("0.5"))
    ctx = zmq.Context()
    e = EngineProcess(base_config(tmp_path, "ipc"), tmp_path, ("--journal",
                                                                str(tmp_path / "journal")))
    e.path.write_text(_config(tmp_path).read_text())
    gw = None
    try:
        await asyncio.to_thread(e.start)
        gw = await _gateway(h, e.endpoints, monkeypatch)
        ep = e.endpoints["client"]
        for side in (c.SIDE_SELL, c.SIDE_BUY):
            ex.sim_submit("BTCUSDT", side, c.OT_LIMIT, c.TIF_GTC, c.to_fixed("49000.00"),
                          c.to_fixed("0.01"))
        await asyncio.sleep(0.5)
        h.server.fault(lose_ack=1, lose_ack_mode="drop", stall_ws_s=1.5)
        with OmsClient(ep, account=1, timeout=5) as client:
            client.hello([1], heartbeat_ms=0)
            a = await asyncio.to_thread(_order, ctx, ep, 1, 4_900_000)
            assert a.msg_type == MsgType.ACK
            statuses: list[int] = []
            end = time.monotonic() + 10
            while time.monotonic() < end and OrderStatus.NEW not in statuses:
                for ev in await asyncio.to_thread(lambda: list(client.events(0.1))):
                    if ev.msg_type == MsgType.ORDER_UPDATE and ev.order_id == a.order_id:
                        statuses.append(ev.status)
        assert statuses[:3] == [OrderStatus.PENDING_NEW, OrderStatus.UNKNOWN,
                                OrderStatus.NEW], statuses
        orders = await asyncio.to_thread(_orders, ctx, ep)
        assert orders[1].status == OrderStatus.NEW
        assert len(ex.open_orders(0, "BTCUSDT")) == 1  # never sent twice
        assert e.stop() == 0
    finally:
        if gw is not None:
            await _stop(gw)
        e.kill()
        ctx.term()
        await h.server.stop()
