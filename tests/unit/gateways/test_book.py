"""Unit tests of the compiled L2 book (gateways.book)."""

from __future__ import annotations

import orjson
import pytest

from gateways.book import BookResult, L2Book, format_fixed, parse_fixed

SNAP = orjson.dumps(
    {
        "lastUpdateId": 100,
        "bids": [["10.00", "1.0"], ["9.99", "2.0"], ["9.98", "3.0"]],
        "asks": [["10.01", "1.5"], ["10.02", "2.5"]],
    }
)


def diff(U: int, u: int, b=(), a=(), s: str = "BTCUSDT", wrap: bool = False) -> bytes:
    d = {"e": "depthUpdate", "E": 1700000000000 + u, "s": s, "U": U, "u": u,
         "b": [list(x) for x in b], "a": [list(x) for x in a]}
    if wrap:
        d = {"stream": "btcusdt@depth@100ms", "data": d}
    return orjson.dumps(d)


def synced_book(capacity: int = 100) -> L2Book:
    book = L2Book("btcusdt", 2, 4, capacity=capacity)
    assert book.apply_snapshot(SNAP) == BookResult.BOOK_OK
    return book


def test_snapshot_sorted_and_top():
    book = synced_book()
    assert book.synced and book.last_update_id == 100
    assert book.top() == (1000, 10000, 1001, 15000)
    assert book.bids() == [(1000, 10000), (999, 20000), (998, 30000)]
    assert book.asks(1) == [(1001, 15000)]
    assert book.best_bid == (1000, 10000) and book.best_ask == (1001, 15000)


def test_not_synced_until_snapshot():
    book = L2Book("BTCUSDT", 2, 4)
    assert book.apply_depth_update(diff(1, 2)) == BookResult.BOOK_NOT_SYNCED
    assert book.best_bid is None and book.top() == (0, 0, 0, 0)


def test_sequence_rules():
    book = synced_book()
    # u <= lastUpdateId: dropped
    assert book.apply_depth_update(diff(90, 100, [("10.00", "9")])) == BookResult.BOOK_STALE_DIFF
    assert book.top()[1] == 10000 and book.n_dropped == 1
    # first diff must straddle lastUpdateId + 1
    assert book.apply_depth_update(diff(95, 105, [("10.00", "9")])) == BookResult.BOOK_OK
    assert book.top()[1] == 90000 and book.last_update_id == 105
    # next U must be previous u + 1
    assert book.apply_depth_update(diff(106, 108, a=[("10.01", "0")])) == BookResult.BOOK_OK
    assert book.best_ask == (1002, 25000)
    assert book.apply_depth_update(diff(110, 111)) == BookResult.BOOK_GAP
    assert not book.synced and book.n_gaps == 1
    assert book.apply_depth_update(diff(109, 112)) == BookResult.BOOK_NOT_SYNCED


def test_first_diff_after_snapshot_must_cover_next_id():
    book = synced_book()
    assert book.apply_depth_update(diff(102, 104)) == BookResult.BOOK_GAP


def test_resync_after_gap():
    book = synced_book()
    assert book.apply_depth_update(diff(101, 101)) == BookResult.BOOK_OK
    assert book.apply_depth_update(diff(150, 151)) == BookResult.BOOK_GAP
    snap2 = orjson.dumps({"lastUpdateId": 151, "bids": [["11.00", "1"]], "asks": [["11.01", "1"]]})
    assert book.apply_snapshot(snap2) == BookResult.BOOK_OK
    assert book.bids() == [(1100, 10000)]
    assert book.apply_depth_update(diff(150, 152, [("11.00", "0")])) == BookResult.BOOK_OK
    assert book.best_bid is None and book.synced


def test_combined_stream_wrapper():
    book = synced_book()
    assert book.apply_depth_update(diff(101, 101, [("10.50", "1")], wrap=True)) == 0
    assert book.best_bid == (1050, 10000)


def test_wrong_symbol_and_other_event_refused():
    book = synced_book()
    assert book.apply_depth_update(diff(101, 101, s="ETHUSDT")) == BookResult.BOOK_WRONG_SYMBOL
    trade = b'{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"10.00","q":"1","U":101,"u":101,' \
            b'"b":[],"a":[]}'
    assert book.apply_depth_update(trade) == BookResult.BOOK_MALFORMED
    assert book.last_update_id == 100


@pytest.mark.parametrize(
    "msg",
    [
        b"",
        b"{",
        b"[]",
        b"null",
        b'{"e":"depthUpdate","U":101,"u":101,"b":[["10.00"]],"a":[]}',
        b'{"e":"depthUpdate","U":101,"u":101,"b":[["10.00","x"]],"a":[]}',
        b'{"e":"depthUpdate","U":101,"u":101,"b":[[10.0,"1"]],"a":[]}',
        b'{"e":"depthUpdate","U":101,"u":101,"b":[["10.001","1"]],"a":[]}',  # too precise
        b'{"e":"depthUpdate","U":101,"u":101,"b":[],"a":[]',
        b'{"e":"depthUpdate","U":"101","u":101,"b":[],"a":[]}',
        b'{"e":"depthUpdate","U":102,"u":101,"b":[],"a":[]}',  # U > u
        b'{"e":"depthUpdate","u":101,"b":[],"a":[]}',  # missing U
        b'{"e":"depthUpdate","U":101,"u":101,"b":[["99999999999999999999","1"]],"a":[]}',
        b'{"e":"depthUpdate","U":101,"u":101,"b":[["10.00","1"],["9.00","1"]],"a":[]}xx',
    ],
)
def test_malformed_never_touches_book(msg):
    book = synced_book()
    before = (book.bids(), book.asks(), book.last_update_id)
    rc = book.apply_depth_update(msg)
    assert rc == BookResult.BOOK_MALFORMED or (rc == 0 and msg.endswith(b"xx"))
    if rc != 0:
        assert (book.bids(), book.asks(), book.last_update_id) == before
        assert book.n_malformed == 1


def test_unknown_keys_skipped():
    msg = (b'{"x":{"y":[1,2,{"z":"a\\"b"}],"w":null},"e":"depthUpdate","E":5,"s":"BTCUSDT",'
           b'"U":101,"u":101,"pu":100,"b":[["10.00","2","extra"]],"a":[],"t":true}')
    book = synced_book()
    assert book.apply_depth_update(msg) == 0
    assert book.best_bid == (1000, 20000) and book.event_time_ms == 5


def test_capacity_drops_worst_levels():
    book = synced_book(capacity=3)
    assert book.apply_depth_update(diff(101, 101, [("10.50", "1"), ("9.00", "1")])) == 0
    assert [p for p, _ in book.bids()] == [1050, 1000, 999]
    assert book.n_bids == 3


def test_too_big_message():
    book = L2Book("BTCUSDT", 2, 4, capacity=10, max_msg_levels=2)
    snap = orjson.dumps({"lastUpdateId": 1, "bids": [["1", "1"]] * 3, "asks": []})
    assert book.apply_snapshot(snap) == BookResult.BOOK_TOO_BIG
    assert not book.synced


def test_orjson_apply_path_matches():
    a, b = synced_book(), synced_book()
    m = diff(99, 103, [("10.00", "0"), ("9.97", "4")], [("10.015", "0")] and [("10.03", "1")])
    assert a.apply_depth_update(m) == 0
    d = orjson.loads(m)
    assert b.apply_levels(d["U"], d["u"], d["b"], d["a"], d["E"]) == 0
    assert a.bids() == b.bids() and a.asks() == b.asks()
    assert b.apply_levels(104, 104, [["bad", "1"]], []) == BookResult.BOOK_MALFORMED


def test_staleness_timestamp():
    book = L2Book("BTCUSDT", 2, 4)
    book.apply_snapshot(SNAP, now_ns=1_000)
    assert book.updated_ns == 1_000 and book.age_ns(5_000) == 4_000
    book.apply_depth_update(diff(101, 101), now_ns=7_000)
    assert book.age_ns(8_000) == 1_000


def test_parse_and_format_fixed():
    assert parse_fixed("0.00012300", 8) == 12300
    assert parse_fixed(b"42", 3) == 42000
    assert parse_fixed("1.", 1) == 10
    assert format_fixed(12300, 8) == "0.00012300"
    assert format_fixed(7, 0) == "7"
    for bad in ("", ".", "1e5", "-1", "1.2.3", "0.0001"):
        with pytest.raises(ValueError):
            parse_fixed(bad, 3)
    with pytest.raises(TypeError):
        parse_fixed(1.5, 2)
