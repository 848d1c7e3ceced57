"""The compiled OMS core (oms_core.core.OmsCore) against the pure-Python reference model.

Three ways, side by side in one run, on the same operations and the same book:
  driver    : benchmarks.core_driver, C loops over the core's cdef twins (no Python calls)
  py-API    : a Python loop over OmsCore's def methods
  reference : a Python loop over oms_core.reference.model.ReferenceModel
Every order passes every check: price collar (mid, with a reference-age limit), max order qty
and notional, max position, open-order cap, gross and net exposure, spot balance check (orders
lock funds), message / order / exchange token buckets (generous, so they pass but run), and
self-trade prevention against resting opposite orders of the same account and instrument.

Targets (full run): driver >= 2,000,000 submit+risk+insert/s; driver >= 1,000,000 full
submit->ack->fill->position cycles/s; driver >= 100x the reference model on the like-for-like
submit and full-cycle rows; submit at 1,000,000 resting orders <= 2x the time per order at
1,000; order slot (OrderTable.slot_size) <= 256 bytes.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks import core_driver as drv
from oms_core.core import OmsCore
from oms_core.enums import Limit, OrderType, Side, TimeInForce
from oms_core.latency import Latencies
from oms_core.reference.model import ReferenceModel

# ---------------------------------------------------------------- workload (shared by all three)
PRICE_PRECISION, QTY_PRECISION, ASSET_PRECISION = 2, 6, 8
QTY = 1_000  # 0.001 base units
FEE = 30  # quote units per fill, paid in the quote asset
QUOTE = 0  # asset id of the quote currency
BASE_LAST = 3_000_000  # 30000.00
STRATEGY = 1
TS0 = 1_700_000_000_000_000_000
STEP = 10  # ns of simulated time per command: the 1e8/s buckets refill one token per step
OFF_MIN, OFF_SPAN = 1, 200  # measured orders rest 1..200 ticks from the last price
SEED_OFF = 500  # one resting buy and sell per (account, instrument) for self-trade checks
SEED_K = 10**12  # order index range of the seeds (client id = k + 1)
LIMITS = {
    Limit.MAX_ORDER_QTY: 10**9,
    Limit.MAX_ORDER_NOTIONAL: 10**15,
    Limit.MAX_POSITION: 10**13,
    Limit.MAX_GROSS_EXPOSURE: 1 << 61,
    Limit.MAX_NET_EXPOSURE: 1 << 61,
    Limit.MAX_OPEN_ORDERS: 10**7,
    Limit.COLLAR_BPS: 1_000,
    Limit.COLLAR_USE_MID: 1,
    Limit.MAX_REFERENCE_AGE_NS: 1 << 62,
    Limit.ORDER_RATE: 10**8,
    Limit.ORDER_BURST: 10**8,
    Limit.MESSAGE_RATE: 10**8,
    Limit.MESSAGE_BURST: 10**8,
    Limit.EXCHANGE_RATE: 10**8,
    Limit.EXCHANGE_BURST: 10**8,
    Limit.CHECK_BALANCE: 1,
    Limit.MAX_DAILY_LOSS: 1 << 61,
    Limit.MAX_DRAWDOWN: 1 << 61,
    Limit.REJECT_RATE: 1_000,
    Limit.REJECT_BURST: 1_000,
}
BUY, SELL = int(Side.BUY), int(Side.SELL)
LIMIT_TYPE, GTC = int(OrderType.LIMIT), int(TimeInForce.GTC)

# targets
TARGET_SUBMIT_PER_S = 2_000_000
TARGET_CYCLE_PER_S = 1_000_000
TARGET_REF_RATIO = 100.0
TARGET_SCALE_RATIO = 2.0
TARGET_SLOT_BYTES = 256

Model = OmsCore | ReferenceModel


def last_price(instrument: int) -> int:
    return BASE_LAST + 1_000 * instrument


def configure(m: Model, n_acc: int, n_inst: int, seed: bool = True) -> None:
    """Assets, instruments, prices, accounts with every limit on, deposits, and (seed) one
    resting buy and sell per (account, instrument) away from the market."""
    m.add_asset(QUOTE, "USDT", ASSET_PRECISION)
    m.add_strategy(STRATEGY)
    for i in range(n_inst):
        m.add_asset(1 + i, f"B{i}", ASSET_PRECISION)
        m.add_instrument(i, f"B{i}USDT", i % 2, 1 + i, QUOTE, PRICE_PRECISION, QTY_PRECISION,
                         1, 1_000, 1_000, 10**12, 5 * 10**8)
        last = last_price(i)
        m.set_price(i, last, last - 1, last + 1, TS0)
    for a in range(n_acc):
        m.add_account(a)
        for limit, value in LIMITS.items():
            if m.set_limit(a, int(limit), value) != 0:
                raise RuntimeError(f"set_limit {limit!r} refused")
        m.deposit(a, QUOTE, 10**17)
        for i in range(n_inst):
            m.deposit(a, 1 + i, 10**15)
    if seed:
        k = SEED_K
        for a in range(n_acc):
            for i in range(n_inst):
                for side, price in ((BUY, last_price(i) - SEED_OFF), (SELL,
                                                                      last_price(i) + SEED_OFF)):
                    code, _ = m.submit(a, STRATEGY, i, k + 1, side, LIMIT_TYPE, GTC, price, 0,
                                       QTY, 0, 0, TS0)
                    if code != 0:
                        raise RuntimeError(f"seed order refused: {code}")
                    k += 1
    m.drain_events()


def order_shape(k: int, n_acc: int, n_inst: int) -> tuple[int, int, int, int]:
    """(account, instrument, side, price) of order k; the same formula as
    core_driver.order_shape with side_mode 0."""
    account = k % n_acc
    instrument = (k // n_acc) % n_inst
    side = BUY if (k // (n_acc * n_inst)) % 2 == 0 else SELL
    off = OFF_MIN + (k * 7919) % OFF_SPAN
    price = last_price(instrument) - off if side == BUY else last_price(instrument) + off
    return account, instrument, side, price


def new_core(max_orders: int, n_acc: int, n_inst: int, seed: bool = True,
             max_day_orders: int = 0) -> OmsCore:
    core = OmsCore(max_orders=max_orders, max_accounts=n_acc, max_instruments=n_inst,
                   max_assets=n_inst + 1, max_strategies=4, max_exchanges=2,
                   max_strategy_positions=max(64, 2 * n_acc * n_inst),
                   max_day_orders=max_day_orders)
    configure(core, n_acc, n_inst, seed)
    return core


def new_reference(max_orders: int, n_acc: int, n_inst: int) -> ReferenceModel:
    ref = ReferenceModel(max_orders=max_orders, max_accounts=n_acc, max_instruments=n_inst,
                         max_assets=n_inst + 1, max_strategies=4, max_exchanges=2)
    configure(ref, n_acc, n_inst)
    return ref


def check(label: str, rejects: int, code: int) -> None:
    if rejects:
        raise RuntimeError(f"{label}: {rejects} commands refused (last code {code})")


# ---------------------------------------------------------------- Python loops (py-API, reference)
def py_batched(m: Model, op: str, n_batches: int, batch: int, n_acc: int, n_inst: int) -> int:
    """The like-for-like workload through Python calls: batches of `batch` orders; `op` is
    the timed step (submit, cancel, fill or cycle); the other steps bring the book back.
    Return the timed nanoseconds. Arguments are built before the clock starts."""
    submit, cancel, on_canceled = m.submit, m.cancel, m.on_canceled
    on_ack, on_fill, drain = m.on_ack, m.on_fill, m.drain_events
    clock = time.perf_counter_ns
    timed = 0
    k = 0
    ts = TS0 + 1_000
    trade = 1
    bad = 0
    for _ in range(n_batches):
        args = []
        for j in range(batch):
            a, i, side, price = order_shape(k + j, n_acc, n_inst)
            args.append((a, STRATEGY, i, k + j + 1, side, LIMIT_TYPE, GTC, price, 0, QTY, 0, 0,
                         ts + j * STEP))
        k += batch
        ts += batch * STEP
        ids = []
        if op == "cycle":
            trades = range(trade, trade + batch)
            trade += batch
            t0 = clock()
            for a, tr in zip(args, trades, strict=True):
                code, oid = submit(*a)
                bad += code != 0
                bad += on_ack(oid, a[12] + 1) != 0
                bad += on_fill(oid, tr, QTY, a[7], FEE, QUOTE, 1, a[12] + 2) != 0
            timed += clock() - t0
            drain()
            continue
        t0 = clock()
        for a in args:
            code, oid = submit(*a)
            bad += code != 0
            ids.append(oid)
        if op == "submit":
            timed += clock() - t0
        drain()
        pairs = [(a[0], oid, ts + j * STEP) for j, (a, oid) in enumerate(zip(args, ids,
                                                                            strict=True))]
        ts += batch * STEP
        if op == "fill":
            for _, oid, t in pairs:
                on_ack(oid, t)
            drain()
            fills = [(oid, trade + j, QTY, a[7], FEE, QUOTE, 1, t + 1)
                     for j, (a, (_, oid, t)) in enumerate(zip(args, pairs, strict=True))]
            trade += batch
            t0 = clock()
            for f in fills:
                bad += on_fill(*f) != 0
            timed += clock() - t0
            drain()
            continue
        t0 = clock()
        for acct, oid, t in pairs:
            bad += cancel(acct, oid, t) != 0
        if op == "cancel":
            timed += clock() - t0
        drain()
        for _, oid, t in pairs:
            bad += on_canceled(oid, t + 1) != 0
        drain()
    if bad:
        raise RuntimeError(f"python loop ({op}): {bad} commands refused")
    return timed


def driver_batched(core: OmsCore, op: str, n_batches: int, batch: int, n_acc: int,
                   n_inst: int) -> int:
    """The like-for-like workload through core_driver (C loops); see py_batched."""
    if op == "cycle":
        f = flow(core, 0, n_batches * batch, n_acc, n_inst)
        ns, rejects, code = drv.cycle_loop(core, f, STRATEGY, QTY, FEE, QUOTE, 1, TS0 + 1_000,
                                           STEP)
        check("driver cycle", rejects, code)
        return ns
    mode = {"submit": drv.MODE_SUBMIT, "cancel": drv.MODE_CANCEL, "fill": drv.MODE_FILL}[op]
    ns, ops, rejects, code = drv.batched(core, mode, n_batches, batch, n_acc, n_inst, STRATEGY,
                                         OFF_MIN, OFF_SPAN, QTY, FEE, QUOTE, 0, 1, TS0 + 1_000,
                                         STEP, drv.Flow(batch))
    check(f"driver {op}", rejects, code)
    return ns


def flow(core: OmsCore, k0: int, n: int, n_acc: int, n_inst: int, off_min: int = OFF_MIN,
         off_span: int = OFF_SPAN) -> drv.Flow:
    """Orders k0 .. k0+n-1 (order_shape) as a driver Flow; made before any clock starts."""
    f = drv.Flow(n)
    f.shape(core, k0, n, n_acc, n_inst, 0, off_min, off_span)
    return f


def same_answers(n_acc: int, n_inst: int, batch: int) -> None:
    """Prove the three paths did the same work: two batches of full cycles through each must
    leave the same positions, balances and account state."""
    core_d, core_p = new_core(1 << 12, n_acc, n_inst), new_core(1 << 12, n_acc, n_inst)
    ref = new_reference(1 << 12, n_acc, n_inst)
    driver_batched(core_d, "cycle", 2, batch, n_acc, n_inst)
    py_batched(core_p, "cycle", 2, batch, n_acc, n_inst)
    py_batched(ref, "cycle", 2, batch, n_acc, n_inst)
    for a in range(n_acc):
        states = [(m.account_state(a), [m.position(a, i) for i in range(n_inst)],
                   [m.balance(a, x) for x in range(n_inst + 1)]) for m in (core_d, core_p, ref)]
        if not states[0] == states[1] == states[2]:
            raise RuntimeError(f"driver, py-API and reference disagree on account {a}")


def timed_gc_off(fn: Callable[[], int]) -> int:
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        return fn()
    finally:
        if was:
            gc.enable()


Path = tuple[Callable[[], object], Callable[[object, int], int], int, int, int]


def interleaved(reps: int, paths: list[Path]) -> list[tuple[float, float]]:
    """Time each path (make, run(subject, n), n, ops per n, warm-up n) reps times, taking the
    paths in turn within each repetition so that all of them see the same machine load. Before
    each timed run a short untimed run on a throwaway subject warms the caches and branch
    predictors that the other paths cooled. Return (best, median) ns per op for each path;
    setup is not timed."""
    samples: list[list[float]] = [[] for _ in paths]
    for _ in range(reps):
        for j, (make, run, n, ops_per_n, warm) in enumerate(paths):
            run(make(), warm)
            subject = make()
            samples[j].append(timed_gc_off(lambda s=subject, run=run, n=n: run(s, n))
                              / (n * ops_per_n))
            del subject
    return [(min(x), float(np.median(x))) for x in samples]


# ---------------------------------------------------------------- report helpers
@dataclass
class Target:
    name: str
    value: str
    goal: str
    met: bool


def fmt_ns(ns: float) -> str:
    return f"{ns:,.1f}" if ns < 100 else f"{ns:,.0f}"


def fmt_rate(ns: float) -> str:
    return f"{1e9 / ns:,.0f}" if ns > 0 else "inf"


# ---------------------------------------------------------------- the benchmark
def main(smoke: bool = False) -> bool:
    console = Console(width=120, highlight=False)
    out = console.print
    reps = 2 if smoke else 5
    like_reps = 2 if smoke else 7
    n_acc, n_inst = 4, 4
    batch = 64
    # batches of 64 per op and run, the same count for all three paths so that the tables,
    # indexes and trade-id window hold the same number of entries in each
    like_batches = 4 if smoke else 80
    n_big = 20_000 if smoke else 200_000
    n_lat = 20_000 if smoke else 200_000
    scale_small, scale_big = 1_000, (20_000 if smoke else 1_000_000)
    scale_batches = 50 if smoke else 1_000
    mtm_acc, mtm_inst = 16, 16
    mtm_reps = (50, 20, 5) if smoke else (5_000, 2_000, 50)
    like_cap = 1 << 16

    out(f"[bold]bench_core[/] ({'smoke' if smoke else 'full'} run): OmsCore driver vs py-API vs "
        f"ReferenceModel; times are the best (minimum) of {reps} runs on fresh state "
        f"(section 1: of {like_reps} interleaved runs), GC off")
    out(f"  workload: {n_acc} accounts x {n_inst} instruments, GTC limit orders qty {QTY} "
        f"(0.001), prices 1..200 ticks off the last price (no crossing), all limits on, "
        f"spot balance check, STP against {2 * n_acc * n_inst} seeded resting orders")

    # ---- 1. like-for-like: same operations, same book (<= 64 own orders + the seeds)
    same_answers(n_acc, n_inst, batch)
    rows: dict[str, list[tuple[float, float]]] = {}
    for op in ("submit", "cycle", "cancel", "fill"):
        rows[op] = interleaved(like_reps, [
            (lambda: new_core(like_cap, n_acc, n_inst),
             lambda c, nb, op=op: driver_batched(c, op, nb, batch, n_acc, n_inst),
             like_batches, batch, 2),
            (lambda: new_core(like_cap, n_acc, n_inst),
             lambda c, nb, op=op: py_batched(c, op, nb, batch, n_acc, n_inst),
             like_batches, batch, 2),
            (lambda: new_reference(like_cap, n_acc, n_inst),
             lambda m, nb, op=op: py_batched(m, op, nb, batch, n_acc, n_inst),
             like_batches, batch, 2),
        ])

    # mark-to-market, per position: a 16 x 16 core with every position open
    def mtm_subject(kind: str) -> Model:
        m = (new_core(1 << 12, mtm_acc, mtm_inst) if kind != "reference"
             else new_reference(1 << 12, mtm_acc, mtm_inst))
        for k in range(mtm_acc * mtm_inst):  # one filled buy per (account, instrument)
            a, i, side, price = order_shape(k, mtm_acc, mtm_inst)
            code, oid = m.submit(a, STRATEGY, i, k + 1, side, LIMIT_TYPE, GTC, price, 0, QTY, 0,
                                 0, TS0 + k)
            if code or m.on_ack(oid, TS0 + k) or m.on_fill(oid, k + 1, QTY, price, FEE, QUOTE,
                                                           1, TS0 + k):
                raise RuntimeError("mark-to-market setup refused")
        for i in range(mtm_inst):  # move the marks so revaluation changes something
            last = last_price(i) + 7
            m.set_price(i, last, last - 1, last + 1, TS0 + 10**6)
        m.drain_events()
        return m

    n_pos = mtm_acc * mtm_inst

    def py_mtm(m: Model, reps_: int) -> int:
        mark = m.mark_to_market
        t0 = time.perf_counter_ns()
        for r in range(reps_):
            mark(TS0 + 2 * 10**6 + r)
        return time.perf_counter_ns() - t0

    ref_positions = len(mtm_subject("reference").positions)
    if ref_positions != n_pos:
        raise RuntimeError(f"reference holds {ref_positions} positions, expected {n_pos}")
    rows["mtm"] = interleaved(like_reps, [
        (lambda: mtm_subject("core"), lambda c, n: drv.mtm_loop(c, n, TS0 + 2 * 10**6),
         mtm_reps[0], n_pos, 5),
        (lambda: mtm_subject("core"), py_mtm, mtm_reps[1], n_pos, 5),
        (lambda: mtm_subject("reference"), py_mtm, mtm_reps[2], n_pos, 2),
    ])

    names = {
        "submit": "submit+risk+insert",
        "cycle": "full cycle",
        "cancel": "cancel request",
        "fill": "fill (full)",
        "mtm": "MtM per position",
    }
    t = Table(title="1. like-for-like: same calls, same book (<= 64 own orders + "
              f"{2 * n_acc * n_inst} seeds); ns per op, best (median) of {like_reps} interleaved "
              "runs; the last two ratios from the best", title_justify="left")
    for col in ("operation", "driver ns", "py-API ns", "reference ns", "ref/driver",
                "ref/py-API", "py-API/driver"):
        t.add_column(col, justify="left" if col == "operation" else "right", no_wrap=True)
    for op, ((d, dm), (p, pm), (r, rm)) in rows.items():
        t.add_row(names[op], f"{fmt_ns(d)} ({fmt_ns(dm)})", f"{fmt_ns(p)} ({fmt_ns(pm)})",
                  f"{fmt_ns(r)} ({fmt_ns(rm)})", f"{r / d:,.0f}x ({rm / dm:,.0f}x)",
                  f"{r / p:,.1f}x", f"{p / d:,.1f}x")
    out(t)
    out("  full cycle = submit -> ack -> full fill -> position/P&L/balances; fill (full) = the "
        "fill alone on acked orders; mark-to-market is per position over "
        f"{n_pos} open positions ({mtm_acc} accounts x {mtm_inst} instruments)")
    out("  checked first: 128 full cycles through each path leave identical positions, "
        "balances and account state")
    out(f"  ops per run: {like_batches * batch:,} per path and operation (timed per batch of "
        f"{batch}); mark-to-market calls driver/py-API/reference {mtm_reps[0]}/{mtm_reps[1]}/"
        f"{mtm_reps[2]}; events cleared per command (driver) or drained per batch outside the "
        "clock (Python loops)")

    # ---- 2. the driver at size: growing table, one span per loop
    cap_big = 1 << 18 if n_big > 65_536 else 1 << 17

    def make_big() -> OmsCore:
        return new_core(cap_big, n_acc, n_inst)

    best = {"submit": float("inf"), "cancel": float("inf"), "confirm": float("inf"),
            "ack": float("inf"), "fill": float("inf"), "cycle": float("inf"),
            "cycle_full": float("inf")}
    for _ in range(reps):
        for path in ("cancel", "fill"):
            core = make_big()
            f = flow(core, 0, n_big, n_acc, n_inst)
            gc.collect()
            gc.disable()
            try:
                ns, rej, code = drv.submit_loop(core, f, STRATEGY, QTY, TS0 + 1_000, STEP)
                check("submit_loop", rej, code)
                best["submit"] = min(best["submit"], ns / n_big)
                ts = TS0 + 10**9
                if path == "cancel":
                    ns, rej, code = drv.cancel_loop(core, f, ts, STEP)
                    check("cancel_loop", rej, code)
                    best["cancel"] = min(best["cancel"], ns / n_big)
                    ns, rej, code = drv.confirm_cancel_loop(core, f, ts + 10**8, STEP)
                    check("confirm_cancel_loop", rej, code)
                    best["confirm"] = min(best["confirm"], ns / n_big)
                else:
                    ns, rej, code = drv.ack_loop(core, f, ts, STEP)
                    check("ack_loop", rej, code)
                    best["ack"] = min(best["ack"], ns / n_big)
                    ns, rej, code = drv.fill_loop(core, f, QTY, FEE, QUOTE, 1, ts + 10**8,
                                                  STEP)
                    check("fill_loop", rej, code)
                    best["fill"] = min(best["fill"], ns / n_big)
            finally:
                gc.enable()
            del core
        core = make_big()
        f = flow(core, 0, n_big, n_acc, n_inst)
        ns = timed_gc_off(lambda c=core, f=f: drv.cycle_loop(c, f, STRATEGY, QTY, FEE, QUOTE, 1,
                                                             TS0 + 1_000, STEP)[0])
        best["cycle"] = min(best["cycle"], ns / n_big)
        del core
        # steady state of a long session: the table is full, every insert forgets the oldest
        # closed order, and every fill pushes the oldest trade id out of the dedupe window
        # (one trading day: the seeds and every order of the session within its client-id budget)
        core = new_core(1 << 14, n_acc, n_inst, max_day_orders=2 * ((1 << 16) + n_big))
        drv.cycle_loop(core, flow(core, 0, 1 << 16, n_acc, n_inst), STRATEGY, QTY, FEE, QUOTE,
                       1, TS0 + 1_000, STEP)  # fill the table and the 2**16 trade-id window
        f = flow(core, 1 << 16, n_big, n_acc, n_inst)
        result = timed_gc_off(lambda c=core, f=f: drv.cycle_loop(c, f, STRATEGY, QTY, FEE,
                                                                 QUOTE, 1 + (1 << 16),
                                                                 TS0 + 10**9, STEP))
        check("cycle_full", result[1], result[2])
        best["cycle_full"] = min(best["cycle_full"], result[0] / n_big)
        del core
    lat = np.zeros(n_lat, np.int64)
    core = new_core(1 << 18 if n_lat > 65_536 else 1 << 17, n_acc, n_inst)
    clock_ns = drv.clock_overhead(100_000)
    f = flow(core, 0, n_lat, n_acc, n_inst)
    rej, code = timed_gc_off(lambda c=core, f=f: drv.submit_latency(c, f, STRATEGY, QTY,
                                                                    TS0 + 1_000, STEP, lat))
    check("submit_latency", rej, code)
    del core
    p50, p99, p999 = Latencies(lat).p50_p99_p999()
    pmax = int(lat.max())

    t = Table(title=f"2. driver at size: {n_big:,} orders into a fresh {cap_big:,}-slot table "
              f"(book grows to {n_big:,} + seeds), one timed span per loop", title_justify="left")
    for col in ("operation", "ns/op", "ops/s"):
        t.add_column(col, justify="left" if col == "operation" else "right")
    for key, label in (("submit", "submit+risk+insert"), ("cancel", "cancel request"),
                       ("confirm", "cancel confirm (on_canceled)"), ("ack", "ack (on_ack)"),
                       ("fill", "fill (full, position update)"),
                       ("cycle", "full cycle submit->ack->fill->position"),
                       ("cycle_full", "full cycle, table full (16,384 slots) + trade window")):
        t.add_row(label, fmt_ns(best[key]), fmt_rate(best[key]))
    out(t)
    out(f"  submit latency, each of {n_lat:,} submits timed alone (includes ~{clock_ns:.0f} ns "
        f"of clock_gettime): p50 {p50} ns  p99 {p99} ns  p99.9 {p999} ns  max {pmax} ns")

    # ---- 3. scaling: the same batched submit at 1,000 and at 1,000,000 resting orders
    s_acc, s_inst = 8, 8
    cap_scale = 1 << 21 if scale_big > 500_000 else 1 << 17

    def scale_core(resting: int) -> OmsCore:
        core = new_core(cap_scale, s_acc, s_inst)
        f = flow(core, SEED_K * 2, resting, s_acc, s_inst, 1, 1_000)
        ns, rej, code = drv.submit_loop(core, f, STRATEGY, QTY, TS0 + 1_000, 1)
        check("fill resting", rej, code)
        core.drain_events()
        return core

    scale: dict[int, float] = {}
    fill_s: dict[int, float] = {}
    for resting in (scale_small, scale_big):
        t0 = time.perf_counter()
        core = scale_core(resting)
        fill_s[resting] = time.perf_counter() - t0
        if core.open_order_count() != resting + 2 * s_acc * s_inst:
            raise RuntimeError("resting book has the wrong size")
        best_ns = float("inf")
        for r in range(reps):
            ns = timed_gc_off(
                lambda c=core, r=r: driver_batched_k(c, scale_batches, batch, s_acc, s_inst,
                                                     k0=r * scale_batches * batch))
            best_ns = min(best_ns, ns / (scale_batches * batch))
        scale[resting] = best_ns
        del core
    scale_ratio = scale[scale_big] / scale[scale_small]
    out(f"[bold]3. scaling[/]: batched submit ({scale_batches * batch:,} orders per run, batches "
        f"of {batch}, cancelled between batches), {s_acc} accounts x {s_inst} instruments, "
        f"{cap_scale:,}-slot table, resting orders 1..1000 ticks off on both sides")
    for resting in (scale_small, scale_big):
        out(f"  {resting:>9,} resting: {fmt_ns(scale[resting]):>6} ns/order  "
            f"{fmt_rate(scale[resting]):>12} orders/s   (setup: table + resting book "
            f"{fill_s[resting]:.2f} s, ~{resting // (s_acc * s_inst * 2):,} orders per "
            "self-trade heap)")
    out(f"  ratio {scale_big:,} / {scale_small:,}: {scale_ratio:.2f}x")

    # ---- 4. memory
    probe = OmsCore(max_orders=1 << 20)
    slot, per_order = probe.orders.slot_size, probe.orders.bytes_per_order
    del probe
    out(f"[bold]4. memory[/]: order slot (sizeof order_t, OrderTable.slot_size) {slot} bytes; "
        f"with its client-id index share (OrderTable.bytes_per_order at 2**20 slots) "
        f"{per_order} bytes; the target compares slot_size")

    # ---- targets
    submit_ns = best["submit"]

    def ratio(op: str) -> float:
        return rows[op][2][0] / rows[op][0][0]

    cycle_ns = best["cycle"]
    targets = [
        Target("driver submit+risk+insert (section 2)", f"{1e9 / submit_ns:,.0f}/s",
               f">= {TARGET_SUBMIT_PER_S:,}/s", 1e9 / submit_ns >= TARGET_SUBMIT_PER_S),
        Target("driver full cycle (section 2)", f"{1e9 / cycle_ns:,.0f}/s",
               f">= {TARGET_CYCLE_PER_S:,}/s", 1e9 / cycle_ns >= TARGET_CYCLE_PER_S),
        Target("reference/driver best, submit (section 1)", f"{ratio('submit'):,.0f}x",
               f">= {TARGET_REF_RATIO:.0f}x", ratio("submit") >= TARGET_REF_RATIO),
        Target("reference/driver best, full cycle (section 1)", f"{ratio('cycle'):,.0f}x",
               f">= {TARGET_REF_RATIO:.0f}x", ratio("cycle") >= TARGET_REF_RATIO),
        Target(f"submit at {scale_big:,} / at {scale_small:,} resting", f"{scale_ratio:.2f}x",
               f"<= {TARGET_SCALE_RATIO:.0f}x", scale_ratio <= TARGET_SCALE_RATIO),
        Target("order slot bytes (slot_size)", f"{slot}", f"<= {TARGET_SLOT_BYTES}",
               slot <= TARGET_SLOT_BYTES),
    ]
    t = Table(title="targets" + (" (smoke run: not enforced)" if smoke else ""),
              title_justify="left")
    for col in ("target", "measured", "goal", "result"):
        t.add_column(col)
    for tg in targets:
        t.add_row(tg.name, tg.value, tg.goal, "[green]met[/]" if tg.met else "[red]MISSED[/]")
    out(t)
    return True if smoke else all(tg.met for tg in targets)


def driver_batched_k(core: OmsCore, n_batches: int, batch: int, n_acc: int, n_inst: int,
                     k0: int) -> int:
    """Batched submit (MODE_SUBMIT) starting at order index k0 (client ids stay unique)."""
    ns, ops, rejects, code = drv.batched(core, drv.MODE_SUBMIT, n_batches, batch, n_acc, n_inst,
                                         STRATEGY, OFF_MIN, OFF_SPAN, QTY, FEE, QUOTE, k0, 1,
                                         TS0 + 10**10 + k0 * 3 * STEP, STEP, drv.Flow(batch))
    check("driver scaling submit", rejects, code)
    return ns


if __name__ == "__main__":
    sys.exit(0 if main("--smoke" in sys.argv) else 1)
