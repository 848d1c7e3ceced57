"""Example signal publisher: a moving-average crossover.

Run beside the engine:  python examples/publisher.py --config examples/oms.toml
It sends, for every strategy of the configuration and each of its instruments, a direction
signal (-1, 0, 1) when the fast average of a seeded random walk crosses the slow one, and
prints the engine's answer (one per client). It needs no market data of its own: the engine
sizes and prices the orders from its market. Stops after ``--duration`` seconds or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections import deque

import numpy as np

from bindings.client import OmsClient
from bindings.wire.spec import SignalMode
from oms_core.config import load_config


def crossover(prices: deque[int], fast: int, slow: int) -> int:
    """Return 1 when the fast mean is above the slow mean, -1 below, 0 until enough prices."""
    if len(prices) < slow:
        return 0
    p = np.fromiter(prices, dtype=np.int64, count=len(prices))
    f, s = p[-fast:].mean(), p[-slow:].mean()
    return 1 if f > s else (-1 if f < s else 0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", required=True)
    ap.add_argument("--endpoint", help="engine command endpoint (default: from the config)")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between rounds")
    ap.add_argument("--duration", type=float, default=60.0, help="stop after this many s")
    ap.add_argument("--fast", type=int, default=5)
    ap.add_argument("--slow", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    endpoint = args.endpoint or cfg.engine.commands
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    rng = np.random.default_rng(args.seed)
    pairs = [(s.id, cfg.instruments[sym].id) for s in cfg.strategies.values()
             for sym in s.instruments]
    prices = {p: deque([10_000], maxlen=args.slow) for p in pairs}
    last = dict.fromkeys(pairs, 0)
    client = OmsClient(endpoint, timeout=5.0)
    deadline = time.monotonic() + args.duration
    try:
        while not stop and time.monotonic() < deadline:
            for pair in pairs:
                strategy, instrument = pair
                walk = prices[pair]
                walk.append(max(1, int(walk[-1] * (1 + rng.normal(0, 0.002)))))
                d = crossover(walk, args.fast, args.slow)
                if d == last[pair]:
                    continue
                last[pair] = d
                answer = client.signal(instrument, d, SignalMode.DIRECTION, strategy=strategy)
                print(f"strategy {strategy} instrument {instrument} -> {d}: {answer}",
                      flush=True)
            time.sleep(args.interval)
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
