"""Wire codecs and the bare ZeroMQ round trip, each measured against its baseline in one run.

  encode   : RecordCodec.pack_into of a NEW_ORDER into a reused buffer, and the compiled
             codec.pack_new_order (informational)
             vs baseline bare struct.Struct.pack_into of the same layout
  decode   : RecordCodec.decode (namedtuple) vs baseline bare struct.unpack_from
  validate : compiled bindings.wire.codec.validate_frame vs the pure-Python reference,
             on a 1-record frame and a 100-record frame (ns per record)
  zmq rtt  : bare pyzmq DEALER -> ROUTER echo (separate process) of a NEW_ORDER-sized frame,
             ipc:// and tcp://127.0.0.1, p50/p99/p99.9 via hdrhistogram. This is the floor
             the engine's round trip will be compared to later; it has no target here.
Targets (full run): Python encode <= 2x and decode <= 3x the bare struct calls; compiled
validate <= 300 ns for a one-record frame and >= 10x faster than the Python reference.
"""

from __future__ import annotations

import gc
import os
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import zmq

from bindings.wire.records import CODECS, check_frame_py, encode
from oms_core.latency import QUANTILES, Latencies

TARGET_ENCODE_RATIO = 2.0
TARGET_DECODE_RATIO = 3.0
TARGET_VALIDATE_NS = 300
TARGET_VALIDATE_SPEEDUP = 10.0

_ECHO = r"""
import sys, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.ROUTER)
s.setsockopt(zmq.LINGER, 0)
s.setsockopt(zmq.RCVTIMEO, 10000)
s.bind(sys.argv[1])
print(s.getsockopt_string(zmq.LAST_ENDPOINT), flush=True)
n = int(sys.argv[2])
try:
    for _ in range(n):
        s.send_multipart(s.recv_multipart(copy=False), copy=False)
except zmq.Again:
    pass
"""


def _ns_per_op(fn: Callable[[int], None], n: int, rounds: int) -> float:
    """Best of ``rounds`` runs of ``fn(n)``, GC disabled, in ns per op."""
    best = float("inf")
    gc.disable()
    try:
        for _ in range(rounds):
            t0 = time.perf_counter_ns()
            fn(n)
            best = min(best, (time.perf_counter_ns() - t0) / n)
    finally:
        gc.enable()
    return best


def _row(what: str, ours: float, base: float, label: str = "ratio") -> float:
    ratio = ours / base
    print(f"  {what:<44} {ours:9.1f} ns   baseline {base:9.1f} ns   {label} {ratio:5.2f}")
    return ratio


def bench_codecs(n: int, rounds: int) -> tuple[float, float]:
    codec = CODECS["NEW_ORDER"]
    vals = codec.values({
        "client_order_id": 42, "price": 10125, "trigger_price": 0, "quantity": 1500,
        "account": 1, "strategy": 2, "instrument": 7, "side": 1, "order_type": 2, "tif": 1,
    })
    buf = bytearray(codec.size)
    bare = struct.Struct(codec.struct.format)
    magic, version = 0x4D4F, 1
    pack_into = codec.pack_into
    bare_pack_into = bare.pack_into

    def ours_enc(k: int) -> None:
        for i in range(k):
            pack_into(buf, 0, i, i, i, 0, *vals)

    def base_enc(k: int) -> None:
        for i in range(k):
            bare_pack_into(buf, 0, magic, version, 0, 3, 96, i, i, i, *vals)

    data = bytes(buf)
    decode = codec.decode
    unpack_from = bare.unpack_from

    def ours_dec(k: int) -> None:
        for _ in range(k):
            decode(data, 0)

    def base_dec(k: int) -> None:
        for _ in range(k):
            unpack_from(data, 0)

    print("NEW_ORDER codec (96 bytes), best of", rounds, "x", n)
    base_enc_ns = _ns_per_op(base_enc, n, rounds)
    r_enc = _row("encode RecordCodec.pack_into (reused buffer)",
                 _ns_per_op(ours_enc, n, rounds), base_enc_ns)
    try:
        from bindings.wire.codec import pack_new_order
    except ImportError:
        pack_new_order = None
    if pack_new_order is not None:
        def compiled_enc(k: int) -> None:
            for i in range(k):
                pack_new_order(buf, 0, i, i, i, 42, 10125, 0, 1500, 1, 2, 7, 1, 2, 1)

        _row("encode compiled codec.pack_new_order", _ns_per_op(compiled_enc, n, rounds),
             base_enc_ns)
    r_dec = _row("decode RecordCodec.decode -> namedtuple",
                 _ns_per_op(ours_dec, n, rounds), _ns_per_op(base_dec, n, rounds))
    return r_enc, r_dec


def bench_validate(n: int, rounds: int) -> tuple[float, float]:
    try:
        from bindings.wire.codec import validate_frame
    except ImportError:
        print("  compiled codec not built: run setup.py build_ext --inplace")
        return float("inf"), 0.0
    one = encode("NEW_ORDER", request_id=1, quantity=1)
    many = one * 100

    def run(fn: Callable[[bytes], object], frame: bytes) -> Callable[[int], None]:
        def loop(k: int) -> None:
            for _ in range(k):
                fn(frame)
        return loop

    print("frame validation")
    c1 = _ns_per_op(run(validate_frame, one), n, rounds)
    p1 = _ns_per_op(run(check_frame_py, one), max(1, n // 10), rounds)
    _row("validate 1-record frame (compiled vs Python)", c1, p1)
    c100 = _ns_per_op(run(validate_frame, many), n // 10, rounds) / 100
    p100 = _ns_per_op(run(check_frame_py, many), max(1, n // 100), rounds) / 100
    _row("validate 100-record frame, per record", c100, p100)
    return c1, p1 / c1


def bench_pingpong(endpoint: str, n: int, size: int) -> dict[str, float]:
    warm = min(1000, n)
    p = subprocess.Popen([sys.executable, "-c", _ECHO, endpoint, str(n + warm)],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None
        bound = p.stdout.readline().strip()
        ctx = zmq.Context()
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RCVTIMEO, 5000)
        s.connect(bound)
        msg = encode("NEW_ORDER", request_id=1, quantity=1)
        assert len(msg) == size
        hist = Latencies()
        for _ in range(warm):
            s.send(msg)
            s.recv()
        gc.disable()
        try:
            for _ in range(n):
                t0 = time.perf_counter_ns()
                s.send(msg)
                s.recv()
                hist.record_value(time.perf_counter_ns() - t0)
        finally:
            gc.enable()
        s.close()
        ctx.term()
    finally:
        p.wait(timeout=15)
    return dict(zip(QUANTILES, hist.p50_p99_p999_us(), strict=True))


def main(smoke: bool = False) -> bool:
    n = 2_000 if smoke else 200_000
    rounds = 2 if smoke else 5
    r_enc, r_dec = bench_codecs(n, rounds)
    c1, speedup = bench_validate(n, rounds)
    n_rtt = 500 if smoke else 20_000
    size = CODECS["NEW_ORDER"].size
    print(f"bare pyzmq DEALER/ROUTER echo round trip, {size}-byte frame, {n_rtt} samples (us)")
    with tempfile.TemporaryDirectory() as d:
        for name, ep in (("ipc", f"ipc://{os.path.join(d, 'bench.sock')}"),
                         ("tcp", "tcp://127.0.0.1:*")):
            q = bench_pingpong(ep, n_rtt, size)
            print(f"  {name:<4} p50 {q[50.0]:7.1f}   p99 {q[99.0]:7.1f}   p99.9 {q[99.9]:7.1f}")
    if smoke:
        return True
    ok = True
    checks = [
        (r_enc <= TARGET_ENCODE_RATIO, f"encode ratio {r_enc:.2f} <= {TARGET_ENCODE_RATIO}"),
        (r_dec <= TARGET_DECODE_RATIO, f"decode ratio {r_dec:.2f} <= {TARGET_DECODE_RATIO}"),
        (c1 <= TARGET_VALIDATE_NS, f"validate {c1:.0f} ns <= {TARGET_VALIDATE_NS} ns"),
        (speedup >= TARGET_VALIDATE_SPEEDUP,
         f"validate speedup {speedup:.1f}x >= {TARGET_VALIDATE_SPEEDUP}x"),
    ]
    for passed, text in checks:
        print(("  PASS " if passed else "  MISS ") + text)
        ok &= passed
    return ok


if __name__ == "__main__":
    sys.exit(0 if main(smoke="--smoke" in sys.argv) else 1)
