"""The engine loop without sockets: journal-before-answer, replay determinism, frame cutting."""

from __future__ import annotations

import time

from minimal_engine import engine_config

from bindings.wire import records as wire
from bindings.wire.spec import ExecType, MsgType
from oms_core.engine import KIND_AUDIT, Engine, MemoryJournal, build_core


def _engine(journal: MemoryJournal | None = None) -> Engine:
    cfg = engine_config()
    return Engine(build_core(cfg), journal=journal, config=cfg)


def _order(rid: int, cl: int, qty: int = 10, price: int = 4_999_000, side: int = 1,
           account: int = 1) -> bytes:
    return wire.encode("NEW_ORDER", rid, rid, 0, client_order_id=cl, price=price,
                       quantity=qty, account=account, strategy=1, instrument=1, side=side,
                       order_type=2, tif=1)


def _live(e: Engine, frame: bytes, gateway: bool = False) -> list:
    lp = e.loop
    lp.begin(3, (1 << 64) - 1, 0b110, False)
    ts = time.time_ns()
    if gateway:
        lp.on_gateway_frame(frame, ts)
    else:
        lp.on_client_frame(frame, ts)
    lp.commit()
    return [r for f in lp.reply.frames() for r in wire.decode_frame(f)]


def _state(e: Engine) -> tuple:
    core = e.core
    orders = [core.order(oid) for oid in range(1, 1 << 20) if core.order(oid)] if False else []
    q = e.loop
    q.begin(3, (1 << 64) - 1, 0, False)
    q.on_client_frame(wire.encode("QUERY", 1, 1, 0, kind=7, account=0xFFFFFFFF,
                                  strategy=0xFFFFFFFF, instrument=0xFFFFFFFF), 0)
    rows = [r._replace(send_ns=0, event_ns=0) if hasattr(r, "event_ns") else r._replace(
        send_ns=0) for f in q.reply.frames() for r in wire.decode_frame(f)]
    return (tuple(rows), tuple(orders), q.seq, core.position(1, 1), core.balance(1, 2),
            core.account_state(1))


def test_journal_then_replay_gives_the_same_state() -> None:
    j = MemoryJournal()
    e = _engine(j)
    fb = wire.FrameBuilder(1 << 20)
    for i in range(300):
        fb.add_fields("NEW_ORDER", i + 1, i + 1, 0, client_order_id=i + 1,
                      price=4_990_000 - (i % 7), quantity=10 + i % 5, account=1 + i % 2,
                      strategy=1, instrument=1, side=1, order_type=2, tif=1)
    answers = _live(e, fb.tobytes())
    assert sum(r.msg_type == MsgType.ACK for r in answers) == 300
    # each command is journaled with its AUDIT record (KIND_AUDIT) right after it
    kinds = [k for k, _, _ in j.inputs]
    assert kinds == [MsgType.NEW_ORDER, KIND_AUDIT] * 300
    assert j.committed_inputs == 600 and j.committed_events == len(j.events)
    first = next(r.order_id for r in answers if r.msg_type == MsgType.ACK)
    reports = b"".join(wire.encode("GW_EXEC_REPORT", 0, k, 0, **f) for k, f in enumerate([
        dict(order_id=first, exec_type=ExecType.ACK),
        dict(order_id=first, exec_type=ExecType.FILL, trade_id=1, last_qty=4,
             last_price=4_990_000, fee=3, fee_asset=2, liquidity=1),
        dict(order_id=first, exec_type=ExecType.FILL, trade_id=1, last_qty=4,
             last_price=4_990_000, fee=3, fee_asset=2, liquidity=1),  # duplicate
    ]))
    _live(e, reports, gateway=True)
    _live(e, wire.encode("MASS_CANCEL", 900, 900, 0, account=2, strategy=0xFFFFFFFF,
                         instrument=0xFFFFFFFF))
    _live(e, wire.encode("SIGNAL", 901, 901, 0, value=-1, price=5_010_000, account=0xFFFFFFFF,
                         strategy=1, instrument=1, mode=1))
    _live(e, wire.encode("GW_MARKET_DATA", 0, 1, 0, bid=4_995_000, ask=4_996_000,
                         last=4_995_500, instrument=1), gateway=True)
    e.loop.apply_input(193, time.time_ns(), b"", False)  # mark to market, live
    e.loop.commit()
    assert e.core.position(1, 1)["qty"] == 4
    # events carry a gap-free sequence, journaled in order
    seqs = [wire.decode(ev).seq for ev in j.events]
    assert seqs == list(range(1, len(seqs) + 1)) and e.loop.seq == seqs[-1]
    # a fresh engine replaying the journal's inputs reaches the same state, silently
    r = _engine()
    assert r.replay(j.inputs) == len(j.inputs)
    assert _state(r) == _state(e)


def test_answers_are_cut_into_valid_frames() -> None:
    e = _engine()
    fb = wire.FrameBuilder(1 << 20)
    for i in range(4000):  # 4000 ACKs + 4000 ORDER_UPDATEs: more than 4096 records
        fb.add_fields("NEW_ORDER", i + 1, i + 1, 0, client_order_id=i + 1, price=4_990_000,
                      quantity=1, account=1, strategy=1, instrument=1, side=1,
                      order_type=2, tif=1)
    e.loop.begin(3, (1 << 64) - 1, 0b10, False)
    e.loop.on_client_frame(fb.tobytes(), 1)
    frames = e.loop.reply.frames()
    assert len(frames) == 2
    recs = [r for f in frames for r in wire.decode_frame(f)]
    assert len(recs) == 8000
    assert [r.request_id for r in recs if r.msg_type == MsgType.ACK] == list(range(1, 4001))
    gw = e.loop.gateway_frames()
    assert gw[0][0] == 1 and sum(len(wire.decode_frame(f)) for f in gw[0][1]) == 4000


def test_retry_answers_original_and_never_inserts_twice() -> None:
    e = _engine()
    (ack1, _) = [r for r in _live(e, _order(1, 42)) if r.msg_type == MsgType.ACK] + [None]
    again = _live(e, _order(2, 42))
    assert again[0].msg_type == MsgType.ACK and again[0].order_id == ack1.order_id
    other = _live(e, _order(3, 42, qty=11))
    assert other[0].msg_type == MsgType.REJECT and other[0].code == 30
    assert e.core.open_order_count() == 1
