"""Example signal publisher: a moving-average crossover on the engine's market data.

Run beside a running OMS (``oms run --config examples/oms.toml``):

    python examples/publisher.py --config examples/oms.toml

Every ``--interval`` seconds it takes the last price of each instrument from the engine's
public feed (the gateways' market data, ZeroMQ SUB on ``[engine] events``), and for every
strategy of the configuration and each of its instruments sends a direction signal (-1, 0, 1)
when the fast average crosses the slow one. How a signal reaches the engines:

* ``--via direct`` (default with one shard): a DEALER to each shard's command endpoint; the
  answer is printed with one line per client (accepted with its order ids, or the reason);
* ``--via pub`` (default with several shards): one PUB on ``[engine] signals`` that every
  shard subscribes to; each shard acts for its own clients, the answers are in its DuckDB.

Stops after ``--duration`` seconds or on SIGTERM / SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: the repository is one level up
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import zmq

from bindings.wire import records as wire
from bindings.wire.spec import ANY_ID, MsgType, SignalMode
from oms_core.config import load_config
from oms_core.engine.config import shard_endpoint
from oms_core.enums import REJECT_REASONS, Reject


def crossover(prices: deque[int], fast: int, slow: int) -> int:
    """Return 1 when the fast mean is above the slow mean, -1 below, 0 until enough prices."""
    if len(prices) < slow:
        return 0
    p = list(prices)
    # compare sums scaled to a common length: integers only
    f, s = sum(p[-fast:]) * slow, sum(p[-slow:]) * fast
    return 1 if f > s else (-1 if f < s else 0)


class SignalSender:
    """Send SIGNAL records to one engine over a DEALER and collect its answers: the engine
    sends one ACK / REJECT per client (request id 0, cmd_type SIGNAL) ahead of its reply to
    the request (ACK when at least one client traded, else the first client's REJECT)."""

    def __init__(self, ctx: zmq.Context, endpoint: str, timeout: float = 5.0) -> None:
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.timeout = timeout
        self.rid = 0

    def signal(self, strategy: int, instrument: int, value: int,
               mode: int = SignalMode.DIRECTION) -> tuple[Any, list[Any]]:
        """Return (the reply, the per-client answers)."""
        self.rid += 1
        self.sock.send(wire.encode("SIGNAL", self.rid, 0, time.time_ns(), value=value,
                                   price=0, account=ANY_ID, strategy=strategy,
                                   instrument=instrument, mode=int(mode)))
        per_client: list[Any] = []
        end = time.monotonic() + self.timeout
        while time.monotonic() < end:
            if not self.sock.poll(50):
                continue
            for r in wire.decode_frame(self.sock.recv()):
                if r.msg_type not in (MsgType.ACK, MsgType.REJECT):
                    continue
                if r.request_id == self.rid:
                    return r, per_client
                if r.request_id == 0 and r.cmd_type == MsgType.SIGNAL:
                    per_client.append(r)
        raise TimeoutError(f"no answer to signal {self.rid} in {self.timeout} s")

    def close(self) -> None:
        self.sock.close()


def describe(r: Any, names: dict[int, str]) -> str:
    """One line for an ACK / REJECT record."""
    who = names.get(r.account, "all clients" if r.account == ANY_ID else str(r.account))
    if r.msg_type == MsgType.ACK:
        ids = [i for i in (r.order_id, r.leg2_order_id, r.leg3_order_id) if i]
        return f"{who}: accepted, orders {ids}"
    return f"{who}: rejected, {REJECT_REASONS.get(Reject(r.code), r.code)}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--via", choices=("direct", "pub"), help="how signals reach the engines")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds per bar")
    ap.add_argument("--duration", type=float, default=60.0, help="stop after this many s")
    ap.add_argument("--fast", type=int, default=5)
    ap.add_argument("--slow", type=int, default=20)
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    shards = sorted({c.shard for c in cfg.clients.values()})
    via = args.via or ("direct" if len(shards) == 1 else "pub")
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    ctx = zmq.Context.instance()
    md = ctx.socket(zmq.SUB)
    md.setsockopt(zmq.LINGER, 0)
    md.setsockopt(zmq.SUBSCRIBE, b"")
    md.connect(shard_endpoint(cfg.engine.events, shards[0]))
    names = {c.id: c.name for c in cfg.clients.values()}
    senders: list[SignalSender] = []
    pub = None
    if via == "direct":
        senders = [SignalSender(ctx, shard_endpoint(cfg.engine.commands, k)) for k in shards]
    else:
        pub = ctx.socket(zmq.PUB)
        pub.setsockopt(zmq.LINGER, 1000)
        pub.bind(cfg.engine.signals)
    pairs = [(s.id, cfg.instruments[sym].id) for s in cfg.strategies.values()
             for sym in s.instruments]
    last_px: dict[int, int] = {}
    bars = {p: deque(maxlen=args.slow) for p in pairs}
    last = dict.fromkeys(pairs, 0)
    sent = 0
    deadline = time.monotonic() + args.duration
    next_bar = time.monotonic() + args.interval
    try:
        while not stop and time.monotonic() < deadline:
            if md.poll(50):
                for _ in range(1000):
                    try:
                        frame = md.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    try:
                        recs = wire.decode_frame(frame)
                    except wire.WireFormatError:
                        continue
                    for r in recs:
                        if r.msg_type == MsgType.GW_MARKET_DATA and (r.bid and r.ask):
                            last_px[r.instrument] = (r.bid + r.ask) // 2
            if time.monotonic() < next_bar:
                continue
            next_bar += args.interval
            for pair in pairs:
                strategy, instrument = pair
                if instrument not in last_px:
                    continue
                bars[pair].append(last_px[instrument])
                d = crossover(bars[pair], args.fast, args.slow)
                if d == last[pair]:
                    continue
                last[pair] = d
                sent += 1
                if pub is not None:
                    pub.send(wire.encode("SIGNAL", sent, 0, time.time_ns(), value=d, price=0,
                                         account=ANY_ID, strategy=strategy,
                                         instrument=instrument, mode=int(SignalMode.DIRECTION)))
                    print(f"strategy {strategy} instrument {instrument} -> {d}: published",
                          flush=True)
                    continue
                for sender in senders:
                    reply, answers = sender.signal(strategy, instrument, d)
                    print(f"strategy {strategy} instrument {instrument} -> {d}: "
                          f"{describe(reply, names)}", flush=True)
                    for a in answers:
                        print(f"    {describe(a, names)}", flush=True)
    finally:
        for sender in senders:
            sender.close()
        md.close()
        if pub is not None:
            pub.close()
    print(f"publisher: {sent} signals", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
