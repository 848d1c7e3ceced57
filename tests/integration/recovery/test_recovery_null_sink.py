"""Recovery and tools drive the real EngineLoop (through a null sink): a tool's replay gives
what the live loop gave, in the cases a replay path of its own would get wrong (replace with
price / quantity 0, a venue reject's reason, signals and reconciliation inputs)."""

from __future__ import annotations

import time

from minimal_engine import engine_config

from bindings.wire import records as wire
from bindings.wire.spec import ExecType, MsgType
from oms_core import recovery as R
from oms_core.engine import Engine, build_core
from oms_core.enums import Reject
from oms_core.journal import Journal


def _live(jdir: str) -> Engine:
    cfg = engine_config()
    return Engine(build_core(cfg), journal=Journal(jdir, durability="os"), config=cfg)


def _send(e: Engine, record: bytes, gateway: bool = False) -> list:
    """One frame through the live loop (journaled, committed); its answers."""
    lp = e.loop
    lp.begin(3, (1 << 64) - 1, 0b110, False)
    if gateway:
        lp.on_gateway_frame(record, time.time_ns())
    else:
        lp.on_client_frame(record, time.time_ns())
    lp.commit()
    return [r for f in lp.reply.frames() for r in wire.decode_frame(f)]


def _resting_order(e: Engine, cl: int = 1) -> int:
    (ack,) = [r for r in _send(e, wire.encode(
        "NEW_ORDER", cl, cl, 0, client_order_id=cl, price=4_990_000, quantity=1000,
        account=1, strategy=1, instrument=1, side=1, order_type=2, tif=1))
        if r.msg_type == MsgType.ACK]
    _send(e, wire.encode("GW_EXEC_REPORT", 0, 1, 0, order_id=ack.order_id,
                         exec_type=ExecType.ACK, account=1), gateway=True)
    return int(ack.order_id)


def _no_wall_clock(order: dict) -> dict:
    """An order without ``ts_sent``: the wall clock of the live send to the gateway, which a
    replay (no sends) does not repeat."""
    return {k: v for k, v in order.items() if k != "ts_sent"}


def _recovered(jdir: str) -> object:
    core = build_core(engine_config())
    R.recover(jdir, core)  # a tool's recovery: only a core
    return core


def test_replace_with_price_or_quantity_zero_keeps_it_in_a_replay(tmp_path) -> None:
    jdir = str(tmp_path)
    e = _live(jdir)
    oid = _resting_order(e)
    answers = _send(e, wire.encode("REPLACE", 7, 7, 0, order_id=oid, price=0, quantity=2000,
                                   account=1))
    assert [r.msg_type for r in answers if r.msg_type in (MsgType.ACK, MsgType.REJECT)] == [
        MsgType.ACK]  # price 0: keep the price
    _send(e, wire.encode("GW_EXEC_REPORT", 0, 2, 0, order_id=oid, exec_type=ExecType.REPLACED,
                         account=1), gateway=True)
    answers = _send(e, wire.encode("REPLACE", 8, 8, 0, order_id=oid, price=4_980_000,
                                   quantity=0, account=1))
    assert [r.msg_type for r in answers if r.msg_type in (MsgType.ACK, MsgType.REJECT)] == [
        MsgType.ACK]  # quantity 0: keep the quantity
    _send(e, wire.encode("GW_EXEC_REPORT", 0, 3, 0, order_id=oid, exec_type=ExecType.REPLACED,
                         account=1), gateway=True)
    live = _no_wall_clock(e.core.order(oid))
    assert (live["price"], live["qty"]) == (4_980_000, 2000)
    e.journal.close()
    assert _no_wall_clock(_recovered(jdir).order(oid)) == live


def test_a_venue_reject_keeps_the_loops_reason_in_a_replay(tmp_path) -> None:
    jdir = str(tmp_path)
    e = _live(jdir)
    oids = []
    for cl, venue_code in ((1, 0), (2, -2010)):
        (ack,) = [r for r in _send(e, wire.encode(
            "NEW_ORDER", cl, cl, 0, client_order_id=cl, price=4_990_000, quantity=1000,
            account=1, strategy=1, instrument=1, side=1, order_type=2, tif=1))
            if r.msg_type == MsgType.ACK]
        _send(e, wire.encode("GW_EXEC_REPORT", 0, cl, 0, order_id=ack.order_id,
                             exec_type=ExecType.REJECT, exch_code=venue_code, account=1),
              gateway=True)
        oids.append(int(ack.order_id))
    live = [_no_wall_clock(e.core.order(oid)) for oid in oids]
    assert [o["reason"] for o in live] == [Reject.VENUE_REJECTED] * 2
    e.journal.close()
    core = _recovered(jdir)
    assert [_no_wall_clock(core.order(oid)) for oid in oids] == live


def test_a_signal_and_reconciliation_inputs_are_replayed(tmp_path) -> None:
    jdir = str(tmp_path)
    e = _live(jdir)
    _send(e, wire.encode("SIGNAL", 9, 9, 0, value=1, price=4_990_000, account=0xFFFFFFFF,
                         strategy=1, instrument=1, mode=1))
    e.loop.apply_input(R.KIND_RECON_BALANCE, 10, R.balance_record(2, 2, 777), False)
    e.loop.commit()
    # the signal made one order per account of the strategy; the venue balance was adopted
    orders = [_no_wall_clock(e.core.order(oid)) for a in (1, 2) for oid in e.core.live_orders(a)]
    assert len(orders) == 2 and e.core.balance(2, 2)[0] == 777
    e.journal.close()
    cfg = engine_config()
    from oms_core.engine import offline_engine
    from oms_core.engine.startup import recover_engine

    fresh = offline_engine(cfg)  # signals need the strategies of the configuration
    res = recover_engine(fresh, jdir)
    assert res.replayed_event_seq == res.last_event_seq == e.loop.seq
    assert [_no_wall_clock(fresh.core.order(oid)) for a in (1, 2)
            for oid in fresh.core.live_orders(a)] == orders
    assert fresh.core.balance(2, 2) == e.core.balance(2, 2)
    # a tool with only a core replays the reconciliation input too
    assert _recovered(jdir).balance(2, 2) == e.core.balance(2, 2)
