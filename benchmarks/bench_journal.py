"""Journal append cost, replay (read + decode) rate and restart-to-ready time.

Ours vs baselines in the same run:
* append: Journal.append_input/append_event/commit (CRC32C, 192-byte slots, one write per
  commit, durability "os") vs a plain buffered Python file write of the same bytes per commit;
* the loop's journal stage: the workload's frames through the engine loop with a Journal
  minus the same frames with no journal (a NullJournal), per journaled record;
* replay: JournalReader iteration (checks + Record tuples) and read_batch (numpy) vs reading
  the same files raw with numpy.fromfile (no checks);
* restart: newest snapshot + replay of the tail through the engine loop (no sockets), vs a
  full replay.
Target: replay >= 1,000,000 records/s, restart of a 1,000,000-record journal < 3 s.
"""

from __future__ import annotations

import gc
import os
import sys
import tempfile
import time

import numpy as np

from benchmarks.journal_workload import Workload, make_core
from bindings.wire import records as wire
from bindings.wire.spec import Role
from oms_core import recovery
from oms_core.engine.idset import EVERY, NOBODY
from oms_core.engine.offline import offline_engine
from oms_core.journal import Journal, JournalReader, list_segments

TARGET_REPLAY_PER_S = 1_000_000
TARGET_RESTART_S = 3.0


def bench_append(d: str, n_groups: int) -> tuple[float, float]:
    inp = wire.encode("NEW_ORDER", client_order_id=1, price=5, quantity=5)
    evs = [wire.encode("ORDER_UPDATE", seq=i) for i in range(3)]
    j = Journal(os.path.join(d, "append"), durability="os")
    gc.disable()
    t = time.perf_counter_ns()
    for _ in range(n_groups):
        j.append_input(3, 1, inp)
        j.append_event(evs[0])
        j.append_event(evs[1])
        j.append_event(evs[2])
        j.commit()
    ours = (time.perf_counter_ns() - t) / (4 * n_groups)
    j.close()
    with open(os.path.join(d, "baseline.bin"), "wb") as f:
        t = time.perf_counter_ns()
        for _ in range(n_groups):
            f.write(inp)
            f.write(evs[0])
            f.write(evs[1])
            f.write(evs[2])
            f.flush()
        base = (time.perf_counter_ns() - t) / (4 * n_groups)
    gc.enable()
    return ours, base


def bench_loop_stage(d: str, n_inputs: int, per_frame: int = 32,
                     rounds: int = 3) -> tuple[float, float, int]:
    """The engine loop's journal stage: ns per journaled record (input or event) of the
    workload's inputs as frames through the loop (client commands with their AUDIT records,
    gateway reports, market data), one commit per frame. Each run of ``per_frame`` inputs
    becomes two frames, its client commands then its gateway records (so that a commit, one
    ``write``, covers tens of records, not the two or three of the workload's interleaving).
    Returns (journaled, no journal, records journaled per pass); the difference is the stage's
    cost. Best of ``rounds``."""
    w = Workload(make_core(), seed=3)
    frames: list[tuple[bool, int, bytes]] = []  # (from a client, ts, frame)
    window: list[tuple[int, int, bytes]] = []
    for i in range(n_inputs):
        kind, ts, payload = w.next_input()
        w.apply(kind, ts, payload)
        window.append((int(kind), ts, payload))
        if len(window) == per_frame or i == n_inputs - 1:
            for client in (True, False):
                part = [x for x in window if (x[0] < 64) == client]
                if part:
                    frames.append((client, part[0][1], b"".join(x[2] for x in part)))
            window = []
    best = {"journal": float("inf"), "null": float("inf")}
    n_records = 0
    for r in range(rounds):
        for variant in ("null", "journal"):
            j = Journal(os.path.join(d, f"stage-{r}"), durability="os") if (
                variant == "journal") else None
            loop = offline_engine(make_core(), journal=j).loop
            gc.disable()
            t = time.perf_counter_ns()
            for client, ts, frame in frames:
                loop.begin(int(Role.ADMIN), EVERY, NOBODY, False)
                if client:
                    loop.on_client_frame(frame, ts)
                else:
                    loop.on_gateway_frame(frame, ts)
                loop.commit()
            best[variant] = min(best[variant], time.perf_counter_ns() - t)
            gc.enable()
            if j is not None:
                n_records = j.committed_seq
                j.close()
    return best["journal"] / n_records, best["null"] / n_records, n_records


def build_journal(d: str, n_records: int, snapshot_every: int) -> tuple[str, int]:
    jdir = os.path.join(d, "replay")
    core = make_core()
    w = Workload(core, seed=2)
    j = Journal(jdir, durability="os")
    while j.committed_seq < n_records:
        w.run(min(snapshot_every, 10_000), j)
        if w.step % snapshot_every == 0:
            recovery.write_snapshot(jdir, core, j.committed_seq, j.last_event_seq,
                                    {"step": w.step})
    j.close()
    return jdir, j.committed_seq


def bench_replay(jdir: str) -> tuple[float, float, float, int]:
    gc.disable()
    t = time.perf_counter()
    n = 0
    for _ in JournalReader(jdir):
        n += 1
    it = n / (time.perf_counter() - t)
    r = JournalReader(jdir)
    t = time.perf_counter()
    m = 0
    while True:
        b = r.read_batch(16384)
        if len(b) == 0:
            break
        m += len(b)
    batch = m / (time.perf_counter() - t)
    t = time.perf_counter()
    k = 0
    for _, p in list_segments(jdir):
        k += len(np.fromfile(p, dtype=np.uint8)) // 192 - 1
    raw = k / (time.perf_counter() - t)
    gc.enable()
    return it, batch, raw, n


def main(smoke: bool = False) -> bool:
    n_groups = 20_000 if smoke else 300_000
    n_records = 20_000 if smoke else 1_000_000
    snap_every = 5_000 if smoke else 100_000
    with tempfile.TemporaryDirectory() as d:
        ours, base = bench_append(d, n_groups)
        print(f"append, {n_groups} commit groups of 4 records (1 input + 3 events), "
              "durability=os")
        print(f"  journal (crc32c, 192 B slots)   {ours:7.1f} ns/record  "
              f"{1e9 / ours:12,.0f} records/s")
        print(f"  baseline (buffered file write)  {base:7.1f} ns/record  "
              f"{1e9 / base:12,.0f} records/s   ratio {ours / base:.2f}x")
        stage, bare, n_stage = bench_loop_stage(d, 5_000 if smoke else 100_000)
        print(f"the engine loop's journal stage, {n_stage:,} records journaled "
              "(frames of up to 32 inputs, one commit per frame, durability=os)")
        print(f"  loop with a Journal              {stage:7.1f} ns/record")
        print(f"  loop with no journal             {bare:7.1f} ns/record   "
              f"stage cost {stage - bare:5.1f} ns/record")
        t = time.perf_counter()
        jdir, total = build_journal(d, n_records, snap_every)
        print(f"built a journal of {total:,} records (workload inputs + events) "
              f"in {time.perf_counter() - t:.1f} s")
        it, batch, raw, n = bench_replay(jdir)
        print(f"replay read+check+decode of {n:,} records")
        print(f"  JournalReader iteration (Record tuples) {it:12,.0f} records/s")
        print(f"  JournalReader.read_batch (numpy)       {batch:12,.0f} records/s")
        print(f"  baseline raw numpy.fromfile, no checks {raw:12,.0f} records/s   "
              f"ratio iter/raw {it / raw:.2f}")
        t = time.perf_counter()
        core = make_core()
        res = recovery.recover(jdir, core)
        restart = time.perf_counter() - t
        t = time.perf_counter()
        full = recovery.recover(jdir, make_core(), use_snapshot=False)
        full_s = time.perf_counter() - t
        print(f"restart to ready: snapshot at seq {res.snapshot_seq:,} + {res.inputs:,} "
              f"inputs replayed: {restart:.3f} s")
        print(f"  baseline full replay of {full.inputs:,} inputs without snapshot: "
              f"{full_s:.3f} s ({full.records / full_s:,.0f} records/s)")
    if smoke:
        return True
    checks = [
        (it >= TARGET_REPLAY_PER_S, f"replay {it:,.0f} records/s >= {TARGET_REPLAY_PER_S:,}"),
        (restart < TARGET_RESTART_S, f"restart {restart:.3f} s < {TARGET_RESTART_S} s"),
    ]
    ok = True
    for passed, text in checks:
        print(("  PASS " if passed else "  MISS ") + text)
        ok &= passed
    return ok


if __name__ == "__main__":
    sys.exit(0 if main(smoke="--smoke" in sys.argv) else 1)
