"""The journal as a typed stage of the engine loop: the loop journals only through the
compiled contract (journal.pxd ``JournalStage``), every implementation keeps the same records,
and snapshots are the stage's post-commit hook."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from minimal_engine import engine_config

from bindings.wire import records as wire
from bindings.wire.spec import MsgType
from oms_core import recovery
from oms_core.engine import Engine, build_core
from oms_core.engine.loop import EngineLoop
from oms_core.engine.startup import EngineSnapshots, recover_engine
from oms_core.journal import (
    EVENT,
    INPUT,
    Journal,
    JournalReader,
    JournalStage,
    MemoryJournal,
    NullJournal,
    SnapshotTrigger,
)


def _engine(journal: JournalStage | None) -> Engine:
    cfg = engine_config()
    return Engine(build_core(cfg), journal=journal, config=cfg)


def _orders(n: int, first: int = 1) -> bytes:
    fb = wire.FrameBuilder(1 << 20)
    for i in range(first, first + n):
        fb.add_fields("NEW_ORDER", i, i, 0, client_order_id=i, price=4_990_000 - i % 7,
                      quantity=10 + i % 5, account=1 + i % 2, strategy=1, instrument=1,
                      side=1, order_type=2, tif=1)
    return fb.tobytes()


def _send(e: Engine, frame: bytes, ts: int) -> list:
    """One client frame through the live loop: journaled, applied, committed; its answers."""
    lp = e.loop
    lp.begin(3, (1 << 64) - 1, 0b110, False)
    lp.on_client_frame(frame, ts)
    lp.commit()
    return [_no_clock(r) for f in lp.reply.frames() for r in wire.decode_frame(f)]


def _no_clock(r: object) -> object:
    """A decoded record without the fields stamped from the wall clock at sending."""
    return r._replace(**{f: 0 for f in ("send_ns", "ack_ns") if f in r._fields})


class _DuckJournal:
    """The old duck-typed interface: three Python methods."""

    def append_input(self, kind: int, ts: int, payload: bytes) -> None: ...
    def append_event(self, record: bytes) -> None: ...
    def commit(self) -> None: ...


def test_the_loop_takes_only_a_journal_stage() -> None:
    core = build_core(engine_config())
    with pytest.raises(TypeError):
        EngineLoop(core, 16, _DuckJournal())
    loop = EngineLoop(core, 16, None)
    with pytest.raises(TypeError):
        loop.set_journal(_DuckJournal())
    # no journal is one typed choice: a NullJournal that keeps nothing
    assert type(loop.journal) is NullJournal
    assert type(_engine(None).journal) is NullJournal
    assert isinstance(MemoryJournal(), JournalStage) and issubclass(Journal, JournalStage)


def test_every_stage_journals_the_same_records(tmp_path: Path) -> None:
    mem, null = MemoryJournal(), NullJournal()
    disk = Journal(str(tmp_path / "j"), durability="os")
    engines = [_engine(j) for j in (mem, disk, null)]
    ts = 1_700_000_000_000_000_000
    frames = [_orders(40), _orders(1, 41), _orders(25, 42)]
    answers = [[_send(e, f, ts + k) for k, f in enumerate(frames)] for e in engines]
    assert answers[0] == answers[1] == answers[2]  # the journal changes no answer
    assert sum(r.msg_type == MsgType.ACK for batch in answers[0] for r in batch) == 66
    disk.close()
    records = list(JournalReader(str(tmp_path / "j")))
    inputs = [(r.kind, r.ts, r.payload) for r in records if r.rtype == INPUT]
    events = [_no_clock(wire.decode(r.payload)) for r in records if r.rtype == EVENT]
    assert inputs == mem.inputs
    assert events == [_no_clock(wire.decode(p)) for p in mem.events]
    assert len(inputs) == 2 * 66  # each command and its AUDIT record
    assert mem.committed_inputs == len(mem.inputs) and mem.n_commits == len(frames)
    # an event record keeps the ts of the input it belongs to
    assert [r.ts for r in records if r.rtype == EVENT][0] == ts
    assert disk.last_event_seq == mem.last_event_seq == engines[0].loop.seq
    assert null.last_seq == null.committed_seq == 0 and engines[2].loop.seq == mem.last_event_seq


class _Counting(SnapshotTrigger):
    def __init__(self, every_records: int = 0, every_s: float = 0.0) -> None:
        super().__init__(every_records, every_s)
        self.taken: list[tuple[int, int]] = []
        self.closed_at: int | None = None

    def snapshot(self, stage: JournalStage) -> None:
        self.taken.append((stage.committed_seq, stage.last_seq))
        self.restart(stage.committed_seq)

    def closing(self, stage: JournalStage) -> None:
        self.closed_at = stage.committed_seq


def test_a_snapshot_is_taken_after_the_commit_it_is_due_at(tmp_path: Path) -> None:
    j = Journal(str(tmp_path / "j"), durability="os")
    e = _engine(j)
    trigger = _Counting(every_records=50)
    j.snapshots = trigger
    seqs = []
    for k in range(10):  # each frame: 3 orders -> 6 inputs + their events per commit
        _send(e, _orders(3, 1 + 3 * k), 1_000 + k)
        seqs.append(j.committed_seq)
    # at a commit boundary (nothing appended beyond it), the first commit >= 50 records on
    expected, last = [], 0
    for s in seqs:
        if s - last >= 50:
            expected.append((s, s))
            last = s
    assert trigger.taken == expected and len(expected) >= 2
    # a commit by a Python caller (recovery's reconciliation) runs the hook too
    trigger.every_records = 1
    j.append_input(int(MsgType.NEW_ORDER), 5_000, _orders(1, 99))
    j.commit()
    assert trigger.taken[-1] == (j.committed_seq, j.committed_seq)
    j.close()
    assert trigger.closed_at == j.committed_seq and j.snapshots is None


def test_a_time_trigger_and_an_idle_commit(tmp_path: Path) -> None:
    j = MemoryJournal()
    e = _engine(j)
    trigger = _Counting(every_s=1e-9)  # due at any later commit
    j.snapshots = trigger
    _send(e, _orders(2), 1)
    assert trigger.taken == [(j.committed_seq, j.committed_seq)]
    j.commit()  # nothing new committed: nothing to snapshot
    assert len(trigger.taken) == 1
    off = _Counting()  # both triggers off
    j.snapshots = off
    _send(e, _orders(2, 3), 2)
    assert off.taken == []


def test_engine_snapshots_are_written_by_the_journal_stage_and_recovered(
        tmp_path: Path) -> None:
    jdir = str(tmp_path / "j")
    j = Journal(jdir, durability="os")
    e = _engine(j)
    snaps = EngineSnapshots(e, jdir, every_records=40, every_s=0.0)
    j.snapshots = snaps
    for k in range(6):
        _send(e, _orders(4, 1 + 4 * k), time.time_ns())
    first = snaps.n_snapshots + (snaps._thread is not None and snaps._thread.is_alive())
    assert first >= 1  # taken by the commits, not by this driver
    j.close()  # waits for the writer thread; takes the last snapshot
    assert snaps.error is None
    newest = recovery.list_snapshots(jdir)[-1]
    assert newest[0] == j.committed_seq
    again = _engine(Journal(jdir, durability="os"))
    res = recover_engine(again, jdir)
    assert res.snapshot is not None and res.inputs == 0  # nothing after the last snapshot
    assert again.loop.seq == e.loop.seq
    assert again.core.open_order_count() == e.core.open_order_count() == 24
    assert again.core.snapshot() == e.core.snapshot()
    again.journal.close()
