"""Every role against every client command kind, through one real engine with CURVE on.

The expected outcome of each cell is written out below as a policy matrix (it is the policy,
not derived from bindings.wire.spec.ROLE_MAY, so a wrong table fails here). Each record names
the sender's own account, another client's account or ANY_ID, and the engine's answer is
classified as:

    A  accepted   (ACK, HEARTBEAT, QUERY_RESULT code 0)
    R  rejected   by the engine after it was authorized (REJECT, QUERY_RESULT with a code)
    U  refused    PROTOCOL_ERROR UNAUTHORIZED: this role may not send this for that account
    -  silence    the CURVE handshake is refused: nothing is ever answered

Then client A's isolation from client B on its own account: B's orders, positions and
balances are out of A's sight and reach, whatever order id A names.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import zmq

from bindings.client import OmsClient, ProtocolError
from bindings.security import CurveClientKeys, generate_keypair
from bindings.wire import records as wire
from bindings.wire.spec import (
    ANY_ID,
    AdminAction,
    ExecType,
    HeaderFlag,
    MsgType,
    QueryKind,
    Scope,
    WireError,
)
from oms_core.engine.process import EngineProcess, base_config, write_keys
from oms_core.enums import KillMode, Limit, OrderStatus, OrderType, Side

pytestmark = pytest.mark.timeout(120)

OWN, OTHER = 1, 2  # the trader's and viewer's account; another client's
SIGNALED = 2  # the publisher's strategy (no order of the matrix is of it)
TARGETS = (OWN, OTHER, ANY_ID)
KEYED = ("admin", "trader", "viewer", "publisher")  # roles the commands socket lets in
SILENT = ("gateway", "writer", "unknown", "keyless")  # no handshake on the commands socket

# kind -> outcome per keyed role, each three letters: own account, other account, ANY_ID.
# HELLO's "ANY_ID" is an empty account list (every account the key may use); a HEARTBEAT
# names no account. A SIGNAL carries the publisher's strategy; a publisher has no accounts.
#                       admin   trader  viewer  publisher
POLICY: dict[str, tuple[str, str, str, str]] = {
    "HELLO":             ("AAA", "ARA", "ARA", "RRA"),
    "HEARTBEAT":         ("AAA", "AAA", "AAA", "AAA"),
    "NEW_ORDER":         ("AAR", "AUU", "UUU", "UUU"),
    "CANCEL":            ("AAR", "AUU", "UUU", "UUU"),
    "REPLACE":           ("AAR", "AUU", "UUU", "UUU"),
    "MASS_CANCEL":       ("AAA", "AUU", "UUU", "UUU"),
    "NEW_BRACKET":       ("AAR", "AUU", "UUU", "UUU"),
    "NEW_OCO":           ("AAR", "AUU", "UUU", "UUU"),
    "SIGNAL":            ("AAA", "AUU", "UUU", "AAA"),
    "ADMIN KILL":        ("AAR", "UUU", "UUU", "UUU"),
    "ADMIN RESUME":      ("AAR", "UUU", "UUU", "UUU"),
    "ADMIN SET_LIMIT":   ("AAR", "UUU", "UUU", "UUU"),
    "ADMIN STRATEGY_OFF": ("AAA", "UUU", "UUU", "UUU"),
    "ADMIN STRATEGY_ON": ("AAA", "UUU", "UUU", "UUU"),
    "QUERY ORDERS":      ("AAA", "AUU", "AUU", "UUU"),
    "QUERY OPEN_ORDERS": ("AAA", "AUU", "AUU", "UUU"),
    "QUERY ORDER":       ("AAA", "AUU", "AUU", "UUU"),
    "QUERY POSITIONS":   ("AAA", "AUU", "AUU", "UUU"),
    "QUERY BALANCES":    ("AAA", "AUU", "AUU", "UUU"),
    "QUERY LIMITS":      ("AAA", "AUU", "AUU", "UUU"),
    "QUERY ACCOUNT":     ("AAA", "AUU", "AUU", "UUU"),
    "QUERY GATEWAYS":    ("AAA", "AUU", "AUU", "UUU"),
    "QUERY ALERTS":      ("AAA", "AUU", "AUU", "UUU"),
}


def test_the_policy_names_every_client_command_kind() -> None:
    kinds = {k.split()[0] for k in POLICY}
    assert kinds == {m.name for m in MsgType if m < 64}
    assert {k.split()[1] for k in POLICY if k.startswith("ADMIN ")} == {
        a.name for a in AdminAction}
    assert {k.split()[1] for k in POLICY if k.startswith("QUERY ")} == {
        q.name for q in QueryKind}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EngineProcess, Any]]:
    tmp = tmp_path_factory.mktemp("matrix")
    cfg = base_config(tmp, "ipc", security=True, heartbeat_ms=600_000)
    cfg["security"]["users"] = {
        "admin": {"role": "admin"},
        "trader": {"role": "trader", "clients": [f"account{OWN}"]},
        "bob": {"role": "trader", "clients": [f"account{OTHER}"]},
        "viewer": {"role": "viewer", "clients": [f"account{OWN}"]},
        "publisher": {"role": "publisher", "strategies": [f"strategy{SIGNALED}"]}}
    for client in cfg["clients"].values():
        client["cash"] = {"USDT": "1000000"}
    cfg["strategies"][f"strategy{SIGNALED}"] = {"instruments": ["BTCUSDT"]}
    cfg["ids"]["strategies"][f"strategy{SIGNALED}"] = SIGNALED
    for account in (OWN, OTHER):
        cfg["clients"][f"account{account}"]["strategies"].append(f"strategy{SIGNALED}")
    curve = write_keys(cfg)
    curve["gateway"] = curve["gateway-exchange1"]  # the venue accounts of exchange1: 1, 2, 3
    unknown = generate_keypair()  # a key pair nobody registered
    curve["unknown"] = CurveClientKeys(unknown.public, unknown.secret,
                                       curve["admin"].server_public)
    with EngineProcess(cfg, tmp) as e:
        yield e, curve


class Raw:
    """A DEALER on the commands socket that sends one record and classifies the answer."""

    def __init__(self, ctx: zmq.Context, endpoint: str, keys: CurveClientKeys | None) -> None:
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        if keys is not None:
            keys.apply(self.sock)
        self.sock.connect(endpoint)
        self.rid = 0

    def send(self, name: str, block: bool = True, **fields: Any) -> int:
        self.rid += 1
        self.sock.send(wire.encode(name, self.rid, 0, time.time_ns(), 0, **fields),
                       0 if block else zmq.NOBLOCK)
        return self.rid

    def outcome(self, name: str, **fields: Any) -> str:
        rid = self.send(name, **fields)
        end = time.monotonic() + 3
        while time.monotonic() < end:
            if not self.sock.poll(100):
                continue
            for r in wire.decode_frame(self.sock.recv()):
                if r.request_id != rid or r.flags & HeaderFlag.QUERY_ROW:
                    continue  # an event, or a row before the result
                if r.msg_type == MsgType.PROTOCOL_ERROR:
                    assert r.error == WireError.UNAUTHORIZED, r
                    return "U"
                if r.msg_type in (MsgType.ACK, MsgType.HEARTBEAT):
                    return "A"
                if r.msg_type == MsgType.QUERY_RESULT:
                    return "A" if r.code == 0 else "R"
                if r.msg_type == MsgType.REJECT:
                    return "R"
        return "-"


def _records(kind: str, account: int, order_id: int, cid: int) -> tuple[str, dict[str, Any]]:
    """The record of ``kind`` naming ``account`` (``order_id``: an open order of it)."""
    name, _, sub = kind.partition(" ")
    common = {"account": account, "strategy": 1, "instrument": 1}
    if name == "HELLO":
        accts = () if account == ANY_ID else (account,)
        return name, {"accounts": accts, "n_accounts": len(accts), "heartbeat_ms": 600_000}
    if name == "HEARTBEAT":
        return name, {}
    if name == "NEW_ORDER":
        return name, {**common, "client_order_id": cid, "price": 4_999_000, "quantity": 5,
                      "side": int(Side.BUY), "order_type": int(OrderType.LIMIT), "tif": 1}
    if name == "CANCEL":
        return name, {"account": account, "order_id": order_id}
    if name == "REPLACE":
        return name, {"account": account, "order_id": order_id, "price": 4_998_000}
    if name == "MASS_CANCEL":
        return name, {**common, "strategy": ANY_ID, "instrument": ANY_ID, "side": 0}
    if name == "NEW_BRACKET":
        return name, {**common, "entry_client_order_id": cid, "tp_client_order_id": cid + 1,
                      "sl_client_order_id": cid + 2, "entry_price": 4_999_000, "quantity": 5,
                      "tp_price": 5_100_000, "sl_trigger_price": 4_900_000,
                      "side": int(Side.BUY), "entry_type": int(OrderType.LIMIT), "tif": 1}
    if name == "NEW_OCO":
        return name, {**common, "a_client_order_id": cid, "b_client_order_id": cid + 1,
                      "quantity": 5, "a_price": 5_100_000, "b_trigger_price": 4_850_000,
                      "side": int(Side.SELL), "a_type": int(OrderType.LIMIT),
                      "b_type": int(OrderType.STOP_MARKET), "tif": 1}
    if name == "SIGNAL":  # DIRECTION flat: no order needed
        return name, {**common, "strategy": SIGNALED, "value": 0, "mode": 1}
    if name == "ADMIN":
        action = AdminAction[sub]
        body: dict[str, Any] = {"action": int(action), "account": account, "strategy": 1}
        if action in (AdminAction.KILL, AdminAction.RESUME):
            body |= {"scope": int(Scope.ACCOUNT), "kill_mode": int(KillMode.HALT)
                     if action == AdminAction.KILL else 0}
        elif action == AdminAction.SET_LIMIT:
            body |= {"limit": int(Limit.MAX_OPEN_ORDERS), "value": 10_000_000}
        return name, body
    assert name == "QUERY"
    return name, {**common, "kind": int(QueryKind[sub]), "strategy": ANY_ID,
                  "instrument": ANY_ID, "order_id": 0 if sub == "ALERTS" else order_id}


def test_every_role_against_every_command_kind(engine: tuple[EngineProcess, Any]) -> None:
    e, keys = engine
    ep = e.endpoints["client"]
    ctx = zmq.Context()
    try:
        admin = Raw(ctx, ep, keys["admin"])
        keyed = {role: Raw(ctx, ep, keys[role]) for role in KEYED}
        got: dict[str, list[str]] = {}
        cid = 1_000
        gw = ctx.socket(zmq.PUSH)  # to acknowledge the orders a REPLACE names
        gw.setsockopt(zmq.LINGER, 0)
        keys["gateway"].apply(gw)
        gw.connect(e.endpoints["gateway_events"])
        for kind in POLICY:
            row = []
            for role in KEYED:
                cell = ""
                for target in TARGETS:
                    order_id = 0
                    if kind in ("CANCEL", "REPLACE", "QUERY ORDER"):
                        # a fresh open order of the target account (of OWN for ANY_ID)
                        cid += 10
                        order_id = _order_id(admin, admin.send(
                            "NEW_ORDER", account=target if target != ANY_ID else OWN,
                            strategy=1, instrument=1, client_order_id=cid, price=4_990_000,
                            quantity=1, side=int(Side.BUY), order_type=int(OrderType.LIMIT),
                            tif=1))
                        if kind == "REPLACE":  # only an order the venue holds is amended
                            _venue_ack(gw, admin, order_id, target if target != ANY_ID
                                       else OWN)
                    cid += 10
                    name, fields = _records(kind, target, order_id, cid)
                    cell += keyed[role].outcome(name, **fields)
                row.append(cell)
            got[kind] = row
        wrong = {k: row for k, row in got.items() if tuple(row) != POLICY[k]}
        assert not wrong, wrong
        # a publisher's SIGNAL of a strategy not its own
        assert keyed["publisher"].outcome("SIGNAL", account=OWN, strategy=1, instrument=1,
                                          value=0, mode=1) == "U"

        # the roles the commands socket does not let in: every kind, every account, nothing
        silent = {role: Raw(ctx, ep, None if role == "keyless" else keys[role])
                  for role in SILENT}
        for raw in silent.values():
            for kind in POLICY:
                for target in TARGETS:
                    cid += 10
                    name, fields = _records(kind, target, 1, cid)
                    try:  # a refused handshake leaves no peer: a blocking send waits forever
                        raw.send(name, block=False, **fields)
                    except zmq.Again:
                        pass  # not even queued: nothing reaches the engine
        poller = zmq.Poller()
        for raw in silent.values():
            poller.register(raw.sock, zmq.POLLIN)
        assert not poller.poll(1000)  # an answer takes a millisecond: none comes
        for raw in silent.values():
            raw.sock.close()
        for r in keyed.values():
            r.sock.close()
        admin.sock.close()
    finally:
        ctx.destroy(0)
    with OmsClient(ep, curve=keys["admin"], timeout=5) as adm:
        assert adm.mass_cancel(account=ANY_ID).ok


def _venue_ack(gw: zmq.Socket, admin: Raw, order_id: int, account: int) -> None:
    gw.send(wire.encode("GW_EXEC_REPORT", 0, order_id, time.time_ns(), order_id=order_id,
                        exec_type=int(ExecType.ACK), account=account, instrument=1))
    end = time.monotonic() + 3
    while time.monotonic() < end:
        rid = admin.send("QUERY", kind=int(QueryKind.ORDER), account=account, strategy=ANY_ID,
                         instrument=ANY_ID, order_id=order_id)
        while admin.sock.poll(200):
            for r in wire.decode_frame(admin.sock.recv()):
                if (r.request_id == rid and r.msg_type == MsgType.ORDER_UPDATE
                        and r.status == OrderStatus.NEW):
                    return
    raise TimeoutError("the venue's ACK was not applied")


def _order_id(raw: Raw, rid: int) -> int:
    end = time.monotonic() + 3
    while time.monotonic() < end:
        if raw.sock.poll(100):
            for r in wire.decode_frame(raw.sock.recv()):
                if r.request_id == rid and r.msg_type == MsgType.ACK:
                    return int(r.order_id)
                assert not (r.request_id == rid and r.msg_type == MsgType.REJECT), r
    raise TimeoutError("the admin's order was not acknowledged")


def _foreign(rows: list[Any]) -> list[Any]:
    """The rows of an account not OWN (the global and strategy kill switches, above every
    account, aside)."""
    return [r for r in rows if getattr(r, "account", OWN) != OWN and not (
        r.msg_type == MsgType.KILL_STATE and r.scope != Scope.ACCOUNT)]


def _rows(c: OmsClient, kind: QueryKind, **kw: Any) -> list[Any]:
    res = c.query(kind, account=OWN, **kw)
    assert res.ok, res
    return list(res.rows)


def test_a_client_cannot_see_or_touch_another_clients_orders_positions_or_balances(
        engine: tuple[EngineProcess, Any]) -> None:
    """The trader names its own account and bob's order id, or ANY_ID: bob's order stays
    open and unseen, bob's position and balances never show; only its own rows come back."""
    e, keys = engine
    ep = e.endpoints["client"]
    ctx = zmq.Context()
    try:
        with OmsClient(ep, account=OTHER, strategy=1, curve=keys["bob"], timeout=5) as bob, \
                OmsClient(ep, account=OWN, strategy=1, curve=keys["trader"], timeout=5) as a:
            mine = a.submit(1, Side.BUY, 7, 4_995_000)
            theirs = bob.submit(1, Side.BUY, 9, 4_996_000)
            filled = bob.submit(1, Side.BUY, 11, 4_997_000)
            assert mine.ok and theirs.ok and filled.ok
            gw = ctx.socket(zmq.PUSH)  # bob's venue fills one of his orders: a position
            gw.setsockopt(zmq.LINGER, 0)
            keys["gateway"].apply(gw)
            gw.connect(e.endpoints["gateway_events"])
            for seq, et in enumerate((ExecType.ACK, ExecType.FILL), 1):
                gw.send(wire.encode("GW_EXEC_REPORT", 0, seq, time.time_ns(),
                                    order_id=filled.order_id, exec_type=int(et), trade_id=9,
                                    last_qty=11 if et == ExecType.FILL else 0,
                                    last_price=4_997_000, fee_asset=2, account=OTHER,
                                    instrument=1, liquidity=1))
            end = time.monotonic() + 5
            while time.monotonic() < end and not any(
                    r.quantity for r in bob.positions().rows):
                time.sleep(0.05)
            assert any(r.quantity == 11 for r in bob.positions().rows)

            # see: no row of bob's, whichever own-account query; ANY_ID and his account refused
            for kind in (QueryKind.ORDERS, QueryKind.OPEN_ORDERS, QueryKind.POSITIONS,
                         QueryKind.BALANCES, QueryKind.LIMITS, QueryKind.ACCOUNT,
                         QueryKind.ALERTS):
                rows = _rows(a, kind)
                assert rows or kind in (QueryKind.ALERTS, QueryKind.OPEN_ORDERS), kind
                assert not _foreign(rows), (kind, _foreign(rows))
                for account in (OTHER, ANY_ID):
                    with pytest.raises(ProtocolError) as exc:
                        a.query(kind, account=account)
                    assert exc.value.error == WireError.UNAUTHORIZED
            assert mine.order_id in {r.order_id for r in _rows(a, QueryKind.ORDERS)}
            assert not {theirs.order_id, filled.order_id} & {
                r.order_id for r in _rows(a, QueryKind.ORDERS)}
            assert not any(r.quantity for r in _rows(a, QueryKind.POSITIONS))
            one = a.query(QueryKind.ORDER, account=OWN, order_id=theirs.order_id)
            assert not one.ok and not one.rows

            # touch: bob's order named under the trader's own account is not found
            assert not a.cancel(theirs.order_id, account=OWN).ok
            assert not a.replace(theirs.order_id, price=4_990_000, account=OWN).ok
            assert a.mass_cancel(account=OWN).ok
            for call in (lambda: a.cancel(theirs.order_id, account=OTHER),
                         lambda: a.replace(theirs.order_id, price=4_990_000, account=OTHER),
                         lambda: a.mass_cancel(account=OTHER),
                         lambda: a.mass_cancel(account=ANY_ID)):
                with pytest.raises(ProtocolError):
                    call()
            o = {r.order_id: r for r in bob.orders(open_only=False).rows}[theirs.order_id]
            assert (o.status, o.price, o.quantity) == (OrderStatus.PENDING_NEW, 4_996_000, 9)
            assert {r.order_id: r for r in a.orders(open_only=False).rows}[
                mine.order_id].status in (OrderStatus.PENDING_CANCEL, OrderStatus.CANCELED)
            # and no event of bob's account reached the trader
            assert not [ev for ev in a.events(0.2) if getattr(ev, "account", OWN) != OWN]
            assert bob.cancel(theirs.order_id).ok
            gw.close()
    finally:
        ctx.destroy(0)
