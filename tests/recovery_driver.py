"""A small engine for the crash tests: the real engine loop without sockets recovers from the
journal, then applies the deterministic workload, journaling and committing each input BEFORE
acknowledging it on stdout. Snapshots are the journal stage's post-commit hook, as in the
engine process.

``python tests/recovery_driver.py JOURNAL_DIR SEED SNAPSHOT_EVERY``
prints ``A <step>`` after each commit (the acknowledgement) until killed; a snapshot is taken
after the commit that ends SNAPSHOT_EVERY journal records or more after the last (0: none).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.journal_workload import Workload, make_core  # noqa: E402
from oms_core import recovery  # noqa: E402
from oms_core.journal import Journal, JournalStage, SnapshotTrigger  # noqa: E402


class StepSnapshots(SnapshotTrigger):
    """The core and the workload's step at a commit boundary."""

    def __init__(self, jdir: str, workload: Workload, every_records: int) -> None:
        super().__init__(every_records)
        self.jdir = jdir
        self.workload = workload

    def snapshot(self, stage: JournalStage) -> None:
        # the commit is of the input being applied: the workload counts it once it returns
        w = self.workload
        recovery.write_snapshot(self.jdir, w.core, stage.committed_seq, stage.last_event_seq,
                                {"step": w.step + 1})
        self.restart(stage.committed_seq)


def main() -> None:
    jdir, seed, snap_every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    core = make_core()
    res = recovery.recover(jdir, core) if os.path.isdir(jdir) else None
    step = (res.extra.get("step", 0) + res.inputs) if res else 0
    w = Workload(core, seed=seed, step=step, event_seq=res.last_event_seq if res else 0)
    j = Journal(jdir, durability="group", group_us=200)
    trigger = StepSnapshots(jdir, w, snap_every)
    trigger.restart(j.committed_seq)
    j.snapshots = trigger
    w.engine.loop.set_journal(j)
    out = sys.stdout
    out.write(f"R {step}\n")
    out.flush()
    while True:
        w.apply(*w.next_input())  # journaled and committed by the loop; snapshots after
        out.write(f"A {w.step}\n")
        out.flush()


if __name__ == "__main__":
    main()
