"""Matching engine throughput: compiled ``gateways.sim.matching.Book`` vs the pure-Python
``ReferenceBook`` (dict of deques + sorted price list), same mixed order flow, same run.

Flow per op: 60% GTC limit around the mid, 20% cancel of a random earlier order, 10% IOC
limit through the touch, 10% market. Prints orders/s, ns/op, per-op p50/p99/p99.9 and the
ratio. Target (full run): compiled >= 4x the reference's throughput, both driven op by op
from Python (the harness loop and the Python call are part of both numbers).
"""

from __future__ import annotations

import gc
import random
import sys
import time

from gateways.sim import constants as c
from gateways.sim.ledger import Ledger
from gateways.sim.matching import Book
from gateways.sim.reference import ReferenceBook
from oms_core.latency import Latencies

TARGET_RATIO = 4.0
S = c.SCALE


def make_flow(n: int, seed: int = 7) -> list[tuple[int, int, int, int, int, int, int]]:
    """(kind, account, side, otype, tif, price, qty); kind 1 = cancel (price = order index)."""
    rng = random.Random(seed)
    mid = 50_000
    out = []
    for i in range(n):
        r = rng.random()
        mid += rng.choice((-1, 0, 0, 1))
        side = rng.randrange(2)
        qty = rng.randint(1, 20) * S // 100
        acct = rng.randrange(8)
        if r < 0.6:
            off = rng.randint(1, 30)
            px = (mid - off) if side == c.SIDE_BUY else (mid + off)
            out.append((0, acct, side, c.OT_LIMIT, c.TIF_GTC, px * S, qty))
        elif r < 0.8:
            out.append((1, 0, 0, 0, 0, rng.randrange(1, i + 2), 0))
        elif r < 0.9:
            px = (mid + 5) if side == c.SIDE_BUY else (mid - 5)
            out.append((0, acct, side, c.OT_LIMIT, c.TIF_IOC, px * S, qty))
        else:
            out.append((0, acct, side, c.OT_MARKET, c.TIF_GTC, 0, qty))
    return out


def _new_book() -> Book:
    led = Ledger(8, 2)
    for a in range(8):
        led.deposit(a, 0, 10**15)
        led.deposit(a, 1, 10**18)
    return Book(led, 0, 1, max_orders=1 << 18, max_levels=1 << 14)


def run_compiled(flow: list[tuple[int, ...]], lat: list[int] | None = None) -> float:
    b = _new_book()
    submit, cancel, clear = b.submit, b.cancel, b.clear_events
    clock = time.perf_counter_ns
    t0 = clock()
    for kind, acct, side, otype, tif, px, qty in flow:
        if lat is not None:
            s = clock()
        if kind:
            cancel(px)
        else:
            submit(acct, side, otype, tif, px, qty, 0, c.STP_NONE)
        clear()
        if lat is not None:
            lat.append(clock() - s)
    return (clock() - t0) / len(flow)


def run_reference(flow: list[tuple[int, ...]], lat: list[int] | None = None) -> float:
    b = ReferenceBook()
    submit, cancel = b.submit, b.cancel
    clock = time.perf_counter_ns
    t0 = clock()
    for kind, acct, side, otype, tif, px, qty in flow:
        if lat is not None:
            s = clock()
        if kind:
            cancel(px)
        else:
            submit(acct, side, otype, tif, px, qty, c.STP_NONE)
        if len(b.trades) > 4096:
            b.trades.clear()
        if lat is not None:
            lat.append(clock() - s)
    return (clock() - t0) / len(flow)


def main(smoke: bool = False) -> bool:
    n = 5_000 if smoke else 200_000
    flow = make_flow(n)
    gc.disable()
    try:
        best_c = min(run_compiled(flow) for _ in range(1 if smoke else 3))
        best_r = min(run_reference(flow) for _ in range(1 if smoke else 3))
        lat_c: list[int] = []
        lat_r: list[int] = []
        run_compiled(flow, lat_c)
        run_reference(flow, lat_r)
    finally:
        gc.enable()
    ratio = best_r / best_c
    print(f"bench_matching: {n} ops mixed flow (60% GTC, 20% cancel, 10% IOC, 10% market)")
    for name, ns, lat in (("compiled Book", best_c, lat_c), ("reference", best_r, lat_r)):
        p50, p99, p999 = Latencies(lat).p50_p99_p999()
        print(f"  {name:14s} {1e9 / ns:12,.0f} orders/s  {ns:8.0f} ns/op   "
              f"p50 {p50:6d} ns  p99 {p99:7d} ns  p99.9 {p999:7d} ns")
    print(f"  ratio (reference / compiled time): {ratio:.1f}x  target >= {TARGET_RATIO:.0f}x")
    if smoke:
        return True
    return ratio >= TARGET_RATIO


if __name__ == "__main__":
    sys.exit(0 if main("--smoke" in sys.argv) else 1)
