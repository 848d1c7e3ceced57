"""Engine ack latency with the writer running, stopped and slow, side by side in one run.

The engine (``python -m oms_core.engine --journal DIR``, journal durability ``group``) is
driven closed-loop by a DEALER client: NEW_ORDER -> ACK round trip over ipc://, p50 / p99 /
p99.9. A sink process drains the gateway orders. Three engines run side by side (one per
case, each with its own journal) and are driven in short interleaved bursts, rotating the
order, so drift and the noise of a shared machine hit every case alike:

* ``stopped``: nothing connected to the engine's writer PUSH socket (the baseline);
* ``running``: the real writer (``python -m writer --engine EP --journal DIR --db FILE``, its
  defaults: SCHED_IDLE, a DuckDB commit every 500 ms);
* ``slow``: a PULL consumer that sleeps 50 ms after every frame (the engine's PUSH fills its
  high-water mark and drops the live copy; the journal keeps everything).

Target: the writer running or slow changes the engine's p99 ack latency by less than 10%.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import zmq

from bindings.wire.codec import pack_new_order
from oms_core.engine.process import ROOT, EngineProcess, base_config
from oms_core.latency import Latencies

TARGET = 0.10
CASES = ("stopped", "running", "slow")

_SINK = r"""
import sys, time, zmq
ctx = zmq.Context(); s = ctx.socket(zmq.PULL); s.setsockopt(zmq.RCVHWM, 1000)
s.connect(sys.argv[1]); sleep = float(sys.argv[2])
print("up", flush=True)
while True:
    s.recv()
    if sleep:
        time.sleep(sleep)
"""


def _proc(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(args, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


class _Client:
    """One closed-loop DEALER client of one engine."""

    def __init__(self, ctx: zmq.Context, ep: str) -> None:
        self.s = ctx.socket(zmq.DEALER)
        self.s.setsockopt(zmq.LINGER, 0)
        self.s.connect(ep)
        self.buf = bytearray(96)
        self.cl = 0

    def burst(self, n: int) -> np.ndarray:
        out = np.empty(n, dtype=np.int64)
        pc = time.perf_counter_ns
        s, buf = self.s, self.buf
        for i in range(n):
            self.cl += 1
            cl = self.cl
            side = 1 + (cl & 1)
            pack_new_order(buf, 0, cl, cl, 0, cl, 4_990_000 if side == 1 else 5_010_000, 0, 1,
                           1, 1, 1, side, 2, 1)
            t = pc()
            s.send(buf)
            if not s.poll(5000):
                raise TimeoutError("engine did not answer")
            s.recv()
            out[i] = pc() - t
        return out


def _start(case: str, tmp: Path) -> tuple[EngineProcess, list[subprocess.Popen[str]]]:
    cfg = base_config(tmp, "ipc", max_orders=1 << 17, timer_ms=100)
    jdir = tmp / "journal"
    e = EngineProcess(cfg, tmp, extra_args=("--journal", str(jdir), "--snapshot-every", "0",
                                            "--snapshot-seconds", "0")).start()
    helpers = [_proc([sys.executable, "-c", _SINK, e.endpoints["gateway_orders_1"], "0"])]
    if case == "running":
        helpers.append(_proc([sys.executable, "-m", "writer", "--engine", e.endpoints["writer"],
                              "--journal", str(jdir), "--db", str(tmp / "oms.duckdb")]))
    elif case == "slow":
        helpers.append(_proc([sys.executable, "-c", _SINK, e.endpoints["writer"], "0.05"]))
    for h in helpers:
        if "-c" in h.args:
            assert h.stdout is not None and h.stdout.readline().strip() == "up"
    return e, helpers


def main(smoke: bool = False) -> bool:
    rounds, burst, warm = (3, 200, 100) if smoke else (48, 1500, 1000)
    lat: dict[str, list[np.ndarray]] = {c: [] for c in CASES}
    ctx = zmq.Context()
    running: list[tuple[EngineProcess, list[subprocess.Popen[str]]]] = []
    try:
        with tempfile.TemporaryDirectory() as d:
            clients = {}
            for c in CASES:
                tmp = Path(d) / c
                tmp.mkdir()
                running.append(_start(c, tmp))
                clients[c] = _Client(ctx, running[-1][0].endpoints["client"])
            time.sleep(1.5)  # the writer's start-up (DuckDB open) is not measured
            for c in CASES:
                clients[c].burst(warm)
            for r in range(rounds):  # interleaved bursts: drift and noise hit every case
                for c in CASES[r % 3:] + CASES[:r % 3]:
                    lat[c].append(clients[c].burst(burst))
            for cl in clients.values():
                cl.s.close(0)
    finally:
        for e, helpers in running:
            for h in helpers:
                h.kill()
                h.wait(10)
            e.stop()
        ctx.term()
    print(f"engine NEW_ORDER -> ACK round trip over ipc://, closed loop, journal 'group'; "
          f"three engines side by side, {rounds} interleaved bursts of {burst:,} orders each, "
          f"microseconds")
    base99 = Latencies(np.concatenate(lat["stopped"])).p50_p99_p999_us()[1]
    ok = True
    for c in CASES:
        p50, p99, p999 = Latencies(np.concatenate(lat[c])).p50_p99_p999_us()
        med99 = float(np.median([Latencies(x).percentile_ns(99) for x in lat[c]])) / 1000.0
        ratio = p99 / base99
        note = "baseline" if c == "stopped" else f"p99 ratio {ratio:.3f}"
        print(f"  writer {c:8s} p50 {p50:8.1f}  p99 {p99:8.1f}  p99.9 {p999:8.1f}  "
              f"median burst p99 {med99:8.1f}   {note}")
        if c != "stopped" and not smoke:
            passed = ratio < 1.0 + TARGET  # a lower p99 is noise, not harm
            print(("  PASS " if passed else "  MISS ") +
                  f"writer {c}: p99 changes by {100 * (ratio - 1):+.1f}% (target < 10%)")
            ok &= passed
    return ok


if __name__ == "__main__":
    sys.exit(0 if main(smoke="--smoke" in sys.argv) else 1)
