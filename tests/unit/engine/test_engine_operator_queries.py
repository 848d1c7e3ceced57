"""The engine's answers to what the operator asks (no sockets): the recent risk alerts, newest
first and bounded; the last status of each gateway; the venue's code of an order it refused."""

from __future__ import annotations

import time

from test_engine_loop import _engine, _live, _order

from bindings.results import typed_rows
from bindings.wire import records as wire
from bindings.wire.spec import ALERTS_KEPT, ANY_ID, ExecType, GatewayState, MsgType, QueryKind
from oms_core.enums import Alert, OrderStatus, Reject


def _query(e: object, kind: QueryKind, limit: int = 0, account: int = ANY_ID) -> list:
    rows = _live(e, wire.encode("QUERY", 7, 7, 0, kind=int(kind), account=account,
                                strategy=ANY_ID, instrument=ANY_ID, order_id=limit))
    end = rows[-1]
    assert end.msg_type == MsgType.QUERY_RESULT and end.code == 0, end
    assert end.n_rows == len(rows) - 1
    return rows[:-1]


def _unknown_fill(trade_id: int) -> bytes:
    """A fill of an order the engine never sent: an UNKNOWN_ORDER_FILL alert (a = trade)."""
    return wire.encode("GW_EXEC_REPORT", 0, trade_id, 0, order_id=999_999_999,
                       exec_type=ExecType.FILL, trade_id=trade_id, last_qty=1,
                       last_price=5_000_000, fee_asset=2)


def test_alerts_are_the_newest_first_and_bounded() -> None:
    e = _engine()
    assert _query(e, QueryKind.ALERTS) == []
    n = ALERTS_KEPT + 6
    for t in range(1, n + 1):
        _live(e, _unknown_fill(t), gateway=True)
    rows = _query(e, QueryKind.ALERTS)
    assert [r.a for r in rows] == list(range(n, n - ALERTS_KEPT, -1))
    assert all(r.msg_type == MsgType.RISK_ALERT and r.alert == Alert.UNKNOWN_ORDER_FILL
               for r in rows)
    assert [r.a for r in _query(e, QueryKind.ALERTS, limit=3)] == [n, n - 1, n - 2]
    typed = typed_rows(QueryKind.ALERTS, rows[:1], 0)[0]
    assert typed.alert == Alert.UNKNOWN_ORDER_FILL and f"trade {n}" in typed.text
    # an account's own alerts only: these belong to no account
    assert _query(e, QueryKind.ALERTS, account=1) == []


def test_gateways_answer_the_last_status_of_each() -> None:
    e = _engine()
    e.loop.py_gateway = None  # the loop alone (the server's callback needs its sockets)
    assert _query(e, QueryKind.GATEWAYS) == []
    sent = time.time_ns()
    for k, (state, detail) in enumerate([(GatewayState.RECONNECTING, 0),
                                         (GatewayState.HEALTHY, 7)]):
        _live(e, wire.encode("GW_STATUS", 0, k + 1, sent, ts_ns=sent + k, gateway_id=1,
                             detail=detail, state=int(state)), gateway=True)
    rows = _query(e, QueryKind.GATEWAYS)
    assert [(r.gateway_id, r.state, r.detail, r.ts_ns, r.n_status) for r in rows] == [
        (1, GatewayState.HEALTHY, 7, sent + 1, 2)]
    assert rows[0].heard_ns >= sent
    fresh = typed_rows(QueryKind.GATEWAYS, rows, rows[0].heard_ns + 10**9)[0]
    assert fresh.state == GatewayState.HEALTHY and not fresh.silent
    old = typed_rows(QueryKind.GATEWAYS, rows, rows[0].heard_ns + 10 * 10**9)[0]
    assert old.silent and str(old).startswith("NOT HEARD for 10 s (last said HEALTHY")


def test_a_venue_reject_carries_the_venue_code() -> None:
    e = _engine()
    ack = next(r for r in _live(e, _order(1, 1)) if r.msg_type == MsgType.ACK)
    out = _live(e, wire.encode("GW_EXEC_REPORT", 0, 1, 0, order_id=ack.order_id,
                               exec_type=ExecType.REJECT, exch_code=-2010), gateway=True)
    upd = [r for r in out if r.msg_type == MsgType.ORDER_UPDATE]
    assert [(u.status, u.reason, u.venue_code) for u in upd] == [
        (OrderStatus.REJECTED, Reject.VENUE_REJECTED, -2010)]
    rows = _query(e, QueryKind.ORDERS, account=1)
    assert [(r.order_id, r.venue_code) for r in rows] == [(ack.order_id, -2010)]
