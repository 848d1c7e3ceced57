"""Recovery: snapshot + replay rebuilds the core exactly; reconciliation; kill -9 of a
journaling process many times (real subprocesses)."""

from __future__ import annotations

import functools
import os
import random
import subprocess
import sys
import time
from decimal import Decimal

import pytest

from benchmarks.journal_workload import Workload, make_core, state_of
from bindings.wire import records as wire
from bindings.wire.spec import MsgType
from oms_core import recovery as R
from oms_core.engine.offline import apply_live, offline_engine
from oms_core.enums import Limit
from oms_core.journal import EVENT, Journal, JournalGapError, JournalReader, list_segments

TESTS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_snapshot_plus_replay_equals_full_replay_and_live(tmp_path) -> None:
    jdir = str(tmp_path)
    live = make_core()
    w = Workload(live, seed=21)
    j = Journal(jdir, durability="os", segment_bytes=192 * 2000)
    w.run(4000, j)
    R.write_snapshot(jdir, live, j.committed_seq, j.last_event_seq, {"step": w.step})
    w.run(3000, j)
    j.close()
    a, b = make_core(), make_core()
    ra = R.recover(jdir, a)
    rb = R.recover(jdir, b, use_snapshot=False)
    assert ra.snapshot is not None and ra.inputs == 3000 and ra.extra == {"step": 4000}
    assert rb.inputs == 7000 and rb.last_seq == ra.last_seq
    assert ra.last_event_seq == rb.last_event_seq == w.event_seq
    assert state_of(a, 7000) == state_of(b, 7000) == state_of(live, 7000)


def test_damaged_snapshot_falls_back_and_missing_journal_is_a_gap(tmp_path) -> None:
    jdir = str(tmp_path)
    live = make_core()
    w = Workload(live, seed=4)
    j = Journal(jdir, durability="os", segment_bytes=192 * 500)
    w.run(500, j)
    R.write_snapshot(jdir, live, j.committed_seq, j.last_event_seq, {"step": w.step})
    w.run(500, j)
    p2 = R.write_snapshot(jdir, live, j.committed_seq, j.last_event_seq, {"step": w.step})
    j.close()
    with open(p2, "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01")
    c = make_core()
    res = R.recover(jdir, c)
    assert res.skipped_snapshots == [p2] and res.inputs == 500
    assert state_of(c, 1000) == state_of(live, 1000)
    # the journal after the older snapshot loses a segment: a clear gap error
    segs = list_segments(jdir)
    os.unlink(segs[-2][1])
    with pytest.raises(JournalGapError):
        R.recover(jdir, make_core())


def test_snapshot_file_of_the_old_magic_is_skipped_for_a_full_replay(tmp_path) -> None:
    """A snapshot file headed by ``OMSSNAP1`` (the magic the core's snapshot body still
    carries, once shared by the file) is unreadable: recovery replays the whole journal."""
    from oms_core.core import SNAPSHOT_MAGIC

    jdir = str(tmp_path)
    live = make_core()
    w = Workload(live, seed=7)
    j = Journal(jdir, durability="os")
    w.run(600, j)
    path = R.write_snapshot(jdir, live, j.committed_seq, j.last_event_seq, {"step": w.step})
    w.run(400, j)
    j.close()
    with open(path, "rb") as f:
        written = f.read(8)
    with open(path, "r+b") as f:
        f.write(b"OMSSNAP1")
    with pytest.raises(ValueError, match="bad header"):
        R.read_snapshot(path)
    c = make_core()
    res = R.recover(jdir, c)
    assert res.snapshot is None and res.skipped_snapshots == [path]
    assert res.inputs == 1000 and res.last_event_seq == w.event_seq
    assert state_of(c, 1000) == state_of(live, 1000)
    assert written == R.SNAPSHOT_FILE_MAGIC != SNAPSHOT_MAGIC == b"OMSSNAP1"


def test_reconcile_closes_unknown_books_missed_fill_alerts_balance(tmp_path) -> None:
    jdir = str(tmp_path)
    core = make_core()
    core.set_limit(0, Limit.CHECK_BALANCE, 1)  # a spot account: its balances are compared
    j = Journal(jdir, durability="os")
    engine = offline_engine(core, journal=j)
    apply = functools.partial(apply_live, engine)  # journaled and committed by the loop
    ids = []
    for cl in (1, 2):
        rec = wire.encode("NEW_ORDER", client_order_id=cl, price=5_000_000, quantity=1000,
                          account=0, strategy=1, instrument=0, side=1, order_type=2, tif=1)
        (answer,) = [wire.decode(e) for e in apply(3, 10 + cl, rec)
                     if wire.decode(e).msg_type in (MsgType.ACK, MsgType.REJECT)]
        assert answer.msg_type == MsgType.ACK
        oid = answer.order_id
        ids.append(oid)
        ack = wire.encode("GW_EXEC_REPORT", order_id=oid, exec_type=1, account=0)
        apply(131, 20 + cl, ack)
    view = R.GatewayView(
        account=0, instrument_ids={0},
        open_orders=[R.VenueOrder(ids[0], 77, 400, 600)],
        fills=[R.VenueFill(ids[0], 555, 400, 5_000_000, 4, 0, 1, 30)],
        balances={0: 1}, traded_assets={0, 1})
    gate = R.TradingGate([0])
    assert not gate.open
    rep = R.reconcile(core, view, 100, apply, live_order_ids=ids)
    gate.reconciled(0)
    assert gate.open
    assert rep.booked_fills == [555]
    assert rep.closed_unknown == [(ids[1], "not open at the venue after restart")]
    assert rep.balance_diffs and any("balance differs" in a for a in rep.alerts)
    assert core.order(ids[0])["filled"] == 400
    assert core.order(ids[1])["status"] == 7  # CANCELED
    # reconciling again changes nothing: the fill is a duplicate now
    rep2 = R.reconcile(core, view, 101, apply, live_order_ids=ids)
    assert rep2.booked_fills == [] and rep2.closed_unknown == []
    R.admin_override(R.TradingGate([5]), j, 102, "ops", "venue down")
    j.close()
    # the reconciliation decisions were journaled: a replay rebuilds the same state
    again = make_core()
    again.set_limit(0, Limit.CHECK_BALANCE, 1)
    R.recover(jdir, again)
    assert again.order(ids[0]) == core.order(ids[0])
    assert again.order(ids[1]) == core.order(ids[1])
    kinds = [r.kind for r in JournalReader(jdir)]
    assert R.KIND_RECON_DONE in kinds and R.KIND_ADMIN_OVERRIDE in kinds


@pytest.mark.slow
def test_kill9_engine_many_times_state_equals_acknowledged_replay(tmp_path) -> None:
    """The journal + the engine loop without sockets, in a small process
    (tests/recovery_driver.py). The real engine process is killed in
    tests/integration/recovery/test_recovery_engine.py."""
    jdir = str(tmp_path / "journal")
    seed = 33
    rng = random.Random(5)
    acked = 0
    deadline = time.monotonic() + 100
    for _round in range(15):
        assert time.monotonic() < deadline
        p = subprocess.Popen([sys.executable, os.path.join(TESTS, "recovery_driver.py"), jdir,
                              str(seed), "700"], stdout=subprocess.PIPE, text=True)
        first = p.stdout.readline().split()
        assert first[0] == "R"
        # every acknowledged input of earlier runs survived the crash
        assert int(first[1]) >= acked
        n_lines = rng.randrange(50, 1500)
        for _ in range(n_lines):
            line = p.stdout.readline()
            if not line:
                break
            acked = int(line.split()[1])
        p.kill()
        p.wait(timeout=10)
        # acknowledgements written before the kill but not read yet count too
        for line in p.stdout:
            if line.startswith("A "):
                acked = int(line.split()[1])
    core = make_core()
    res = R.recover(jdir, core)
    n = res.extra.get("step", 0) + res.inputs
    assert acked <= n <= acked + 1  # at most the one committed but not yet acknowledged
    ref = make_core()
    Workload(ref, seed=seed).run(n)
    assert state_of(core, n) == state_of(ref, n)
    # no fill twice, and positions / balances equal a Decimal recomputation from the fills
    trade_ids, qty, fees = [], {0: Decimal(0), 1: Decimal(0)}, {0: Decimal(0), 1: Decimal(0)}
    for r in JournalReader(jdir):
        if r.rtype == EVENT and r.kind == 67:
            f = wire.decode(r.payload)
            trade_ids.append(f.trade_id)
            sign = 1 if f.side == 1 else -1
            qty[f.account] += sign * Decimal(f.quantity) / Decimal(10**5)
            fees[f.account] += Decimal(f.fee) / Decimal(10**8)
    assert len(trade_ids) == len(set(trade_ids)) > 0
    for a in (0, 1):
        assert Decimal(core.position(a, 0)["qty"]) / Decimal(10**5) == qty[a]
        total, _ = core.balance(a, 0)
        assert Decimal(total) / Decimal(10**8) == Decimal(10**17) / Decimal(10**8) - fees[a]
