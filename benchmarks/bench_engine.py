"""The engine process end to end, beside bare pyzmq measured in the same run.

1. Round trip client -> engine (decode, every risk check, insert, encode) -> ACK back, over
   ipc:// and tcp://127.0.0.1, p50 / p99 / p99.9, beside a bare pyzmq DEALER/ROUTER
   ping-pong with the same message sizes (96-byte request, the engine's 216-byte answer:
   ACK + ORDER_UPDATE). Targets: the OMS adds <= 25% at p50 and <= 50% at p99.
2. Sustained throughput: batched NEW_ORDER frames in, GW_NEW_ORDER records out to a gateway
   PULL socket (another process), counted at the gateway; beside bare pyzmq PUSH/PULL of one
   96-byte record per message. Targets: >= 500,000 orders/s over ipc and >= 60% of the bare
   PUSH/PULL record rate.
3. Latency under a steady open-loop load of 10k and 50k orders/s (ipc).

The engine runs in its own process (``python -m oms_core.engine``); so do the bare servers.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import zmq
from hdrh.histogram import HdrHistogram

from bindings.wire.codec import pack_new_order
from oms_core.engine.process import ROOT, EngineProcess, base_config

REQ_SIZE = 96
ANSWER_SIZE = 88 + 128  # ACK + ORDER_UPDATE

_ECHO = r"""
import sys, zmq
ctx = zmq.Context(); s = ctx.socket(zmq.ROUTER); s.bind(sys.argv[1])
print(s.getsockopt_string(zmq.LAST_ENDPOINT), flush=True)
reply = b"\0" * int(sys.argv[2])
while True:
    rid, msg = s.recv_multipart()
    if msg == b"stop":
        break
    s.send_multipart([rid, reply])
"""

_SINK = r"""
import sys, time, zmq
ctx = zmq.Context(); s = ctx.socket(zmq.PULL); s.setsockopt(zmq.RCVHWM, 0)
s.connect(sys.argv[1]) if sys.argv[3] == "connect" else s.bind(sys.argv[1])
if sys.argv[3] == "bind":
    print(s.getsockopt_string(zmq.LAST_ENDPOINT), flush=True)
else:
    print("up", flush=True)
want, rec, n, first = int(sys.argv[2]), int(sys.argv[4]), 0, 0.0
while n < want:
    f = s.recv(copy=False)
    if not first:
        first = time.perf_counter()
    n += len(f) // rec
print(n, time.perf_counter() - first, flush=True)
"""


def _child(code: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    p = subprocess.Popen([sys.executable, "-c", code, *args], text=True,
                         stdout=subprocess.PIPE, cwd=ROOT)
    assert p.stdout is not None
    return p, p.stdout.readline().strip()


def _hist() -> HdrHistogram:
    return HdrHistogram(1, 10_000_000_000, 3)


def _pct(h: HdrHistogram) -> tuple[float, float, float]:
    return tuple(h.get_value_at_percentile(p) / 1000 for p in (50.0, 99.0, 99.9))  # type: ignore


def _ping_pong(sock: zmq.Socket, n: int, make: Any) -> HdrHistogram:
    h = _hist()
    send, recv, clock = sock.send, sock.recv, time.perf_counter_ns
    for i in range(n):
        msg = make(i)
        t0 = clock()
        send(msg, copy=True)
        recv(copy=True)
        h.record_value(clock() - t0)
    return h


def _order_maker(start: int) -> Any:
    buf = bytearray(REQ_SIZE)

    def make(i: int) -> bytearray:
        cl = start + i
        pack_new_order(buf, 0, cl, cl, 0, cl, 4_999_000, 0, 1, 1, 1, 1, 1, 2, 1)
        return buf
    return make


def _engine_cfg(tmp: Path, transport: str, gateway: str | None = None) -> dict[str, Any]:
    cfg = base_config(tmp, transport, max_orders=1 << 20, writer=None, public=None,
                      timer_ms=100)
    cfg["gateways"] = [{"exchange": 1, "orders": gateway}] if gateway else []
    if transport == "tcp":
        cfg["engine"]["client"] = "tcp://127.0.0.1:*"
    return cfg


def round_trip(transport: str, n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ep = f"ipc://{tmp}/echo" if transport == "ipc" else "tcp://127.0.0.1:*"
        echo, echo_ep = _child(_ECHO, ep, str(ANSWER_SIZE))
        ctx = zmq.Context()
        try:
            with EngineProcess(_engine_cfg(tmp, transport), tmp) as e:
                bare = ctx.socket(zmq.DEALER)
                oms = ctx.socket(zmq.DEALER)
                for s in (bare, oms):
                    s.setsockopt(zmq.LINGER, 0)
                bare.connect(echo_ep)
                oms.connect(e.endpoints["client"])
                req = b"\0" * REQ_SIZE
                _ping_pong(bare, min(n, 2000), lambda i: req)  # warm up both
                _ping_pong(oms, min(n, 2000), _order_maker(1))
                # interleave in chunks so both see the same machine state
                hb, ho = _hist(), _hist()
                chunk = max(n // 10, 1)
                for k in range(10):
                    hb.add(_ping_pong(bare, chunk, lambda i: req))
                    ho.add(_ping_pong(oms, chunk, _order_maker(10_000_000 + k * chunk)))
                bare.send(b"stop")
            e_stats = e.stats()
        finally:
            echo.wait(5)
            ctx.destroy(0)
    b, o = _pct(hb), _pct(ho)
    return {"bare": b, "oms": o, "acks": e_stats.get("acks", 0)}


def throughput(n: int, batch: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        # bare PUSH/PULL: one 96-byte record per message
        sink, sink_ep = _child(_SINK, f"ipc://{tmp}/bare", str(n), "bind", str(REQ_SIZE))
        ctx = zmq.Context()
        push = ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.SNDHWM, 0)
        push.connect(sink_ep)
        rec = b"\0" * REQ_SIZE
        send = push.send
        for _ in range(n):
            send(rec, copy=True)
        out = sink.stdout.readline().split() if sink.stdout else ["0", "1"]
        sink.wait(10)
        bare_rate = int(out[0]) / float(out[1])
        # the engine: batched NEW_ORDERs in, GW_NEW_ORDER out to a gateway sink process
        gw_ep = f"ipc://{tmp}/gw-orders"
        with EngineProcess(_engine_cfg(tmp, "ipc", gw_ep), tmp) as e:
            gw, _ = _child(_SINK, gw_ep, str(n), "connect", "88")
            client = ctx.socket(zmq.DEALER)
            client.setsockopt(zmq.LINGER, 0)
            client.setsockopt(zmq.SNDHWM, 0)
            client.setsockopt(zmq.RCVHWM, 0)
            client.connect(e.endpoints["client"])
            frames = []
            for f in range(n // batch):
                buf = bytearray(REQ_SIZE * batch)
                for i in range(batch):
                    cl = 1 + f * batch + i
                    pack_new_order(buf, i * REQ_SIZE, cl, cl, 0, cl, 4_999_000, 0, 1, 2, 0, 1,
                                   1, 2, 1)
                frames.append(bytes(buf))
            acks = 0
            t0 = time.perf_counter()
            for fr in frames:
                client.send(fr, copy=False)
                while client.poll(0):
                    client.recv(copy=False)
                    acks += 1
            out = gw.stdout.readline().split() if gw.stdout else ["0", "1"]
            elapsed_total = time.perf_counter() - t0
            gw.wait(10)
        e_stats = e.stats()
        ctx.destroy(0)
    got, secs = int(out[0]), float(out[1])
    return {"bare_rate": bare_rate, "oms_rate": got / secs, "oms_rate_end_to_end":
            got / elapsed_total, "forwarded": got, "acks": e_stats.get("acks", 0)}


def under_load(rate: int, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ctx = zmq.Context()
        with EngineProcess(_engine_cfg(tmp, "ipc"), tmp) as e:
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(e.endpoints["client"])
            make = _order_maker(1)
            _ping_pong(s, 1000, make)
            h = _hist()
            sent: dict[int, int] = {}
            clock = time.perf_counter_ns
            interval = 1_000_000_000 // rate
            n = int(rate * seconds)
            start = clock()
            nxt = start
            i = got = 0
            rid_at = struct.Struct("<Q").unpack_from
            make = _order_maker(5_000_000)
            while got < n and clock() - start < (seconds + 5) * 1e9:
                now = clock()
                if i < n and now >= nxt:
                    msg = make(i)
                    sent[5_000_000 + i] = now
                    s.send(msg, copy=True)
                    i += 1
                    nxt += interval
                while True:
                    try:
                        rep = s.recv(zmq.NOBLOCK, copy=True)
                    except zmq.Again:
                        break
                    t = clock()
                    rid = rid_at(rep, 16)[0]
                    t0 = sent.pop(rid, 0)
                    if t0:
                        h.record_value(t - t0)
                        got += 1
            achieved = n / ((clock() - start) / 1e9)
        ctx.destroy(0)
    return {"rate": rate, "achieved": achieved, "pct": _pct(h), "n": got}


def main(smoke: bool = False) -> bool:
    ok = True
    n_rt = 2_000 if smoke else 20_000
    print("bench_engine: engine process (python -m oms_core.engine) vs bare pyzmq, same run")
    for transport in ("ipc", "tcp"):
        r = round_trip(transport, n_rt)
        b, o = r["bare"], r["oms"]
        r50, r99 = o[0] / b[0], o[1] / b[1]
        print(f"  round trip {transport:3s} n={n_rt}: bare p50/p99/p99.9 = "
              f"{b[0]:.1f}/{b[1]:.1f}/{b[2]:.1f} us | oms = {o[0]:.1f}/{o[1]:.1f}/{o[2]:.1f} us"
              f" | ratio p50 {r50:.2f} (target <= 1.25), p99 {r99:.2f} (target <= 1.50)")
        if not smoke and (r50 > 1.25 or r99 > 1.50):
            ok = False
    n_tp = 100_000 if smoke else 1_000_000
    t = throughput(n_tp, 1000)
    ratio = t["oms_rate"] / t["bare_rate"]
    print(f"  throughput ipc n={n_tp} batch=1000: oms {t['oms_rate']:,.0f} orders/s forwarded "
          f"to the gateway ({t['oms_rate_end_to_end']:,.0f}/s from first send) | bare "
          f"PUSH/PULL 96 B records {t['bare_rate']:,.0f}/s | ratio {ratio:.2f} "
          f"(targets >= 500,000/s and >= 0.60)")
    if not smoke and (t["oms_rate"] < 500_000 or ratio < 0.60):
        ok = False
    for rate in (10_000, 50_000):
        u = under_load(rate, 0.3 if smoke else 2.0)
        p = u["pct"]
        print(f"  under load {rate:,}/s (achieved {u['achieved']:,.0f}/s, n={u['n']}): "
              f"p50/p99/p99.9 = {p[0]:.1f}/{p[1]:.1f}/{p[2]:.1f} us")
    print(f"  bench_engine: {'OK' if ok else 'TARGET MISSED'}")
    return ok


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    sys.exit(0 if main("--smoke" in sys.argv) else 1)
