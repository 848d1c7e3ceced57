"""Example signal publisher: a moving-average crossover on the engine's market data.

Run beside a running OMS (``oms run --config examples/oms.toml``):

    python examples/publisher.py --config examples/oms.toml

Every ``--interval`` seconds it takes the last price of each instrument from the engine's
public feed (the gateways' market data, ZeroMQ SUB on ``[engine] events``), and for every
strategy of the configuration and each of its instruments sends a direction signal (-1, 0, 1)
when the fast average crosses the slow one. How a signal reaches the engines:

* ``--via direct`` (default with one shard): :class:`bindings.client.OmsClient` on each
  shard's command endpoint, by names (strategy, instrument); ``signal()`` answers one line per
  client (accepted with its order ids, or rejected with the code and the reason);
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

if __package__ in (None, ""):  # run as a script: the repository is one level up
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import zmq

from bindings.client import OmsClient, OmsError
from bindings.wire import records as wire
from bindings.wire.spec import ANY_ID, MsgType, SignalMode
from oms_core import security
from oms_core.config import load_config
from oms_core.engine.config import shard_endpoint


def crossover(prices: deque[int], fast: int, slow: int) -> int:
    """Return 1 when the fast mean is above the slow mean, -1 below, 0 until enough prices."""
    if len(prices) < slow:
        return 0
    p = list(prices)
    # compare sums scaled to a common length: integers only
    f, s = sum(p[-fast:]) * slow, sum(p[-slow:]) * fast
    return 1 if f > s else (-1 if f < s else 0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--via", choices=("direct", "pub"), help="how signals reach the engines")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds per bar")
    ap.add_argument("--duration", type=float, default=60.0, help="stop after this many s")
    ap.add_argument("--fast", type=int, default=5)
    ap.add_argument("--slow", type=int, default=20)
    ap.add_argument("--wait-keys", type=float, default=0.0, metavar="SECONDS",
                    help="wait this long for the keys to appear (a container started beside "
                         "the engine's, which makes them)")
    ap.add_argument("--user", default=security.OPERATOR_KEY,
                    help="whose key to use when security is on ([security.users.NAME])")
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    keys = None
    if security.security_on(cfg):
        files = (security.key_files(cfg, args.user)[1],
                 security.key_files(cfg, security.ENGINE_KEY)[0])
        end = time.monotonic() + args.wait_keys
        while not all(f.exists() for f in files) and time.monotonic() < end:
            time.sleep(0.5)
        keys = security.client_keys(cfg, args.user)
    shards = sorted({c.shard for c in cfg.clients.values()})
    via = args.via or ("direct" if len(shards) == 1 else "pub")
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    # a supervisor starts its children with these blocked (held, not lost, until now)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    ctx = zmq.Context.instance()
    md = ctx.socket(zmq.SUB)
    md.setsockopt(zmq.LINGER, 0)
    md.setsockopt(zmq.SUBSCRIBE, b"")
    if keys is not None:
        keys.apply(md)
    md.connect(shard_endpoint(cfg.engine.events, shards[0]))
    clients: list[OmsClient] = []
    pub = None
    if via == "direct":
        clients = [OmsClient(shard_endpoint(cfg.engine.commands, k), config=cfg, context=ctx,
                             user=args.user) for k in shards]
    else:
        pub = ctx.socket(zmq.PUB)
        pub.setsockopt(zmq.LINGER, 1000)
        if keys is not None:  # the engines' SUB is the CURVE server
            keys.apply(pub)
        pub.bind(cfg.engine.signals)
    pairs = [(s.name, sym) for s in cfg.strategies.values() for sym in s.instruments]
    ids = {sym: i.id for sym, i in cfg.instruments.items()}
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
                if ids[instrument] not in last_px:
                    continue
                bars[pair].append(last_px[ids[instrument]])
                d = crossover(bars[pair], args.fast, args.slow)
                if d == last[pair]:
                    continue
                last[pair] = d
                sent += 1
                if pub is not None:
                    pub.send(wire.encode("SIGNAL", sent, 0, time.time_ns(), value=d, price=0,
                                         account=ANY_ID, strategy=cfg.strategies[strategy].id,
                                         instrument=ids[instrument],
                                         mode=int(SignalMode.DIRECTION)))
                    print(f"{strategy} {instrument} -> {d}: published", flush=True)
                    continue
                for client in clients:
                    try:  # every follower of the strategy on that shard: one answer each
                        res = client.signal(instrument, d, strategy=strategy)
                    except OmsError as e:
                        print(f"{strategy} {instrument} -> {d}: {e}", flush=True)
                        continue
                    print(f"{strategy} {instrument} -> {d}: "
                          f"{'ok' if res.ok else res.reply}", flush=True)
                    for a in res:
                        print(f"    {a}", flush=True)
    finally:
        for client in clients:
            client.close()
        md.close()
        if pub is not None:
            pub.close()
    print(f"publisher: {sent} signals", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
