"""Gateway market-data throughput and websocket round trip, each beside a bare picows baseline.

1. Sustained market data: a picows server in a subprocess blasts N contiguous Binance
   combined-stream depthUpdate messages (3 levels per side; every message moves the best
   bid, so every message yields one GW_MARKET_DATA: the gateway only publishes when the top
   of book changes). The gateway (WsConnection + BinanceGateway.on_md_message: route,
   compiled decode+apply, publish on a ZeroMQ PUB) runs in this process; the subscriber is
   a separate process (as the engine is) that counts the GW_MARKET_DATA it receives and
   finds drops by gaps in ``seq``. The claim is DELIVERED messages per second, from the
   gateway's first websocket message to the subscriber's last receipt (CLOCK_MONOTONIC is
   system wide). A bare picows client that only counts runs beside it; it reads as the
   server writes, so it is bound by the server's send rate (~150k/s here), while the
   gateway, started later on a busier machine, often drains a backlog: its processing
   rate can exceed "bare". The delivered rate is the number that counts.
   Target (full run): >= 100,000 msgs/s delivered, no drops.
2. Round trip: a picows echo server in a subprocess. Bare: picows client send -> echo ->
   on_ws_frame. Gateway: WsConnection.send -> echo -> gateway dispatch of a bookTicker
   (route, parse, top-of-book compare, publish on the PUB, which a SUB in this process
   receives; the next sample starts once it has). Target: gateway p50 <= 1.3x bare p50.
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import time
from typing import NamedTuple

import orjson
import uvloop
import zmq
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect, ws_create_server

from gateways.binance.gateway import BinanceGateway
from gateways.config import EngineEndpoints, GatewayConfig, Instrument
from gateways.engine_link import EngineLink, make_context
from oms_core.latency import Latencies

TARGET_MSGS = 100_000
TARGET_RTT_RATIO = 1.3
INST = Instrument(id=1, symbol="BTCUSDT", price_decimals=2, qty_decimals=8)


# ---- server side (subprocess) -------------------------------------------------------------

def _depth_messages(n: int) -> list[bytes]:
    # Message i sets the bid at P + i % 50 and deletes the previous message's best bid, so
    # the best bid moves on every message; asks sit above at P + 100.. the same way.
    p0 = 3_000_000
    out = []
    for i in range(n):
        u = 1001 + i
        px = p0 + (i % 50)
        prev = p0 + ((i - 1) % 50)
        bids = [[f"{px / 100:.2f}", f"{(i % 7 + 1) / 10:.8f}"],
                [f"{prev / 100:.2f}", "0.00000000"], [f"{(p0 - 5) / 100:.2f}", "1.50000000"]]
        asks = [[f"{(px + 100) / 100:.2f}", "0.20000000"],
                [f"{(prev + 100) / 100:.2f}", "0.00000000"],
                [f"{(p0 + 160) / 100:.2f}", "2.00000000"]]
        out.append(orjson.dumps({"stream": "btcusdt@depth@100ms", "data": {
            "e": "depthUpdate", "E": 1_700_000_000_000 + i, "s": "BTCUSDT", "U": u, "u": u,
            "b": bids, "a": asks}}))
    return out


async def _serve(mode: str, n: int) -> None:
    msgs = _depth_messages(n) if mode == "blast" else []

    class Srv(WSListener):
        def on_ws_connected(self, transport: WSTransport) -> None:
            if mode == "blast":
                asyncio.get_running_loop().create_task(self._blast(transport))

        async def _blast(self, t: WSTransport) -> None:
            for i in range(0, len(msgs), 256):
                for m in msgs[i:i + 256]:
                    t.send(WSMsgType.TEXT, m)
                await asyncio.sleep(0)

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type is WSMsgType.TEXT:
                transport.send(WSMsgType.TEXT, frame.get_payload_as_bytes())
            elif frame.msg_type is WSMsgType.CLOSE:
                transport.disconnect()

    server = await ws_create_server(lambda _r: Srv(), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.sleep(120)  # the parent kills us long before


def _subscribe(endpoint: str) -> None:
    """Subscriber process: count GW_MARKET_DATA, find seq gaps, report on b"end"."""
    from gateways.engine_link import MD_SEQ_OFFSET

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 0)  # unlimited: any loss is the PUB's
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(endpoint)
    ready = False
    count = gaps = 0
    first = last = 0
    last_seq = -1
    recv = sub.recv
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if not sub.poll(1000):
            continue
        m = recv()
        if len(m) > 16:
            seq = int.from_bytes(m[MD_SEQ_OFFSET:MD_SEQ_OFFSET + 8], "little")
            last = time.perf_counter_ns()
            if count == 0:
                first = last
            elif seq != last_seq + 1:
                gaps += seq - last_seq - 1
            last_seq = seq
            count += 1
        elif m == b"end":
            break
        elif not ready:  # warm-up ping: the subscription has reached the PUB
            ready = True
            print("ready", flush=True)
    print(count, gaps, first, last, flush=True)


def _spawn(mode: str, n: int) -> tuple[subprocess.Popen[str], int]:
    p = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_gateway", "--server", mode,
                          str(n)], stdout=subprocess.PIPE, text=True, env=_child_env(),
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert p.stdout is not None
    line = p.stdout.readline()
    if not line:
        raise RuntimeError("benchmark server failed to start")
    return p, int(line)


# ---- client side -------------------------------------------------------------------------

def _child_env() -> dict[str, str]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _gateway(ctx: zmq.asyncio.Context) -> tuple[BinanceGateway, EngineLink, zmq.Socket]:
    import zmq.asyncio  # noqa: F401

    cfg = GatewayConfig(kind="binance", instruments=[INST], user_stream=False,
                        engine=EngineEndpoints(orders="tcp://127.0.0.1:*",
                                               events="tcp://127.0.0.1:*",
                                               market_data="tcp://127.0.0.1:*", bind=True))
    link = EngineLink(cfg.engine, 1, ctx=ctx)
    sub = zmq.Context.shadow(ctx.underlying).socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.RCVHWM, 1_000_000)
    sub.connect(link._md.getsockopt(zmq.LAST_ENDPOINT).decode())
    gw = BinanceGateway(cfg, link)
    snap = orjson.dumps({"lastUpdateId": 1000,
                         "bids": [[f"{(3_000_000 - i) / 100:.2f}", "1"] for i in range(60, 200)],
                         "asks": [[f"{(3_000_100 + i) / 100:.2f}", "1"] for i in range(200)]})
    st = gw.md["BTCUSDT"]
    st.book.apply_snapshot(snap)
    st.stale = False
    return gw, link, sub


class MdResult(NamedTuple):
    bare_rate: float        # msgs/s a bare picows client reads
    gw_rate: float          # msgs/s the gateway processes (route, decode, apply, publish)
    delivered_rate: float   # GW_MARKET_DATA/s received by the subscriber process
    published: int          # GW_MARKET_DATA handed to ZeroMQ during the blast
    delivered: int          # ... received by the subscriber
    dropped: int            # published - delivered
    seq_gaps: int           # missing seq numbers seen by the subscriber


async def _throughput(n: int) -> MdResult:

    from gateways.ws import WsConnection

    # bare picows: count only
    proc, port = _spawn("blast", n)
    try:
        done = asyncio.get_running_loop().create_future()
        times: list[int] = []

        class Bare(WSListener):
            count = 0

            def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
                if frame.msg_type is WSMsgType.TEXT:
                    frame.get_payload_as_bytes()
                    Bare.count += 1
                    if Bare.count == 1:
                        times.append(time.perf_counter_ns())
                    if Bare.count == n:
                        times.append(time.perf_counter_ns())
                        done.set_result(None)

        t, _ = await ws_connect(Bare, f"ws://127.0.0.1:{port}/")
        await asyncio.wait_for(done, 60)
        t.disconnect()
        bare_rate = (n - 1) / ((times[1] - times[0]) / 1e9)
    finally:
        proc.kill()
        proc.wait()

    # the gateway, publishing to a subscriber process
    proc, port = _spawn("blast", n)
    ctx = make_context()
    subproc: subprocess.Popen[str] | None = None
    try:
        gw, link, sub = _gateway(ctx)
        sub.close(0)  # the in-process SUB is for the round trip; here a process subscribes
        endpoint = link._md.getsockopt(zmq.LAST_ENDPOINT).decode()
        subproc = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_gateway", "--sub",
                                    endpoint], stdout=subprocess.PIPE, text=True,
                                   env=_child_env())
        assert subproc.stdout is not None
        # warm up until the subscription has propagated (ZeroMQ's slow joiner)
        loop = asyncio.get_running_loop()
        line_fut = loop.run_in_executor(None, subproc.stdout.readline)
        t_end = time.monotonic() + 20
        while not line_fut.done():
            if time.monotonic() > t_end:
                raise RuntimeError("subscriber process never saw a message")
            link._md.send(b"w")
            await asyncio.sleep(0.01)
        if line_fut.result().strip() != "ready":
            raise RuntimeError("subscriber process failed to start")
        done2 = loop.create_future()
        marks: list[int] = []
        handler = gw.on_md_message
        pub0 = link.n_md_published

        def on_msg(payload: bytes) -> None:
            handler(payload)
            if gw.n_md == 1:
                marks.append(time.perf_counter_ns())
            elif gw.n_md == n:
                marks.append(time.perf_counter_ns())
                done2.set_result(None)

        conn = WsConnection("bench", f"ws://127.0.0.1:{port}/", on_msg)
        conn.start()
        await asyncio.wait_for(done2, 60)
        published = link.n_md_published - pub0
        link._md.send(b"end")
        out = await asyncio.wait_for(loop.run_in_executor(None, subproc.stdout.readline), 30)
        delivered, gaps, _t_first, t_last = (int(x) for x in out.split())
        await conn.stop()
        book = gw.md["BTCUSDT"].book
        assert book.n_applied == n and gw.n_malformed == 0, (book.n_applied, gw.n_malformed)
        gw_rate = (n - 1) / ((marks[1] - marks[0]) / 1e9)
        delivered_rate = delivered / ((t_last - marks[0]) / 1e9)
        link.close()
    finally:
        if subproc is not None:
            subproc.kill()
            subproc.wait()
        ctx.destroy(0)
        proc.kill()
        proc.wait()
    return MdResult(bare_rate, gw_rate, delivered_rate, published, delivered,
                    published - delivered, gaps)


async def _rtt(n: int) -> tuple[list[int], list[int]]:

    from gateways.ws import WsConnection

    proc, port = _spawn("echo", 0)
    ctx = make_context()
    try:
        loop = asyncio.get_running_loop()
        fut: list[asyncio.Future[None]] = [loop.create_future()]

        class Bare(WSListener):
            def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
                if frame.msg_type is WSMsgType.TEXT:
                    frame.get_payload_as_bytes()
                    fut[0].set_result(None)

        msgs = [orjson.dumps({"stream": "btcusdt@bookTicker", "data": {
            "u": 2000 + i, "s": "BTCUSDT", "b": f"{(3_000_000 + i % 5) / 100:.2f}",
            "B": "1.00000000", "a": f"{(3_000_010 + i % 5) / 100:.2f}", "A": "2.00000000"}})
            for i in range(n)]
        bare_t, _ = await ws_connect(Bare, f"ws://127.0.0.1:{port}/")
        gw, link, sub = _gateway(ctx)
        handler = gw.on_md_message

        def on_msg(payload: bytes) -> None:
            handler(payload)
            fut[0].set_result(None)

        conn = WsConnection("bench-rtt", f"ws://127.0.0.1:{port}/", on_msg)
        conn.start()
        await asyncio.wait_for(conn.connected.wait(), 10)
        bare: list[int] = []
        via: list[int] = []
        # Interleave the two so drift and noise hit both alike. After a gateway sample wait
        # until the SUB has the frame, so ZeroMQ's I/O thread has finished the work that
        # sample caused and it does not land in the next (bare) sample.
        n_sub = 0
        for i in range(n):
            for which in (0, 1):
                if which == 0 and i:
                    if not sub.poll(1000):
                        raise RuntimeError("GW_MARKET_DATA never reached the SUB")
                    while sub.poll(0):
                        sub.recv()
                        n_sub += 1
                fut[0] = loop.create_future()
                t0 = time.perf_counter_ns()
                if which == 0:
                    bare_t.send(WSMsgType.TEXT, msgs[i])
                else:
                    conn.send(msgs[i])
                await fut[0]
                (bare if which == 0 else via).append(time.perf_counter_ns() - t0)
        assert gw.n_malformed == 0 and n_sub >= n - 1, (gw.n_malformed, n_sub)
        bare_t.disconnect()
        await conn.stop()
        link.close()
        sub.close(0)
    finally:
        ctx.destroy(0)
        proc.kill()
        proc.wait()
    return bare, via


def main(smoke: bool = False) -> bool:
    n_md = 5_000 if smoke else 200_000
    n_rtt = 300 if smoke else 5_000
    gc_was = gc.isenabled()
    gc.disable()
    try:
        md = uvloop.run(_throughput(n_md))
        bare, via = uvloop.run(_rtt(n_rtt))
    finally:
        if gc_was:
            gc.enable()
    print(f"bench_gateway: market data, {n_md} depthUpdate msgs (3+3 levels) from a picows "
          f"server subprocess")
    print(f"  bare picows client (count only)      {md.bare_rate:12,.0f} msgs/s")
    print(f"  gateway (route+decode+apply+publish) {md.gw_rate:12,.0f} msgs/s   "
          f"({md.gw_rate / md.bare_rate:.2f}x bare)")
    print(f"  delivered to a subscriber process    {md.delivered_rate:12,.0f} msgs/s   "
          f"(published {md.published:,}, delivered {md.delivered:,}, dropped {md.dropped:,}, "
          f"seq gaps {md.seq_gaps:,})")
    b50, b99, b999 = Latencies(bare).p50_p99_p999_us()
    g50, g99, g999 = Latencies(via).p50_p99_p999_us()
    print(f"bench_gateway: websocket round trip, {n_rtt} echoes each, interleaved (us)")
    print(f"  bare picows          p50 {b50:7.1f}  p99 {b99:7.1f}  p99.9 {b999:7.1f}")
    print(f"  through gateway      p50 {g50:7.1f}  p99 {g99:7.1f}  p99.9 {g999:7.1f}   "
          f"(p50 ratio {g50 / b50:.2f}x)")
    ok_md = md.delivered_rate >= TARGET_MSGS and md.dropped == 0
    ok_rtt = g50 / b50 <= TARGET_RTT_RATIO
    print(f"  targets: >= {TARGET_MSGS:,} msgs/s delivered, 0 dropped "
          f"[{'ok' if ok_md else 'MISS'}], "
          f"rtt p50 <= {TARGET_RTT_RATIO}x bare [{'ok' if ok_rtt else 'MISS'}]")
    return True if smoke else (ok_md and ok_rtt)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--server":
        uvloop.run(_serve(sys.argv[2], int(sys.argv[3])))
    elif len(sys.argv) >= 3 and sys.argv[1] == "--sub":
        _subscribe(sys.argv[2])
    else:
        sys.exit(0 if main("--smoke" in sys.argv) else 1)
