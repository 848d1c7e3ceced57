"""The in-place merge of gateways.book on dense, deep books, held to the dict reference.

The property tests in test_book_props.py use small price ranges; these use the shape the
benchmark measures (a 500-level snapshot, 20 updates per side over the top 400 ticks, a
quarter of them deletes) and dense books where most updates hit existing levels, so every
merge case (replace, insert, delete of a present or absent level, segments moving up,
down or not at all, fewer or more than four updates per side) is taken many times.
"""

from __future__ import annotations

import random

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.bench_book import make_messages
from gateways.book import L2Book
from gateways.book_ref import RefBook


def _check_stream(snap: bytes, msgs: list[bytes], capacity: int, pdec: int, qdec: int) -> None:
    book = L2Book("BTCUSDT", pdec, qdec, capacity=capacity)
    ref = RefBook(pdec, qdec, capacity=capacity)
    d = orjson.loads(snap)
    assert book.apply_snapshot(snap) == ref.snapshot(d["lastUpdateId"], d["bids"], d["asks"])
    for m in msgs:
        d = orjson.loads(m)
        assert book.apply_depth_update(m) == ref.diff(d["U"], d["u"], d["b"], d["a"]) == 0
        assert book.bids() == ref.bid_levels()
        assert book.asks() == ref.ask_levels()


def test_benchmark_workload_matches_reference():
    snap, msgs = make_messages(1500)
    _check_stream(snap, msgs, 1000, 2, 8)


def test_benchmark_workload_shuffled_matches_reference():
    snap, msgs = make_messages(800, seed=11, binance_order=False)
    _check_stream(snap, msgs, 1000, 2, 8)


def _dense_stream(seed: int, n_msgs: int, span: int, per_side: int) -> tuple[bytes, list[bytes]]:
    rnd = random.Random(seed)

    def side(lo: int) -> list[list[str]]:
        offs = rnd.sample(range(span), min(per_side, span))
        return [[f"{(lo + o) / 100:.2f}", "0" if rnd.random() < 0.4 else str(rnd.randint(1, 9))]
                for o in offs]

    snap = orjson.dumps({"lastUpdateId": 5,
                         "bids": [[f"{(1000 - i) / 100:.2f}", "1"] for i in range(span // 2)],
                         "asks": [[f"{(1001 + i) / 100:.2f}", "1"] for i in range(span // 2)]})
    msgs = []
    for i in range(n_msgs):
        msgs.append(orjson.dumps({"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": 6 + i,
                                  "u": 6 + i, "b": side(1000 - span + 1), "a": side(1001)}))
    return snap, msgs


def test_dense_books_every_merge_case():
    for seed in range(6):
        for per_side in (1, 3, 4, 5, 9, 40, 64, 70):
            snap, msgs = _dense_stream(seed, 30, 120, per_side)
            _check_stream(snap, msgs, 1000, 2, 0)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    span=st.integers(2, 200),
    per_side=st.integers(1, 70),
    capacity=st.integers(60, 400),
)
def test_dense_books_property(seed, span, per_side, capacity):
    snap, msgs = _dense_stream(seed, 12, span, per_side)
    _check_stream(snap, msgs, capacity, 2, 0)
