"""The audit trail of the real engine process over real sockets: every command leaves one
AUDIT event in the journal naming the key that sent it, its role and how it was answered
(refused ones included), and a replay of the journal gives those events the same sequence."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from bindings.client import OmsClient, ProtocolError
from bindings.security import Role
from bindings.wire import records as wire
from bindings.wire.spec import ANY_ID, AuditOutcome, MsgType, QueryKind, Scope, WireError
from oms_core.engine import Engine, build_core
from oms_core.engine.process import EngineProcess, base_config, write_keys
from oms_core.enums import KillMode, Reject, Side
from oms_core.journal import INPUT, JournalReader

pytestmark = pytest.mark.timeout(60)


def _journal(jdir: Path) -> tuple[list[Any], list[Any]]:
    inputs, events = [], []
    for r in JournalReader(str(jdir)):
        (inputs if r.rtype == INPUT else events).append(r)
    return inputs, events


def _audit(events: list[Any]) -> list[Any]:
    out = []
    for r in events:
        rec = wire.decode(r.payload)
        if rec.msg_type == MsgType.AUDIT:
            out.append(rec)
    return out


def _who(rec: Any) -> str:
    return bytes(rec.sender).rstrip(b"\0").decode()


def _row(rec: Any) -> tuple[str, str, str, str, int]:
    return (_who(rec), Role(rec.role).name, MsgType(rec.cmd_type).name,
            AuditOutcome(rec.outcome).name, rec.account)


def test_every_command_is_audited_with_the_key_that_sent_it(tmp_path: Path) -> None:
    cfg = base_config(tmp_path, "tcp", security=True)
    cfg["security"]["users"] = {"alice-desk": {"role": "trader", "clients": ["account1"]},
                                "bob-desk": {"role": "trader", "clients": ["account2"]},
                                "ops": {"role": "admin"}}
    keys = write_keys(cfg)
    jdir = tmp_path / "journal"
    with EngineProcess(cfg, tmp_path, extra_args=("--journal", str(jdir))) as e:
        ep = e.endpoints["client"]
        with OmsClient(ep, account=1, strategy=1, curve=keys["alice-desk"], timeout=5) as a, \
                OmsClient(ep, account=2, strategy=1, curve=keys["bob-desk"], timeout=5) as b, \
                OmsClient(ep, account=1, curve=keys["ops"], timeout=5) as ops:
            assert a.hello([1]).ok
            placed = a.submit(1, Side.BUY, 5, 4_999_000, client_order_id=77)
            assert placed.ok
            with pytest.raises(ProtocolError):  # bob's key on alice's account
                b.cancel(placed.order_id, account=1)
            too_small = a.submit(1, Side.BUY, 0, 4_999_000)
            assert not too_small.ok
            assert a.cancel(placed.order_id).ok
            assert a.orders(account=1).ok  # queries are not audited unless configured
            assert ops.kill(Scope.ACCOUNT, KillMode.HALT, account=1).ok
            assert ops.resume(Scope.ACCOUNT, account=1).ok
        assert e.stop() == 0
    inputs, events = _journal(jdir)
    audit = _audit(events)
    assert [_row(r) for r in audit] == [
        ("alice-desk", "TRADER", "HELLO", "ACK", ANY_ID),
        ("alice-desk", "TRADER", "NEW_ORDER", "ACK", 1),
        ("bob-desk", "TRADER", "CANCEL", "REFUSED", 1),
        ("alice-desk", "TRADER", "NEW_ORDER", "REJECT", 1),
        ("alice-desk", "TRADER", "CANCEL", "ACK", 1),
        ("ops", "ADMIN", "ADMIN", "ACK", 1),
        ("ops", "ADMIN", "ADMIN", "ACK", 1),
    ]
    new, refused, rejected, cancel, kill, resume = audit[1:]
    assert (new.order_id, new.client_order_id, new.strategy, new.instrument) == (
        placed.order_id, 77, 1, 1)
    assert (refused.code, refused.order_id) == (WireError.UNAUTHORIZED, placed.order_id)
    assert rejected.code == Reject.INVALID_QUANTITY
    assert (cancel.order_id, cancel.client_order_id) == (placed.order_id, 77)
    assert (kill.action, resume.action) == (1, 2)  # AdminAction KILL, RESUME
    assert all(r.event_ns > 0 and r.request_id > 0 for r in audit)
    # one event sequence, gap free, audit records included; a replay gives the same
    seqs = [wire.decode(r.payload).seq for r in events]
    assert seqs == list(range(1, len(seqs) + 1))
    ecfg = e.engine_config()
    fresh = Engine(build_core(ecfg), config=ecfg)
    fresh.replay((r.kind, r.ts, r.payload) for r in inputs)
    assert fresh.loop.seq == seqs[-1]


def test_without_security_the_sender_is_a_stand_in_and_queries_can_be_audited(
        tmp_path: Path) -> None:
    """Security off: the stand-in sender; QUERY audited when configured; the engine's own
    cancel-on-disconnect and its restart gate audited as the engine's."""
    jdir = tmp_path / "journal"
    cfg = base_config(tmp_path, "ipc", audit_queries=True)
    with EngineProcess(cfg, tmp_path, extra_args=("--journal", str(jdir))) as e:
        with OmsClient(e.endpoints["client"], account=2, strategy=1, timeout=5) as c:
            assert c.submit(1, Side.BUY, 5, 4_999_000).ok
            assert c.query(QueryKind.POSITIONS, account=2).ok
            assert c.mass_cancel(account=2).ok
        # account 1 cancels on disconnect: a HELLO session that goes silent
        with OmsClient(e.endpoints["client"], account=1, strategy=1, timeout=5) as c:
            assert c.hello([1], heartbeat_ms=50).ok
            oid = c.submit(1, Side.BUY, 5, 4_999_000).order_id
        assert oid

        def engine_rows() -> list[Any]:  # read beside the running engine
            return [r for r in _audit(_journal(jdir)[1]) if _who(r) == "(engine)"]

        deadline = time.monotonic() + 10
        while not engine_rows() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert e.stop() == 0
        assert e.stats()["cod_mass_cancels"] == 1
    _, events = _journal(jdir)
    assert [_row(r) for r in _audit(events)] == [
        ("(insecure)", "ADMIN", "NEW_ORDER", "ACK", 2),
        ("(insecure)", "ADMIN", "QUERY", "ACK", 2),
        ("(insecure)", "ADMIN", "MASS_CANCEL", "ACK", 2),
        ("(insecure)", "ADMIN", "HELLO", "ACK", ANY_ID),
        ("(insecure)", "ADMIN", "NEW_ORDER", "ACK", 1),
        ("(engine)", "ADMIN", "MASS_CANCEL", "ACK", 1),
    ]


@pytest.mark.slow
def test_the_restart_gate_is_audited_as_the_engines(tmp_path: Path) -> None:
    """A restart from a non-empty journal gates trading with a global KILL of its own (no
    gateway answers the reconciliation here: ~10 s): audited as (engine), on every account."""
    jdir = tmp_path / "journal"
    cfg = base_config(tmp_path, "ipc")
    with EngineProcess(cfg, tmp_path, extra_args=("--journal", str(jdir))) as e:
        with OmsClient(e.endpoints["client"], account=2, strategy=1, timeout=5) as c:
            assert c.submit(1, Side.BUY, 5, 4_999_000).ok
        assert e.stop() == 0
    with EngineProcess(cfg, tmp_path, extra_args=("--journal", str(jdir))) as e:
        assert e.stop() == 0
    audit = _audit(_journal(jdir)[1])
    assert [_row(r) for r in audit] == [
        ("(insecure)", "ADMIN", "NEW_ORDER", "ACK", 2),
        ("(engine)", "ADMIN", "ADMIN", "ACK", ANY_ID),
    ]
    assert audit[-1].action == 1  # KILL
