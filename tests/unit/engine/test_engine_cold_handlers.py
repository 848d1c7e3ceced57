"""The loop's table of cold handlers: each input kind the loop does not decode itself has one
registered handler answering a ColdAnswer; reconciliation's kinds are registered at engine
construction, so a replay without recover_engine applies them the same."""

from __future__ import annotations

import pytest
from minimal_engine import engine_config

from bindings.wire import records as wire
from bindings.wire.spec import AdminAction, MsgType, Scope
from oms_core import recovery as R
from oms_core.engine import Engine, build_core
from oms_core.engine.kinds import (
    KIND_ADMIN_OVERRIDE,
    KIND_RECON_ALERT,
    KIND_RECON_BALANCE,
    KIND_RECON_DONE,
    KIND_TIMER,
)
from oms_core.engine.loop import ColdAnswer, EngineLoop
from oms_core.engine.reconcile import GATE_MARK
from oms_core.enums import KillMode


def _engine() -> Engine:
    cfg = engine_config()
    return Engine(build_core(cfg), config=cfg)


def test_the_engine_registers_its_cold_kinds_and_reconciliations() -> None:
    e = _engine()
    assert e.loop.cold_kinds() == sorted(int(k) for k in (
        MsgType.MASS_CANCEL, MsgType.NEW_BRACKET, MsgType.NEW_OCO, MsgType.SIGNAL,
        MsgType.ADMIN, KIND_RECON_DONE, KIND_ADMIN_OVERRIDE, KIND_RECON_ALERT,
        KIND_RECON_BALANCE))


def test_a_kind_is_registered_once_and_never_one_the_loop_applies_itself() -> None:
    e = _engine()
    with pytest.raises(ValueError, match="already has a cold handler"):
        e.loop.register_cold(int(MsgType.ADMIN), lambda ts, payload: ColdAnswer())
    with pytest.raises(ValueError, match="applied by the loop itself"):
        e.loop.register_cold(int(MsgType.NEW_ORDER), lambda ts, payload: ColdAnswer())
    with pytest.raises(ValueError, match="applied by the loop itself"):
        e.loop.register_cold(KIND_TIMER, lambda ts, payload: None)
    with pytest.raises(ValueError, match="already has an applied hook"):
        e.loop.on_cold_applied(int(MsgType.ADMIN), lambda ts, payload, answer: None)


def test_a_handler_answer_is_typed_and_acked_or_rejected() -> None:
    loop = EngineLoop(build_core(engine_config()), 2)
    seen = []
    loop.register_cold(int(MsgType.MASS_CANCEL),
                       lambda ts, payload: ColdAnswer(0, 7, 8, 9, 5, 1))
    loop.register_cold(int(MsgType.NEW_OCO), lambda ts, payload: (1, 2, 3, 4, 5, 6))
    loop.on_cold_applied(int(MsgType.MASS_CANCEL), lambda ts, p, a: seen.append((ts, a)))
    loop.begin(3, (1 << 64) - 1, 0, False)
    loop.on_client_frame(wire.encode("MASS_CANCEL", 11, 11, 0, account=1,
                                     strategy=0xFFFFFFFF, instrument=0xFFFFFFFF), 42)
    (ack,) = [r for f in loop.reply.frames() for r in wire.decode_frame(f)
              if r.msg_type == MsgType.ACK]
    assert (ack.order_id, ack.leg2_order_id, ack.leg3_order_id, ack.request_id) == (7, 8, 9, 11)
    assert seen == [(42, ColdAnswer(0, 7, 8, 9, 5, 1))]
    # an unnamed tuple is no answer
    loop.begin(3, (1 << 64) - 1, 0, False)
    with pytest.raises(TypeError):
        loop.on_client_frame(wire.encode("NEW_OCO", 12, 12, 0, account=1), 43)
    # a cold client kind nobody registered is rejected, not lost
    loop.begin(3, (1 << 64) - 1, 0, False)
    loop.on_client_frame(wire.encode("NEW_BRACKET", 13, 13, 0, account=1), 44)
    (rej,) = [r for f in loop.reply.frames() for r in wire.decode_frame(f)
              if r.msg_type == MsgType.REJECT]
    assert rej.request_id == 13 and rej.code != 0


def test_reconciliation_kinds_replay_in_a_plain_engine_and_admin_is_observed() -> None:
    live, fresh = _engine(), _engine()
    alert = R.alert_record(1, 1, 0, R.RECON_MISSED_FILL, 5, 100)
    balance = R.balance_record(2, 2, 12_345)
    kill = wire.encode("ADMIN", 0, 0, 101, 0, action=int(AdminAction.KILL),
                       scope=int(Scope.GLOBAL), kill_mode=int(KillMode.HALT), value=GATE_MARK)
    inputs = [(KIND_RECON_ALERT, 100, alert), (KIND_RECON_BALANCE, 100, balance),
              (KIND_RECON_DONE, 100, b"{}"), (KIND_ADMIN_OVERRIDE, 100, b"{}"),
              (int(MsgType.ADMIN), 101, kill)]
    for kind, ts, payload in inputs:
        live.loop.apply_input(kind, ts, payload, False)
        live.loop.commit()
    assert live.core.balance(2, 2)[0] == 12_345
    assert live.recon.gate_owned and live.core.risk.global_kill != 0
    fresh.replay(inputs)  # no recover_engine: the handlers were there from construction
    # RISK_ALERT, BALANCE_UPDATE, KILL_STATE and the ADMIN command's ACK
    assert fresh.loop.seq == live.loop.seq == 4
    assert fresh.core.balance(2, 2) == live.core.balance(2, 2)
    assert fresh.recon.gate_owned
