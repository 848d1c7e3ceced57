"""Bracket protection through the real engine process (subprocess, real ZeroMQ sockets): the
test plays the venue's gateway and a client with the real Python client.

The seen case of issue 10 item 4: a BTC market bracket is planned on the market (50060.00) and
fills at 50012.67; the stop-loss must go out below the fill. The venue then refuses the stop:
the client hears RISK_ALERT, the position is marked unprotected, and with the flatten policy
the take-profit is canceled and the position is closed at market.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zmq

from bindings.client import OmsClient
from bindings.wire import records as wire
from bindings.wire.spec import ExecType, MsgType
from oms_core.engine.process import EngineProcess, base_config
from oms_core.enums import Alert, OrderType, ProtectAction, Side

pytestmark = pytest.mark.timeout(60)
LAST, FILL, QTY = 5_006_000, 5_001_267, 5_000  # 50060.00, 50012.67, 0.05 BTC


_held: list[Any] = []  # records of a frame after the one a _recv returned


def _recv(sock: zmq.Socket, pred: Callable[[Any], bool], timeout: float = 5.0) -> Any:
    end = time.monotonic() + timeout
    while True:
        while _held:
            rec = _held.pop(0)
            if pred(rec):
                return rec
        if time.monotonic() >= end:
            raise TimeoutError("record not received")
        if sock.poll(50):
            _held.extend(wire.decode_frame(sock.recv()))


def _event(c: OmsClient, pred: Callable[[Any], bool], timeout: float = 5.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for ev in c.events(0.05):
            if pred(ev):
                return ev
    raise TimeoutError("event not received")


def test_bracket_children_follow_the_fill_and_a_refused_stop_flattens(tmp_path: Path) -> None:
    _held.clear()
    cfg = base_config(tmp_path, "ipc")
    cfg["instruments"]["BTCUSDT"]["native_stops"] = True  # the venue holds the stop
    cfg["clients"]["account1"]["orders"]["protect_reject"] = "flatten"
    with EngineProcess(cfg, tmp_path) as engine:
        eps = engine.endpoints
        ctx = zmq.Context()
        orders, reports, md = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH), ctx.socket(zmq.PUB)
        for s, name in ((orders, "gateway_orders_1"), (reports, "gateway_events"),
                        (md, "gateway_md")):
            s.setsockopt(zmq.LINGER, 0)
            s.connect(eps[name])
        seq = [0]

        def report(**fields: Any) -> None:
            seq[0] += 1
            reports.send(wire.encode("GW_EXEC_REPORT", 0, seq[0], time.time_ns(), account=1,
                                     instrument=1, **fields))

        try:
            with OmsClient(eps["client"], account=1, strategy=1, timeout=5) as c:
                assert c.hello([1]).ok
                # the market moves to 50060.00 (mid): the bracket is planned there (sent for a
                # second: a PUB drops what it sends before the engine's SUB has joined)
                for _ in range(20):
                    md.send(wire.encode("GW_MARKET_DATA", 0, 1, time.time_ns(), instrument=1,
                                        bid=LAST - 10, ask=LAST + 10, last=LAST))
                    time.sleep(0.05)
                a = c.bracket(1, Side.BUY, QTY, tp_price=LAST + 5006,
                              sl_trigger_price=LAST - 2503)
                assert a.ok, a
                entry = _recv(orders, lambda r: r.msg_type == MsgType.GW_NEW_ORDER)
                assert entry.order_type == OrderType.MARKET
                report(order_id=entry.order_id, exec_type=ExecType.ACK, exch_order_id=1)
                report(order_id=entry.order_id, exec_type=ExecType.FILL, trade_id=1,
                       last_qty=QTY, last_price=FILL, cum_qty=QTY, fee_asset=2, liquidity=2)
                _event(c, lambda e: e.msg_type == MsgType.FILL)
                first = _recv(orders, lambda r: r.msg_type == MsgType.GW_NEW_ORDER)
                second = _recv(orders, lambda r: r.msg_type == MsgType.GW_NEW_ORDER)
                tp, sl = sorted((first, second), key=lambda r: r.order_type)
                assert (tp.order_type, sl.order_type) == (OrderType.LIMIT,
                                                          OrderType.STOP_MARKET)
                # the distances are kept from the fill: the stop is below it (it was 50034.97)
                assert sl.trigger_price == FILL - 2503 < FILL < tp.price == FILL + 5006
                report(order_id=tp.order_id, exec_type=ExecType.ACK, exch_order_id=2)
                report(order_id=sl.order_id, exec_type=ExecType.REJECT, exch_code=-2010)
                alert = _event(c, lambda e: e.msg_type == MsgType.RISK_ALERT)
                assert (alert.alert, alert.order_id, alert.b) == (
                    Alert.PROTECTION_REFUSED, sl.order_id, ProtectAction.FLATTEN)
                row = c.positions(account=1).rows[0]
                assert (row.quantity, row.unprotected) == (QTY, 1)
                cancel = _recv(orders, lambda r: r.msg_type == MsgType.GW_CANCEL)
                assert cancel.order_id == tp.order_id
                flat = _recv(orders, lambda r: r.msg_type == MsgType.GW_NEW_ORDER)
                assert (flat.order_type, flat.side, flat.quantity) == (OrderType.MARKET,
                                                                       Side.SELL, QTY)
                report(order_id=tp.order_id, exec_type=ExecType.CANCELED)
                report(order_id=flat.order_id, exec_type=ExecType.ACK, exch_order_id=3)
                report(order_id=flat.order_id, exec_type=ExecType.FILL, trade_id=2,
                       last_qty=QTY, last_price=FILL - 500, cum_qty=QTY, fee_asset=2,
                       liquidity=2)
                _event(c, lambda e: e.msg_type == MsgType.POSITION_UPDATE and e.quantity == 0)
                rows = c.positions(account=1).rows
                assert [(r.quantity, r.unprotected) for r in rows] == [(0, 0)]
        finally:
            ctx.destroy(0)
