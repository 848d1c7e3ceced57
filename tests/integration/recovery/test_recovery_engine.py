"""Crash recovery of the REAL engine process: kill -9 it at random moments while a client
pipelines orders and a gateway fills them; after every restart the state is exactly the
acknowledged history (oms_core/engine/startup.py: snapshot + replay via Engine.apply_input).
"""

from __future__ import annotations

import random
import time
from decimal import Decimal
from pathlib import Path

import pytest
import zmq
from engine_crash_fixtures import AX, PX, QX, Engine, Gateway, Trader, query, write_config

from bindings.wire import records as wire
from bindings.wire.spec import MsgType, QueryKind
from oms_core import recovery
from oms_core.engine import Engine as InProcessEngine
from oms_core.engine import build_core
from oms_core.engine.process import written_settings
from oms_core.journal import EVENT, INPUT, JournalReader

pytestmark = pytest.mark.timeout(150)


def _journal(jdir: Path) -> tuple[list[tuple[int, int, bytes]], list[bytes]]:
    inputs, events = [], []
    r = JournalReader(str(jdir))
    for rec in r:
        if rec.rtype == INPUT:
            inputs.append((rec.kind, rec.ts, rec.payload))
        elif rec.rtype == EVENT:
            events.append(rec.payload)
    r.close()
    return inputs, events


def _wait_position(ctx: zmq.Context, ep: str, gw: Gateway, timeout: float = 20.0) -> list:
    """Wait until the engine's position is the venue's (twice in a row: the venue is idle)."""
    end = time.monotonic() + timeout
    rows: list = []
    hits = 0
    while time.monotonic() < end:
        time.sleep(0.2)
        want = gw.expected()["qty"]
        rows = query(ctx, ep, int(QueryKind.POSITIONS), 99)
        qty = Decimal(rows[0].quantity) * QX if rows else Decimal(0)
        hits = hits + 1 if qty == want and not gw.pending else 0
        if hits >= 2:
            return rows
    raise AssertionError(f"position never reached the venue's {gw.expected()}: {rows}")


SNAPSHOT_EVERY = 40  # journal records; snapshots by count only, so their spacing is known


def _tail_after_newest_snapshot(jdir: Path) -> tuple[int, int, int]:
    """(newest snapshot's journal seq or 0, journal's last committed seq, inputs after it)."""
    snaps = recovery.list_snapshots(str(jdir))
    snap_seq = snaps[-1][0] if snaps else 0
    last_seq, inputs = 0, 0
    r = JournalReader(str(jdir))
    for rec in r:
        last_seq = rec.seq
        inputs += rec.seq > snap_seq and rec.rtype == INPUT
    r.close()
    return snap_seq, last_seq, inputs


def _trade_until_journal_ends_after_a_snapshot(ctx: zmq.Context, e: Engine, jdir: Path,
                                               gw: Gateway, acked: dict[int, int],
                                               next_cl: int) -> None:
    """Trade one order at a time until the idle engine's journal provably ends with inputs
    after its newest snapshot, so a kill now leaves a tail to replay.

    Snapshots are taken SNAPSHOT_EVERY records or more apart, so when the newest file is
    fewer than that before the journal's end no newer one can be in flight; a batch that
    ended exactly on a snapshot gets one more order (fewer records than SNAPSHOT_EVERY).
    """
    for _ in range(20):
        snap_seq, last_seq, inputs = _tail_after_newest_snapshot(jdir)
        if snap_seq and inputs and last_seq - snap_seq < SNAPSHOT_EVERY:
            return
        t = Trader(ctx, e.endpoints["client"], acked, next_cl, per_frame=1, window=1)
        t.pump(time.monotonic() + 10, lambda cl=next_cl: cl not in acked)
        t.close()
        assert next_cl in acked, "order not acknowledged"
        next_cl += 1
        _wait_position(ctx, e.endpoints["client"], gw)
    raise AssertionError(f"no tail after a snapshot: {_tail_after_newest_snapshot(jdir)}")


def test_recovery_replays_through_engine_and_restores_loop_state(tmp_path: Path) -> None:
    """Fast: one restart with a snapshot in the middle; the event sequence continues."""
    cfg = write_config(tmp_path)
    jdir = tmp_path / "journal"
    ctx = zmq.Context()
    e = Engine(cfg, jdir, "--snapshot-every", str(SNAPSHOT_EVERY),
               "--snapshot-seconds", "0").start()
    gw = Gateway(ctx, e.endpoints)
    gw.start()
    acked: dict[int, int] = {}
    t = Trader(ctx, e.endpoints["client"], acked, 1, per_frame=5, window=1)
    t.pump(time.monotonic() + 0.5, lambda: len(acked) < 100)
    t.close()
    _wait_position(ctx, e.endpoints["client"], gw)
    _trade_until_journal_ends_after_a_snapshot(ctx, e, jdir, gw, acked, t.next_cl)
    e.kill9()
    e2 = Engine(cfg, jdir).start()
    try:
        rec = e2.recovered
        assert rec["snapshot"] is not None and rec["inputs"] > 0
        assert rec["replayed_event_seq"] == rec["last_event_seq"] > 0
        orders = {r.order_id: r for r in query(ctx, e2.endpoints["client"], 1, 7)}
        assert all(oid in orders for oid in acked.values())
    finally:
        assert e2.stop() == 0
        gw.close()
        ctx.destroy(0)
    _, events = _journal(jdir)
    seqs = [wire.decode(p).seq for p in events]
    assert seqs == list(range(1, len(seqs) + 1))
    assert e2.stopped["seq"] == seqs[-1]


def test_trading_gate_halts_until_admin_resume(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    jdir = tmp_path / "journal"
    ctx = zmq.Context()
    e = Engine(cfg, jdir).start()
    acked: dict[int, int] = {}
    t = Trader(ctx, e.endpoints["client"], acked, 1, per_frame=2, window=1)
    t.pump(time.monotonic() + 5, lambda: len(acked) < 2)
    t.close()
    e.kill9()
    e = Engine(cfg, jdir).start()  # the gate is the default after a restart
    try:
        t = Trader(ctx, e.endpoints["client"], acked, 100, per_frame=1, window=1)
        t.pump(time.monotonic() + 5, lambda: not t.rejected)
        assert t.rejected == {100} and 100 not in acked
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(e.endpoints["client"])
        s.send(wire.encode("ADMIN", 5, 0, 0, 0, action=2, scope=1, account=0, strategy=0))
        assert s.poll(5000)
        assert [r.msg_type for r in wire.decode_frame(s.recv())][0] == MsgType.ACK
        s.close(0)
        t.pump(time.monotonic() + 5, lambda: 101 not in acked)
        assert 101 in acked
        t.close()
    finally:
        assert e.stop() == 0
        ctx.destroy(0)
    kinds = [k for k, _, _ in _journal(jdir)[0]]
    assert kinds.count(int(MsgType.ADMIN)) == 2  # the gate and the resume, both journaled


@pytest.mark.slow
def test_kill9_real_engine_many_times_state_equals_acknowledged_history(tmp_path: Path) -> None:
    rng = random.Random(7)
    cfg = write_config(tmp_path)
    jdir = tmp_path / "journal"
    ctx = zmq.Context()
    acked: dict[int, int] = {}
    next_cl = 1
    rounds = 12
    in_flight_max = 0
    used_snapshot = 0
    gw: Gateway | None = None
    deadline = time.monotonic() + 100
    try:
        for _ in range(rounds):
            assert time.monotonic() < deadline, "fault test ran out of time"
            e = Engine(cfg, jdir, "--snapshot-every", str(rng.choice((500, 2000, 5000))),
                       "--snapshot-seconds", "0.7").start()
            used_snapshot += e.recovered.get("snapshot") is not None
            rec = e.recovered
            assert rec["replayed_event_seq"] == rec["last_event_seq"], rec
            if gw is None:
                gw = Gateway(ctx, e.endpoints)
                gw.start()
            else:
                gw.want_resend.set()  # a reconnecting venue re-reports its fills
            before = set(acked.values())
            orders = {r.order_id for r in query(ctx, e.endpoints["client"], 1, 1)}
            assert before <= orders, "an acknowledged order was lost"
            t = Trader(ctx, e.endpoints["client"], acked, next_cl, per_frame=10, window=2)
            kill_at = time.monotonic() + rng.uniform(0.3, 1.5)
            t.pump(kill_at, lambda: True)
            e.kill9()  # SIGKILL in the middle of the traffic
            in_flight_max = max(in_flight_max, t.in_flight)
            next_cl = t.next_cl
            t.close()
        assert used_snapshot >= rounds // 2
        # last start: everything the venue ever filled is re-reported; then a clean stop
        e = Engine(cfg, jdir).start()
        assert gw is not None
        gw.want_resend.set()
        ep = e.endpoints["client"]
        pos_rows = _wait_position(ctx, ep, gw)
        exp = gw.expected()
        time.sleep(0.3)
        orders = {r.order_id: r for r in query(ctx, ep, int(QueryKind.ORDERS), 2)}
        bal = {r.asset: r for r in query(ctx, ep, int(QueryKind.BALANCES), 3)}
        assert e.stop() == 0
    finally:
        if gw is not None:
            gw.close()
        ctx.destroy(0)
    assert len(acked) > 2000
    # no acknowledged order lost; each one the venue filled is filled exactly once
    for cl, oid in acked.items():
        o = orders[oid]
        assert o.client_order_id == cl
        if oid in gw.by_order:
            assert (o.status, o.filled) == (4, o.quantity), o
    # the journal holds the acknowledged commands plus at most the frames in flight per kill
    inputs, events = _journal(jdir)
    new_cl = {wire.decode(p).client_order_id for k, _, p in inputs if k == MsgType.NEW_ORDER}
    assert set(acked) <= new_cl
    assert len(new_cl - set(acked)) <= rounds * 2 * 10
    # no fill twice: one FILL event per venue trade, every one booked
    fill_ids = [wire.decode(p).trade_id for p in events if p[4] == MsgType.FILL]
    assert len(fill_ids) == len(set(fill_ids)) == len(gw.fills) > 1000
    assert set(fill_ids) == set(gw.fills)
    seqs = [wire.decode(p).seq for p in events]
    assert seqs == list(range(1, len(seqs) + 1))
    # positions and balances equal a Decimal recomputation from the venue's fills
    p = pos_rows[0]
    assert Decimal(p.quantity) * QX == exp["qty"]
    assert Decimal(p.realized_pnl) * AX == exp["realized"]
    assert Decimal(bal[2].total) * AX == -exp["fees"]
    assert exp["realized"] > 0 and Decimal(p.avg_price) * PX in (Decimal(0), Decimal("49900"),
                                                                  Decimal("50100"))
    print(f"{rounds} kill -9 rounds: {len(acked)} orders acknowledged, {len(gw.fills)} fills, "
          f"{len(seqs)} events, {used_snapshot} restarts from a snapshot")
    # and the final state equals a replay of the whole journal from scratch (no snapshot)
    ecfg = written_settings(cfg)
    fresh = InProcessEngine(build_core(ecfg), config=ecfg)
    fresh.replay(inputs)
    assert fresh.loop.seq == seqs[-1]
    pos = fresh.core.position(1, 1)
    assert (pos["qty"], pos["realized"]) == (p.quantity, p.realized_pnl)
    assert fresh.core.balance(1, 2)[0] == bal[2].total
    for oid, o in orders.items():
        ref = fresh.core.order(oid)
        assert (ref["status"], ref["filled"], ref["cl_ord_id"]) == (
            o.status, o.filled, o.client_order_id)
