"""A small engine for the crash tests: the real engine loop without sockets recovers from the
journal, then applies the deterministic workload, journaling and committing each input BEFORE
acknowledging it on stdout.

``python tests/recovery_driver.py JOURNAL_DIR SEED SNAPSHOT_EVERY``
prints ``A <step>`` after each commit (the acknowledgement) until killed.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.journal_workload import Workload, make_core  # noqa: E402
from oms_core import recovery  # noqa: E402
from oms_core.journal import Journal  # noqa: E402


def main() -> None:
    jdir, seed, snap_every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    core = make_core()
    res = recovery.recover(jdir, core) if os.path.isdir(jdir) else None
    step = (res.extra.get("step", 0) + res.inputs) if res else 0
    w = Workload(core, seed=seed, step=step, event_seq=res.last_event_seq if res else 0)
    j = Journal(jdir, durability="group", group_us=200)
    w.engine.loop.set_journal(j)
    out = sys.stdout
    out.write(f"R {step}\n")
    out.flush()
    while True:
        w.apply(*w.next_input())  # journaled and committed by the loop
        out.write(f"A {w.step}\n")
        out.flush()
        if snap_every and w.step % snap_every == 0:
            recovery.write_snapshot(jdir, core, j.committed_seq, j.last_event_seq,
                                    {"step": w.step})


if __name__ == "__main__":
    main()
