"""Property tests: the compiled book and the dict reference book give the same answers."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from gateways.book import L2Book
from gateways.book_ref import RefBook

PDEC, QDEC = 2, 3

price = st.integers(min_value=1, max_value=400).map(lambda t: f"{t / 100:.2f}")
qty = st.one_of(
    st.just("0"), st.integers(min_value=0, max_value=5000).map(lambda q: f"{q / 1000:.3f}")
)
levels = st.lists(st.tuples(price, qty), max_size=12)
# each step: a diff with a sequence jump (1 = contiguous, 0 = stale replay, >1 = gap)
step = st.tuples(st.sampled_from([1, 1, 1, 1, 1, 0, 3]), st.integers(0, 3), levels, levels)


@settings(max_examples=150, deadline=None)
@given(
    capacity=st.integers(min_value=1, max_value=8),
    snap_bids=levels,
    snap_asks=levels,
    steps=st.lists(step, max_size=25),
)
def test_compiled_matches_reference(capacity, snap_bids, snap_asks, steps):
    book = L2Book("BTCUSDT", PDEC, QDEC, capacity=capacity)
    ref = RefBook(PDEC, QDEC, capacity=capacity)
    # the snapshot may list a price twice; both books keep the last value
    snap = {"lastUpdateId": 10, "bids": [list(x) for x in snap_bids],
            "asks": [list(x) for x in snap_asks]}
    assert book.apply_snapshot(orjson.dumps(snap)) == ref.snapshot(10, snap_bids, snap_asks)
    last = 10
    first = True
    for jump, span, bids, asks in steps:
        U = last + jump if not first else last - 1 + jump
        u = U + span
        msg = orjson.dumps({"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": U, "u": u,
                            "b": [list(x) for x in bids], "a": [list(x) for x in asks]})
        rc = book.apply_depth_update(msg)
        assert rc == ref.diff(U, u, bids, asks)
        if rc == 0:
            last = u
            first = False
        assert book.bids() == ref.bid_levels()
        assert book.asks() == ref.ask_levels()
        assert book.top() == ref.top()
        assert book.synced == ref.synced
        assert book.last_update_id == ref.last_update_id
        if not book.synced:
            break


# Larger books exercise the one-pass merge (taken when a diff cannot overflow capacity),
# the sorted snapshot load and the interpolation search; Binance-shaped sides (unique,
# best first) take the reverse-instead-of-sort path.
wide_price = st.integers(min_value=1, max_value=3000).map(lambda t: f"{t / 100:.2f}")
wide_levels = st.lists(st.tuples(wide_price, qty), max_size=40)


def _binance_shape(lv: list[tuple[str, str]], bids: bool) -> list[tuple[str, str]]:
    uniq = dict(lv)
    return sorted(uniq.items(), key=lambda x: float(x[0]), reverse=bids)


@settings(max_examples=120, deadline=None)
@given(
    capacity=st.integers(min_value=20, max_value=300),
    snap_bids=wide_levels,
    snap_asks=wide_levels,
    steps=st.lists(st.tuples(wide_levels, wide_levels, st.booleans()), max_size=20),
    sorted_snap=st.booleans(),
)
def test_compiled_matches_reference_large(capacity, snap_bids, snap_asks, steps, sorted_snap):
    if sorted_snap:
        snap_bids = [x for x in _binance_shape(snap_bids, True) if float(x[1])]
        snap_asks = [x for x in _binance_shape(snap_asks, False) if float(x[1])]
    book = L2Book("BTCUSDT", PDEC, QDEC, capacity=capacity)
    ref = RefBook(PDEC, QDEC, capacity=capacity)
    snap = {"lastUpdateId": 10, "bids": [list(x) for x in snap_bids],
            "asks": [list(x) for x in snap_asks]}
    assert book.apply_snapshot(orjson.dumps(snap)) == ref.snapshot(10, snap_bids, snap_asks)
    assert book.bids() == ref.bid_levels() and book.asks() == ref.ask_levels()
    u = 10
    for bids, asks, shaped in steps:
        if shaped:
            bids, asks = _binance_shape(bids, True), _binance_shape(asks, False)
        msg = orjson.dumps({"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": u + 1, "u": u + 1,
                            "b": [list(x) for x in bids], "a": [list(x) for x in asks]})
        u += 1
        assert book.apply_depth_update(msg) == ref.diff(u, u, bids, asks) == 0
        assert book.bids() == ref.bid_levels()
        assert book.asks() == ref.ask_levels()
        assert book.top() == ref.top()
