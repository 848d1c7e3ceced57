"""Decode + apply of a Binance diff-depth message (20 levels per side) into the book.

Three ways, measured side by side in one run:
  compiled : gateways.book.L2Book.apply_depth_update(bytes)  (Cython JSON scan + apply)
  orjson+C : orjson.loads + L2Book.apply_levels                (tight Cython apply)
  baseline : orjson.loads + the dict reference book (gateways.book_ref.RefBook)
Targets (full run): compiled <= 2 us/msg and >= 3x faster than the baseline, judged on
the first line: one Python call per message, as the gateway makes it.

For diagnosis, the same call on a book that has no snapshot yet is timed too: it decodes
and checks the whole message and stops at the sequence check, so it is the decode cost
(plus the call); the difference to the first line is the apply.

Messages are shaped as Binance sends them: each side lists unique prices best first
(bids descending, asks ascending), updates spread uniformly over the top 400 ticks of a
500-level book, 25% of them deletes. The compiled book is also timed on the same updates
in random order with repeated prices ("shuffled"), which Binance never sends but which
defeats the book's sorted-input fast path, so that number is printed too.
"""

from __future__ import annotations

import gc
import random
import sys
import time

import orjson

from gateways.book import BookResult, L2Book
from gateways.book_ref import RefBook

LEVELS = 20
TARGET_NS = 2_000
TARGET_RATIO = 3.0
NOT_SYNCED = int(BookResult.BOOK_NOT_SYNCED)


def make_messages(n: int, seed: int = 7, binance_order: bool = True
                  ) -> tuple[bytes, list[bytes]]:
    """A snapshot and ``n`` contiguous diffs with 20 bid and 20 ask levels each.

    With ``binance_order`` each side has unique prices, best first; otherwise the
    levels are in random order and a price may repeat.
    """
    rnd = random.Random(seed)
    mid = 3_000_000  # 30000.00 at 2 decimals

    def lv(side: int) -> list[list[str]]:
        out = []
        offs = (sorted(rnd.sample(range(1, 401), LEVELS)) if binance_order
                else [rnd.randint(1, 400) for _ in range(LEVELS)])
        for off in offs:
            px = mid - off if side == 0 else mid + off
            q = 0 if rnd.random() < 0.25 else rnd.randint(1, 10_000_000)
            out.append([f"{px / 100:.2f}", f"{q / 1e8:.8f}"])
        return out

    snap = orjson.dumps({"lastUpdateId": 1000,
                         "bids": [[f"{(mid - i) / 100:.2f}", "1.00000000"] for i in range(1, 500)],
                         "asks": [[f"{(mid + i) / 100:.2f}", "1.00000000"] for i in range(1, 500)]})
    msgs = []
    u = 1000
    for _ in range(n):
        U = u + 1
        u = U + rnd.randint(0, 5)
        msgs.append(orjson.dumps({"e": "depthUpdate", "E": 1_700_000_000_000 + u, "s": "BTCUSDT",
                                  "U": U, "u": u, "b": lv(0), "a": lv(1)}))
    return snap, msgs


def _run(fn, msgs: list[bytes], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        fn(msgs)
        best = min(best, (time.perf_counter_ns() - t0) / len(msgs))
    return best


def main(smoke: bool = False) -> bool:
    n = 300 if smoke else 5_000
    rounds = 2 if smoke else 5
    snap, msgs = make_messages(n)
    _, shuffled = make_messages(n, binance_order=False)
    snap_d = orjson.loads(snap)

    def compiled(ms: list[bytes]) -> None:
        book = L2Book("BTCUSDT", 2, 8, capacity=1000)
        book.apply_snapshot(snap)
        apply = book.apply_depth_update
        for m in ms:
            if apply(m):
                raise RuntimeError("compiled book refused a message")

    def decode_only(ms: list[bytes]) -> None:
        book = L2Book("BTCUSDT", 2, 8, capacity=1000)  # no snapshot: decoded, not applied
        apply = book.apply_depth_update
        for m in ms:
            if apply(m) != NOT_SYNCED:
                raise RuntimeError("unsynced book did not answer BOOK_NOT_SYNCED")

    def orjson_c(ms: list[bytes]) -> None:
        book = L2Book("BTCUSDT", 2, 8, capacity=1000)
        book.apply_snapshot(snap)
        apply = book.apply_levels
        loads = orjson.loads
        for m in ms:
            d = loads(m)
            if apply(d["U"], d["u"], d["b"], d["a"], d["E"]):
                raise RuntimeError("compiled book refused a message")

    def baseline(ms: list[bytes]) -> None:
        ref = RefBook(2, 8, capacity=1000)
        ref.snapshot(snap_d["lastUpdateId"], snap_d["bids"], snap_d["asks"])
        loads = orjson.loads
        for m in ms:
            d = loads(m)
            if ref.diff(d["U"], d["u"], d["b"], d["a"]):
                raise RuntimeError("reference book refused a message")

    # same answers before timing anything
    for ms in (msgs, shuffled):
        book = L2Book("BTCUSDT", 2, 8, capacity=1000)
        book.apply_snapshot(snap)
        ref = RefBook(2, 8, capacity=1000)
        ref.snapshot(snap_d["lastUpdateId"], snap_d["bids"], snap_d["asks"])
        for m in ms[:500]:
            d = orjson.loads(m)
            book.apply_depth_update(m)
            ref.diff(d["U"], d["u"], d["b"], d["a"])
        assert book.bids() == ref.bid_levels() and book.asks() == ref.ask_levels()

    gc_was = gc.isenabled()
    gc.disable()
    try:
        t_c = _run(compiled, msgs, rounds)
        t_cs = _run(compiled, shuffled, rounds)
        t_d = _run(decode_only, msgs, rounds)
        t_oc = _run(orjson_c, msgs, rounds)
        t_b = _run(baseline, msgs, rounds)
    finally:
        if gc_was:
            gc.enable()
    ratio = t_b / t_c
    print(f"bench_book: decode+apply depthUpdate, {LEVELS}+{LEVELS} levels, "
          f"{len(msgs[0])} B/msg, {n} msgs x {rounds} rounds (best)")
    print(f"  compiled (Cython scan+apply)   {t_c:9.0f} ns/msg")
    print(f"  compiled, shuffled levels      {t_cs:9.0f} ns/msg   (not a Binance shape)")
    print(f"  decode only (unsynced book)    {t_d:9.0f} ns/msg   (apply ~ {t_c - t_d:.0f} ns)")
    print(f"  orjson + Cython apply_levels   {t_oc:9.0f} ns/msg   ({t_oc / t_c:.2f}x compiled)")
    print(f"  baseline orjson + dict book    {t_b:9.0f} ns/msg   ({ratio:.2f}x compiled)")
    ok = t_c <= TARGET_NS and ratio >= TARGET_RATIO
    print(f"  targets: <= {TARGET_NS} ns [{'ok' if t_c <= TARGET_NS else 'MISS'}], "
          f">= {TARGET_RATIO}x baseline [{'ok' if ratio >= TARGET_RATIO else 'MISS'}]")
    return True if smoke else ok


if __name__ == "__main__":
    sys.exit(0 if main("--smoke" in sys.argv) else 1)
