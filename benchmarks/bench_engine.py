"""The engine process end to end, beside bare pyzmq measured in the same run.

1. Round trip client -> engine (decode, every risk check, insert, encode) -> ACK back, over
   ipc:// and tcp://127.0.0.1, p50 / p99 / p99.9, beside a bare pyzmq DEALER/ROUTER
   ping-pong with the same message sizes (96-byte request, the engine's 216-byte answer:
   ACK + ORDER_UPDATE). Targets: the OMS adds <= 25% at p50 and <= 50% at p99 over that
   bare pyzmq server (a Python ``recv_multipart`` / ``send_multipart`` loop). Also measured
   in the same run, for information: a bare echo that calls libzmq directly from C
   (``oms_core.engine.zmqio.bare_echo``, the floor for any ROUTER server here). The client is
   the same Python pyzmq DEALER for all three, and it does one round trip with each in turn,
   so all see the same machine state.
2. Sustained throughput: batched NEW_ORDER frames in, GW_NEW_ORDER records out to a gateway
   PULL socket (another process), counted at the gateway; beside bare pyzmq PUSH/PULL of one
   96-byte record per message. Targets: >= 500,000 orders/s over ipc and >= 60% of the bare
   PUSH/PULL record rate.
3. Latency under a steady open-loop load of 10k and 50k orders/s (ipc), one order per
   message from one spinning Python DEALER; beside the same load on the bare pyzmq and the
   bare libzmq (C) echo servers (the floor this client and machine allow). No target (the
   issue asks to report it).
4. The audit trail: a journaled engine with it (the default) beside one without
   (``OMS_ENGINE_AUDIT=0``, for this measurement only), round trips alternating one by one
   and batched forwarding rates alternating run by run. No target; about 10% at most.
5. Market data applied by the engine loop, in this process: frames of 1,000 GW_MARKET_DATA
   records (every one a trade, flag TRADE: prices, the engine-held stops and the live bars of
   every bar interval of ``examples/oms.toml``) through ``EngineLoop.on_gateway_frame``,
   without a journal; records per second. No target: it is quoted before / after a change
   of the market-data path. Beside it, the drain of a gateway socket: frames of one
   GW_MARKET_DATA record each (as a gateway sends them) taken off a PULL and applied, by the
   engine's compiled sink (``EngineSink``) and by a pyzmq ``recv`` loop doing what the engine
   did before the sink (``recv(NOBLOCK)``, begin, ``on_gateway_frame``, the flush's checks),
   same frames, alternating runs; frames per second of each.
5. CURVE on beside CURVE off: the same engine configuration over tcp://127.0.0.1 started twice,
   once with security on (CURVE + ZAP; the engine's and the client's keys made by
   ``oms keys DIR NAME...``, the client a trader of accounts 1-3) and once off; one round
   trip with each in turn (p50 / p99 / p99.9), then pipelined throughput (a window of
   orders in flight, one order per message) in alternating blocks. Reported as the on/off
   ratio: the cost of the encryption (every message is encrypted and authenticated by each
   side). No target: the issue asks to report it.

The engine runs in its own process (``python -m oms_core.engine``); so do the bare servers.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

import zmq

from bindings.wire.codec import pack_new_order
from oms_core.engine.process import ROOT, EngineProcess, base_config, write_keys
from oms_core.latency import Latencies

REQ_SIZE = 96
_EVENTS = zmq.EVENTS
ANSWER_SIZE = 88 + 128  # ACK + ORDER_UPDATE

# the echo ROUTERs keep the engine's high-water marks (a ROUTER drops at SNDHWM)
_ECHO = r"""
import sys, zmq
ctx = zmq.Context(); s = ctx.socket(zmq.ROUTER)
s.setsockopt(zmq.SNDHWM, 1_000_000); s.setsockopt(zmq.RCVHWM, 1_000_000); s.bind(sys.argv[1])
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
s.setsockopt(zmq.RCVTIMEO, 30_000)  # bounded: what never comes ends the count
want, rec, n, first = int(sys.argv[2]), int(sys.argv[4]), 0, 0.0
while n < want:
    try:
        f = s.recv(copy=False)
    except zmq.Again:
        break
    if not first:
        first = time.perf_counter()
    n += len(f) // rec
print(n, max(time.perf_counter() - first, 1e-9), flush=True)
"""

_ECHO_C = r"""
import sys, zmq
from bindings.libzmq import share_with_extensions
share_with_extensions()
from oms_core.engine.zmqio import bare_echo
ctx = zmq.Context(); s = ctx.socket(zmq.ROUTER)
s.setsockopt(zmq.SNDHWM, 1_000_000); s.setsockopt(zmq.RCVHWM, 1_000_000); s.bind(sys.argv[1])
print(s.getsockopt_string(zmq.LAST_ENDPOINT), flush=True)
bare_echo(s, b"\0" * int(sys.argv[2]))
"""


def _child(code: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    p = subprocess.Popen([sys.executable, "-c", code, *args], text=True,
                         stdout=subprocess.PIPE, cwd=ROOT)
    assert p.stdout is not None
    return p, p.stdout.readline().strip()


def _ping_pong(sock: zmq.Socket, n: int, make: Any) -> Latencies:
    h = Latencies()
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
    cfg = base_config(tmp, transport, max_orders=1 << 20, writer="", timer_ms=100)
    cfg["exchanges"]["exchange1"]["orders"] = gateway or ""
    return cfg


def round_trip(transport: str, n: int) -> dict[str, Any]:
    """Percentiles (us) of bare pyzmq, bare libzmq (C) and the engine, one round trip each in
    turn so all see the same machine state."""
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)

        def ep(name: str) -> str:
            return f"ipc://{tmp}/{name}" if transport == "ipc" else "tcp://127.0.0.1:*"

        echo, echo_ep = _child(_ECHO, ep("echo"), str(ANSWER_SIZE))
        echo_c, echo_c_ep = _child(_ECHO_C, ep("echo-c"), str(ANSWER_SIZE))
        ctx = zmq.Context()
        try:
            with EngineProcess(_engine_cfg(tmp, transport), tmp) as e:
                socks = {}
                hists = {name: Latencies() for name in ("bare", "bare_c", "oms")}
                for name, endpoint in (("bare", echo_ep), ("bare_c", echo_c_ep),
                                       ("oms", e.endpoints["client"])):
                    s = socks[name] = ctx.socket(zmq.DEALER)
                    s.setsockopt(zmq.LINGER, 0)
                    s.connect(endpoint)
                req = b"\0" * REQ_SIZE
                for name, s in socks.items():  # warm up
                    _ping_pong(s, min(n, 2000), (lambda i: req) if name.startswith("bare")
                               else _order_maker(1))
                # one round trip each in turn: a burst of load from elsewhere on the machine
                # lands on all three alike instead of on whichever ran at that moment
                runs = [(socks[name], (lambda i: req) if name.startswith("bare")
                         else _order_maker(10_000_000), hists[name]) for name in socks]
                clock = time.perf_counter_ns
                for i in range(n):
                    for s, make, h in runs:
                        msg = make(i)
                        t0 = clock()
                        s.send(msg, copy=True)
                        s.recv(copy=True)
                        h.record_value(clock() - t0)
                socks["bare"].send(b"stop")
                socks["bare_c"].send(b"stop")
            e_stats = e.stats()
        finally:
            echo.wait(5)
            echo_c.wait(5)
            ctx.destroy(0)
    out: dict[str, Any] = {name: h.p50_p99_p999_us() for name, h in hists.items()}
    out["acks"] = e_stats.get("acks", 0)
    return out


def _order_frames(n: int, batch: int) -> list[bytes]:
    """``n`` NEW_ORDERs (client order ids 1..n), ``batch`` per frame."""
    frames = []
    for f in range(n // batch):
        buf = bytearray(REQ_SIZE * batch)
        for i in range(batch):
            cl = 1 + f * batch + i
            pack_new_order(buf, i * REQ_SIZE, cl, cl, 0, cl, 4_999_000, 0, 1, 2, 0, 1, 1, 2, 1)
        frames.append(bytes(buf))
    return frames


def _batch_client(ctx: zmq.Context, endpoint: str) -> zmq.Socket:
    """The DEALER of the batched runs (the caller keeps it open until the sink has counted:
    closed with LINGER 0, it would drop what it still queues)."""
    client = ctx.socket(zmq.DEALER)
    client.setsockopt(zmq.LINGER, 0)
    client.setsockopt(zmq.SNDHWM, 0)
    client.setsockopt(zmq.RCVHWM, 0)
    client.connect(endpoint)
    return client


def _send_batched(client: zmq.Socket, frames: list[bytes]) -> int:
    """Send ``frames`` as fast as it goes, reading the acks that are there between sends
    (never waiting for them); return how many were read."""
    acks = 0
    for fr in frames:
        client.send(fr, copy=False)
        while client.poll(0):
            client.recv(copy=False)
            acks += 1
    return acks


def _all_forwarded(got: int, n: int) -> None:
    if got < n:
        raise RuntimeError(f"the gateway sink received {got} of {n} orders within 30 s")


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
            frames = _order_frames(n, batch)
            client = _batch_client(ctx, e.endpoints["client"])
            t0 = time.perf_counter()
            _send_batched(client, frames)
            out = gw.stdout.readline().split() if gw.stdout else ["0", "1"]
            elapsed_total = time.perf_counter() - t0
            gw.wait(10)
        e_stats = e.stats()
        ctx.destroy(0)
    got, secs = int(out[0]), float(out[1])
    _all_forwarded(got, n)
    return {"bare_rate": bare_rate, "oms_rate": got / secs, "oms_rate_end_to_end":
            got / elapsed_total, "forwarded": got, "acks": e_stats.get("acks", 0)}


def _open_loop(s: zmq.Socket, rate: int, seconds: float, make: Any,
               by_request_id: bool) -> tuple[float, Latencies, int]:
    """Send ``make(i)`` at ``rate``/s (one message each) from a spinning Python DEALER and
    time each answer: matched by request id (the engine), else in order (the echoes)."""
    h = Latencies()
    sent: dict[int, int] = {}
    order: deque[int] = deque()
    clock = time.perf_counter_ns
    interval = 1_000_000_000 // rate
    n = int(rate * seconds)
    rid_at = struct.Struct("<Q").unpack_from
    events = s.getsockopt
    start = last = clock()
    nxt = start
    i = got = 0
    while got < n and clock() - start < (seconds + 5) * 1e9:
        now = clock()
        if i < n and now >= nxt:
            msg = make(i)
            if by_request_id:
                sent[rid_at(msg, 16)[0]] = now
            else:
                order.append(now)
            s.send(msg, copy=True)
            last = now
            i += 1
            nxt += interval
        # ask before reading: a recv that raises Again costs more than the question
        while events(_EVENTS) & zmq.POLLIN:
            rep = s.recv(copy=True)
            t = clock()
            t0 = sent.pop(rid_at(rep, 16)[0], 0) if by_request_id else order.popleft()
            if t0:
                h.record_value(t - t0)
                got += 1
    return (i - 1) / max((last - start) / 1e9, 1e-9), h, got  # the rate actually sent


def under_load(rate: int, seconds: float, target: str = "oms") -> dict[str, Any]:
    """Latency under a steady open-loop load (ipc) of one NEW_ORDER (96 B) per message.

    ``target``: ``oms`` (the engine), ``bare_pyzmq`` / ``bare_c`` (the echo servers of the
    round trip: the floor that this client and machine allow).
    """
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ctx = zmq.Context()
        try:
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            if target.startswith("bare"):
                echo, ep = _child(_ECHO if target == "bare_pyzmq" else _ECHO_C,
                                  f"ipc://{tmp}/echo", str(ANSWER_SIZE))
                s.connect(ep)
                req = b"\0" * REQ_SIZE
                _ping_pong(s, 1000, lambda i: req)
                achieved, h, got = _open_loop(s, rate, seconds, lambda i: req, False)
                s.send(b"stop")
                echo.wait(10)
            else:
                with EngineProcess(_engine_cfg(tmp, "ipc"), tmp) as e:
                    s.connect(e.endpoints["client"])
                    _ping_pong(s, 1000, _order_maker(1))
                    achieved, h, got = _open_loop(s, rate, seconds, _order_maker(5_000_000),
                                                  True)
        finally:
            ctx.destroy(0)
    return {"rate": rate, "achieved": achieved, "pct": h.p50_p99_p999_us(), "n": got}


def md_apply(n: int, batch: int = 1000) -> float:
    """GW_MARKET_DATA trade records applied per second by the engine loop (section 4)."""
    from bindings.wire import records as wire
    from oms_core.engine.config import build_core, load_engine_config
    from oms_core.engine.server import Engine

    cfg = load_engine_config(ROOT / "examples" / "oms.toml")
    engine = Engine(build_core(cfg), config=cfg)
    ids = sorted(cfg.oms.ids.instruments.values())
    trade = 2  # MdFlag.TRADE
    frames = [b"".join(
        wire.encode("GW_MARKET_DATA", 0, f * batch + i, 0, bid=4_999_900 + i % 50,
                    bid_qty=10**6, ask=5_000_100 + i % 50, ask_qty=10**6,
                    last=5_000_000 + (i * 7919) % 200, last_qty=10, md_flags=trade,
                    instrument=ids[i % len(ids)]) for i in range(batch)) for f in range(4)]
    loop = engine.loop
    ts, step = time.time_ns(), 1_000_000  # 1 ms apart: bars of every interval close
    done, t0 = 0, time.perf_counter()
    while done < n:
        loop.on_gateway_frame(frames[done // batch % 4], ts)
        ts += step
        done += batch
    return done / (time.perf_counter() - t0)


def gateway_drain(n: int, rounds: int = 3) -> dict[str, float]:
    """Frames/s of one GW_MARKET_DATA record each taken off a gateway PULL and applied by the
    loop: the compiled sink vs the pyzmq drain the engine had before it (section 5)."""
    from bindings.wire import records as wire
    from bindings.wire.spec import Role
    from oms_core.engine.config import build_core, load_engine_config
    from oms_core.engine.idset import EVERY, NOBODY
    from oms_core.engine.server import Engine
    from oms_core.engine.sessions import SessionTable
    from oms_core.engine.zmqio import EngineSink

    cfg = load_engine_config(ROOT / "examples" / "oms.toml")
    loop = Engine(build_core(cfg), config=cfg).loop
    ids = sorted(cfg.oms.ids.instruments.values())
    frames = [wire.encode("GW_MARKET_DATA", 0, i, 0, bid=4_999_900 + i % 50, bid_qty=10**6,
                          ask=5_000_100 + i % 50, ask_qty=10**6, instrument=ids[i % len(ids)])
              for i in range(64)]
    ctx = zmq.Context()
    try:
        pull, push, router = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH), ctx.socket(zmq.ROUTER)
        for s in (pull, push, router):
            s.setsockopt(zmq.LINGER, 0)
        pull.setsockopt(zmq.RCVHWM, 0)
        push.setsockopt(zmq.SNDHWM, 0)
        pull.bind("inproc://gw-events")
        push.connect("inproc://gw-events")
        router.bind("inproc://clients")
        counters: dict[str, int] = {}
        sink = EngineSink(loop, SessionTable(None, frozenset(), frozenset(), 64, 1000, counters),
                          router, gateway_events=pull, counters=counters)
        answers: list[bytes] = []
        admin = int(Role.ADMIN)

        def pyzmq_drain() -> None:  # Engine._drain_gateway + _flush(None), security off
            for _ in range(n):
                frame = pull.recv(zmq.NOBLOCK)
                loop.begin(admin, EVERY, NOBODY, False)
                loop.on_gateway_frame(frame, time.time_ns())
                loop.commit()
                if answers:
                    answers.clear()
                if loop.gw_pending or loop.wr.n or loop.n_routed:
                    raise AssertionError("market data sends nothing here")

        def sink_drain() -> None:
            got = 0
            while got < n:
                got += sink.drain_all()

        best = {"sink": 0.0, "pyzmq": 0.0}
        for _ in range(rounds):
            for name, drain in (("sink", sink_drain), ("pyzmq", pyzmq_drain)):
                for i in range(n):  # inproc, no HWM: queued when send returns
                    push.send(frames[i & 63])
                t0 = time.perf_counter()
                drain()
                best[name] = max(best[name], n / (time.perf_counter() - t0))
        sink = None  # holds raw socket handles: gone before the sockets close
    finally:
        ctx.destroy(0)
    return best


def _forward_rate(tmp: Path, n: int, batch: int, env: dict[str, str], journal: bool) -> float:
    """Orders/s an engine (``journal``: with one) forwards to a gateway sink, batched
    NEW_ORDERs in."""
    gw_ep = f"ipc://{tmp}/gw-orders"
    ctx = zmq.Context()
    # no snapshot: one every million journal records would land in one run and not the other
    args = ("--journal", str(tmp / "journal"), "--snapshot-every", "0") if journal else ()
    try:
        with EngineProcess(_engine_cfg(tmp, "ipc", gw_ep), tmp, env=env, extra_args=args) as e:
            gw, _ = _child(_SINK, gw_ep, str(n), "connect", "88")
            client = _batch_client(ctx, e.endpoints["client"])
            _send_batched(client, _order_frames(n, batch))
            out = gw.stdout.readline().split() if gw.stdout else ["0", "1"]
            gw.wait(10)
    finally:
        ctx.destroy(0)
    _all_forwarded(int(out[0]), n)
    return int(out[0]) / float(out[1])


def audit_cost(n_rt: int, n_tp: int, batch: int = 1000, rounds: int = 2) -> dict[str, Any]:
    """The audit trail's cost: an engine with it (the default) beside one without
    (``OMS_ENGINE_AUDIT=0``), in the same run. Round trips (ipc, journaled engines) alternate
    between the two engines one by one; forwarding rates (with and without a journal)
    alternate run by run, ``rounds`` each, the best of each kept."""
    off = {"OMS_ENGINE_AUDIT": "0"}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for name in ("on", "off"):
            os.makedirs(tmp / name, exist_ok=True)
        ctx = zmq.Context()
        try:
            with EngineProcess(_engine_cfg(tmp / "on", "ipc"), tmp / "on",
                               extra_args=("--journal", str(tmp / "on" / "journal"))) as on, \
                    EngineProcess(_engine_cfg(tmp / "off", "ipc"), tmp / "off", env=off,
                                  extra_args=("--journal", str(tmp / "off" / "journal"))
                                  ) as no:
                socks = {}
                for name, e in (("on", on), ("off", no)):
                    s = socks[name] = ctx.socket(zmq.DEALER)
                    s.setsockopt(zmq.LINGER, 0)
                    s.connect(e.endpoints["client"])
                    _ping_pong(s, min(n_rt, 2000), _order_maker(1))
                hists = {name: Latencies() for name in socks}
                makes = {name: _order_maker(10_000_000) for name in socks}
                clock = time.perf_counter_ns
                for i in range(n_rt):
                    for name, s in socks.items():
                        msg = makes[name](i)
                        t0 = clock()
                        s.send(msg, copy=True)
                        s.recv(copy=True)
                        hists[name].record_value(clock() - t0)
        finally:
            ctx.destroy(0)
        rates: dict[str, list[float]] = {}
        for k in range(rounds):
            for journal in (True, False):
                for name, env in (("on", {}), ("off", off)):
                    run = tmp / f"tp-{name}-{journal}-{k}"
                    os.makedirs(run)
                    key = f"{name}_journal" if journal else name
                    rates.setdefault(key, []).append(
                        _forward_rate(run, n_tp, batch, env, journal))
    return {"rt": {name: h.p50_p99_p999_us() for name, h in hists.items()},
            "rate": {name: max(r) for name, r in rates.items()}}


def _curve_keys(cfg: dict[str, Any]) -> Any:
    """Security on in ``cfg`` with one trader of accounts 1..3, the keys made as ``oms keys``
    makes them; the client's keys."""
    cfg["security"]["mode"] = "on"
    cfg["security"]["users"] = {"bench-client": {
        "role": "trader", "clients": ["account1", "account2", "account3"]}}
    return write_keys(cfg)["bench-client"]


def _pipelined(sock: zmq.Socket, make: Any, n: int, window: int) -> float:
    """Seconds to have ``n`` orders answered with up to ``window`` in flight."""
    send, recv, poll = sock.send, sock.recv, sock.poll
    sent = got = 0
    t0 = time.perf_counter()
    while got < n:
        while sent < n and sent - got < window:
            send(make(sent), copy=True)
            sent += 1
        if not poll(10_000):
            raise RuntimeError(f"no answer in 10 s after {got} of {n} orders")
        recv(copy=True)
        got += 1
    return time.perf_counter() - t0


def curve_on_off(n: int, blocks: int, block: int, window: int = 64) -> dict[str, Any]:
    """Round trip (us) and pipelined throughput (orders/s) of the same engine over
    tcp://127.0.0.1 with CURVE on and off, interleaved (section 5)."""
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "on").mkdir()
        (tmp / "off").mkdir()
        ctx = zmq.Context()
        try:
            cfg_on, cfg_off = _engine_cfg(tmp / "on", "tcp"), _engine_cfg(tmp / "off", "tcp")
            client_keys = _curve_keys(cfg_on)
            with EngineProcess(cfg_on, tmp / "on") as on, \
                    EngineProcess(cfg_off, tmp / "off") as off:
                socks: dict[str, zmq.Socket] = {}
                for name, e, keys in (("on", on, client_keys), ("off", off, None)):
                    s = socks[name] = ctx.socket(zmq.DEALER)
                    s.setsockopt(zmq.LINGER, 0)
                    if keys is not None:
                        keys.apply(s)
                    s.connect(e.endpoints["client"])
                for s in socks.values():
                    _ping_pong(s, min(n, 2000), _order_maker(1))  # warm up (and handshake)
                keyless = ctx.socket(zmq.DEALER)
                keyless.setsockopt(zmq.LINGER, 0)
                keyless.connect(on.endpoints["client"])
                keyless.send(_order_maker(5_000_000)(0))
                if keyless.poll(300):
                    raise RuntimeError("the engine with security on answered a keyless client")
                keyless.close()
                hists = {name: Latencies() for name in socks}
                runs = [(socks[name], _order_maker(10_000_000), hists[name]) for name in socks]
                clock = time.perf_counter_ns
                for i in range(n):
                    for s, make, h in (runs if i % 2 else runs[::-1]):
                        msg = make(i)
                        t0 = clock()
                        s.send(msg, copy=True)
                        s.recv(copy=True)
                        h.record_value(clock() - t0)
                secs = dict.fromkeys(socks, 0.0)
                for b in range(blocks):
                    for name in (("on", "off") if b % 2 else ("off", "on")):
                        secs[name] += _pipelined(socks[name],
                                                 _order_maker(20_000_000 + b * block), block,
                                                 window)
            stats = {"on": on.stats(), "off": off.stats()}
        finally:
            ctx.destroy(0)
    return {"pct": {name: h.p50_p99_p999_us() for name, h in hists.items()},
            "rate": {name: blocks * block / t for name, t in secs.items()},
            "acks": {name: st.get("acks", 0) for name, st in stats.items()},
            "sent": min(n, 2000) + n + blocks * block}


def report_curve(smoke: bool) -> None:
    """Section 5: print the CURVE on / off round trip and throughput and their ratio."""
    n, blocks, block, window = (1_000, 4, 2_000, 64) if smoke else (20_000, 10, 20_000, 64)
    r = curve_on_off(n, blocks, block, window)
    on, off = r["pct"]["on"], r["pct"]["off"]
    print(f"  CURVE on vs off, same engine configuration, tcp://127.0.0.1, one DEALER each, "
          f"NEW_ORDER 96 B -> ACK + ORDER_UPDATE 216 B; orders sent to each engine "
          f"{r['sent']:,}, acknowledged on {r['acks']['on']:,} / off {r['acks']['off']:,}; a "
          f"keyless client of the secured engine got no answer")
    print(f"      round trip n={n} each, interleaved, p50/p99/p99.9: security on (CURVE) = "
          f"{on[0]:.1f}/{on[1]:.1f}/{on[2]:.1f} us | off = {off[0]:.1f}/{off[1]:.1f}/"
          f"{off[2]:.1f} us | on/off p50 {on[0] / off[0]:.2f} ({on[0] - off[0]:+.1f} us), "
          f"p99 {on[1] / off[1]:.2f} ({on[1] - off[1]:+.1f} us)")
    ron, roff = r["rate"]["on"], r["rate"]["off"]
    print(f"      throughput, {window} orders in flight, {blocks} alternating blocks of "
          f"{block:,}: on {ron:,.0f} orders/s | off {roff:,.0f} orders/s | on/off "
          f"{ron / roff:.2f} (no target: reported)")


def main(smoke: bool = False) -> bool:
    ok = True
    n_rt = 2_000 if smoke else 20_000
    print("bench_engine: engine process (python -m oms_core.engine) vs bare pyzmq, same run")
    for transport in ("ipc", "tcp"):
        r = round_trip(transport, n_rt)
        b, o, c = r["bare"], r["oms"], r["bare_c"]
        r50, r99 = o[0] / b[0], o[1] / b[1]

        def fmt(x: tuple[float, float, float]) -> str:
            return f"{x[0]:.1f}/{x[1]:.1f}/{x[2]:.1f} us"

        print(f"  round trip {transport:3s} n={n_rt} p50/p99/p99.9: bare pyzmq = {fmt(b)} | "
              f"oms = {fmt(o)} | ratio p50 {r50:.2f} (target <= 1.25), p99 {r99:.2f} "
              f"(target <= 1.50)")
        print(f"      same run: bare libzmq (C echo) = {fmt(c)} (oms/that p50 {o[0] / c[0]:.2f}"
              f", p99 {o[1] / c[1]:.2f})")
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
    names = {"oms": "oms", "bare_pyzmq": "bare pyzmq echo", "bare_c": "bare libzmq (C) echo"}
    for rate in (10_000, 50_000):
        for target, name in names.items():
            u = under_load(rate, 0.3 if smoke else 2.0, target)
            p = u["pct"]
            print(f"  under load {rate:,}/s ipc, {name:23s} (sent {u['achieved']:,.0f}/s, "
                  f"answered {u['n']}): p50/p99/p99.9 = {p[0]:.1f}/{p[1]:.1f}/{p[2]:.1f} us")
    n_md = 200_000 if smoke else 5_000_000
    print(f"  market data applied by the loop (in process, frames of 1000 trades, "
          f"n={n_md}): {md_apply(n_md):,.0f} records/s")
    n_gd = 50_000 if smoke else 500_000
    g = gateway_drain(n_gd)
    print(f"  gateway PULL drained and applied (in process, one GW_MARKET_DATA per frame, "
          f"n={n_gd}, best of 3): compiled sink {g['sink']:,.0f} frames/s | pyzmq recv loop "
          f"(the drain before the sink) {g['pyzmq']:,.0f} frames/s | ratio "
          f"{g['sink'] / g['pyzmq']:.2f}; no target")
    report_curve(smoke)
    a = audit_cost(2_000 if smoke else 20_000, 50_000 if smoke else 500_000,
                   rounds=1 if smoke else 2)
    on, off, r = a["rt"]["on"], a["rt"]["off"], a["rate"]
    print(f"  audit trail on / off (OMS_ENGINE_AUDIT=0), ipc: journaled round trip p50/p99 "
          f"{on[0]:.1f}/{on[1]:.1f} vs {off[0]:.1f}/{off[1]:.1f} us (on/off p50 "
          f"{on[0] / off[0]:.2f}, p99 {on[1] / off[1]:.2f}); forwarded orders/s "
          f"{r['on']:,.0f} vs {r['off']:,.0f} (on/off {r['on'] / r['off']:.2f}), journaled "
          f"{r['on_journal']:,.0f} vs {r['off_journal']:,.0f} (on/off "
          f"{r['on_journal'] / r['off_journal']:.2f}); no target")
    print(f"  bench_engine: {'OK' if ok else 'TARGET MISSED'}")
    return ok


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    sys.exit(0 if main("--smoke" in sys.argv) else 1)
