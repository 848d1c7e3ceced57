"""The `oms` command.

`oms demo` runs the compiled core on a synthetic market: three clients follow a moving-average
strategy on two instruments; a venue model fills their orders; positions, P&L and the core's
per-call latency are shown live and summarised at the end. It needs no configuration.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from decimal import Decimal

from rich.console import Console
from rich.live import Live
from rich.table import Table

from oms_core.core import OmsCore
from oms_core.enums import EventType, Limit, OrderType, Reject, Side, TimeInForce

USDT, BTC, ETH = 0, 1, 2
INSTRUMENTS = (
    # id, symbol, base, price precision, qty precision, tick, lot, start price (raw)
    (0, "BTCUSDT", BTC, 2, 5, 1, 10, 5_000_000),
    (1, "ETHUSDT", ETH, 2, 4, 1, 10, 300_000),
)
CLIENTS = {0: "alice", 1: "bob", 2: "carol"}
ORDER_NOTIONAL = {0: 2_000, 1: 5_000, 2: 1_000}  # USDT per signal, per client


def _build_core() -> OmsCore:
    core = OmsCore(max_orders=1 << 16, max_accounts=8, max_instruments=8, max_assets=8)
    core.add_asset(USDT, "USDT", 8)
    core.add_asset(BTC, "BTC", 8)
    core.add_asset(ETH, "ETH", 8)
    for iid, symbol, base, pp, qp, tick, lot, _ in INSTRUMENTS:
        core.add_instrument(iid, symbol, 0, base, USDT, pp, qp, tick, lot, lot, 10**12,
                            5 * 10**8)
    core.add_strategy(1)
    for account in CLIENTS:
        core.add_account(account)
        core.deposit(account, USDT, 100_000 * 10**8)
        core.set_limit(account, Limit.CHECK_BALANCE, 1)
        core.set_limit(account, Limit.LONG_ONLY, 1)
        core.set_limit(account, Limit.COLLAR_BPS, 200)
        core.set_limit(account, Limit.MAX_DAILY_LOSS, 5_000 * 10**8)
    return core


def _percentile(samples: list[int], q: float) -> int:
    if not samples:
        return 0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_demo(seconds: float, seed: int, console: Console) -> int:
    """Run the core demo for `seconds` of wall time; return an exit code."""
    rng = random.Random(seed)
    core = _build_core()
    prices = {iid: start for iid, *_, start in INSTRUMENTS}
    history: dict[int, list[int]] = {iid: [] for iid in prices}
    latencies: list[int] = []
    counts = {"orders": 0, "rejects": 0, "fills": 0, "trips": 0}
    pending: list[int] = []  # orders at the venue model, filled on the next tick
    clid = 0
    trade_id = 0
    ts = 1_000_000_000
    started = time.monotonic()

    def table() -> Table:
        t = Table(title=f"oms demo: compiled core, {len(CLIENTS)} clients, seed {seed}")
        for col in ("client", "instrument", "position", "avg entry", "realized", "unrealized"):
            t.add_column(col, justify="right")
        for account, name in CLIENTS.items():
            for iid, symbol, _, _, qp, *_ in INSTRUMENTS:
                pos = core.position(account, iid)
                if pos["qty"] == 0 and pos["realized"] == 0:
                    continue
                # cost is in quote units (1e-8 USDT), qty in units of 10**-qp
                avg = (Decimal(pos["cost"]) * 10**qp / (pos["qty"] * 10**8)
                       if pos["qty"] else Decimal(0))
                t.add_row(name, symbol, str(Decimal(pos["qty"]).scaleb(-qp)), f"{avg:.2f}",
                          f"{Decimal(pos['realized']).scaleb(-8):.2f}",
                          f"{Decimal(pos['unrealized']).scaleb(-8):.2f}")
        t.caption = (f"orders {counts['orders']}  rejects {counts['rejects']}  "
                     f"fills {counts['fills']}  round trips {counts['trips']}  "
                     f"submit through the Python API p50 {_percentile(latencies, 0.5)} ns "
                     f"p99 {_percentile(latencies, 0.99)} ns")
        return t

    with Live(table(), console=console, refresh_per_second=4) as live:
        while time.monotonic() - started < seconds:
            ts += 1_000_000_000  # one simulated second per tick
            for iid in prices:
                prices[iid] = max(100, prices[iid] + rng.randint(-3, 3) * prices[iid] // 2000)
                core.set_price(iid, prices[iid], prices[iid] - 1, prices[iid] + 1, ts)
                history[iid].append(prices[iid])
            for oid in pending:  # the venue fills what was sent on the previous tick
                order = core.order(oid)
                if order and order["status"] in (1, 2, 3):
                    trade_id += 1
                    qty = order["qty"] - order["filled"]
                    core.on_ack(oid, ts)
                    core.on_fill(oid, trade_id, qty, prices[order["instrument"]], 0, USDT, 2, ts)
                    counts["fills"] += 1
            pending.clear()
            for iid, _, _, _, qp, _, lot, _ in INSTRUMENTS:
                h = history[iid]
                if len(h) < 20:
                    continue
                fast, slow = sum(h[-5:]) / 5, sum(h[-20:]) / 20
                side = Side.BUY if fast > slow else Side.SELL
                for account in CLIENTS:
                    held = core.position(account, iid)["qty"]
                    if (side == Side.BUY) == (held > 0):
                        continue
                    qty = held if side == Side.SELL else (
                        ORDER_NOTIONAL[account] * 10**(2 + qp) // prices[iid] // lot * lot)
                    if qty <= 0:
                        continue
                    clid += 1
                    t0 = time.perf_counter_ns()
                    code, oid = core.submit(account, 1, iid, clid, side, OrderType.MARKET,
                                            TimeInForce.IOC, 0, 0, qty, 0, 0, ts)
                    latencies.append(time.perf_counter_ns() - t0)
                    counts["orders"] += 1
                    if code == Reject.OK:
                        pending.append(oid)
                    else:
                        counts["rejects"] += 1
            for event in core.drain_events():
                if event[0] == EventType.TRADE_CLOSED:
                    counts["trips"] += 1
            core.mark_to_market(ts)
            live.update(table())
            time.sleep(0.02)
    console.print(f"done: {counts['orders']} orders, {counts['fills']} fills, "
                  f"{counts['trips']} closed round trips; the engine, gateways and DuckDB "
                  "writer run with `oms run` once configured.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="oms", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the self-contained demo")
    demo.add_argument("--seconds", type=float, default=15.0, help="wall time (default 15)")
    demo.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    console = Console()
    if args.command == "demo":
        return run_demo(args.seconds, args.seed, console)
    return 2


if __name__ == "__main__":
    sys.exit(main())
