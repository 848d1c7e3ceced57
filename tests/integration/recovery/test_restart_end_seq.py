"""recover(end_seq=...): the engine hands recovery the end of the journal it already opened
(so the last segment is not read twice at start); the result must be the same as without."""

from __future__ import annotations

import pytest

from benchmarks.journal_workload import Workload, make_core, state_of
from oms_core import recovery as R
from oms_core.journal import Journal, JournalGapError, journal_end, list_segments


def _journal(jdir: str) -> Workload:
    live = make_core()
    w = Workload(live, seed=33)
    j = Journal(jdir, durability="os", segment_bytes=192 * 1500)
    w.run(2000, j)
    R.write_snapshot(jdir, live, j.committed_seq, j.last_event_seq, {"step": w.step})
    w.run(1500, j)
    j.close()
    with open(list_segments(jdir)[-1][1], "ab") as f:  # a partial slot: a torn tail
        f.write(b"\x01" * 100)
    return w


def test_end_seq_from_the_open_journal_gives_the_same_recovery(tmp_path) -> None:
    jdir = str(tmp_path)
    w = _journal(jdir)
    assert len(list_segments(jdir)) > 2
    end, _, tail = journal_end(jdir)
    assert tail is not None
    j = Journal(jdir, durability="os", segment_bytes=192 * 1500)  # cuts the torn tail
    assert j.committed_seq == end
    a, b = make_core(), make_core()
    ra = R.recover(jdir, a, end_seq=j.committed_seq)
    rb = R.recover(jdir, b)
    j.close()
    assert ra.snapshot == rb.snapshot is not None and ra.inputs == rb.inputs == 1500
    assert (ra.last_seq, ra.last_event_seq) == (rb.last_seq, rb.last_event_seq) == (
        end, w.event_seq)
    assert state_of(a, 3500) == state_of(b, 3500) == state_of(w.core, 3500)


def test_end_seq_older_than_the_snapshot_is_a_gap(tmp_path) -> None:
    jdir = str(tmp_path)
    _journal(jdir)
    snap_seq = R.list_snapshots(jdir)[-1][0]
    with pytest.raises(JournalGapError):
        R.recover(jdir, make_core(), end_seq=snap_seq - 1)
