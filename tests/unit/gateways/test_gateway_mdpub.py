"""The compiled GW_MARKET_DATA publisher (gateways.mdpub) over a real ZeroMQ PUB/SUB pair."""

from __future__ import annotations

import time
from collections.abc import Iterator

import orjson
import pytest
import zmq

from bindings.wire import records as wire
from gateways.book import L2Book
from gateways.engine_link import MD_SEQ_OFFSET
from gateways.mdpub import MdPublisher

MD = wire.CODECS["GW_MARKET_DATA"]


@pytest.fixture
def pubsub() -> Iterator[tuple[zmq.Socket, zmq.Socket]]:
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    sub = ctx.socket(zmq.SUB)
    for s in (pub, sub):
        s.setsockopt(zmq.LINGER, 0)
    pub.bind("tcp://127.0.0.1:*")
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(pub.getsockopt(zmq.LAST_ENDPOINT).decode())
    deadline = time.monotonic() + 5
    while True:  # slow joiner: probe until the subscription has reached the PUB
        pub.send(b"probe")
        if sub.poll(20):
            while sub.poll(20):
                sub.recv()
            break
        assert time.monotonic() < deadline, "SUB never joined"
    try:
        yield pub, sub
    finally:
        ctx.destroy(0)


@pytest.mark.parametrize("native", [True, False])
def test_frame_matches_wire_codec_and_seq_is_gap_free(pubsub, native):
    pub, sub = pubsub
    md = MdPublisher(pub, capacity=4, native=native)
    if native:
        assert md.native  # Linux: libzmq's zmq_send was found
    a, b = md.add(7), md.add(9)
    md.set_top(a, 1000, 2, 1001, 3)
    md.set_last(a, 999, 5)
    assert md.publish(a, 111, 222, 1) == 0
    md.set_top(b, 50, 1, 0, 0)
    assert md.publish(b, 333, 444, 0) == 0
    frames = [sub.recv() for _ in range(2)]
    assert frames[1] == md.frame()
    expect = MD.encode(seq=1, send_ns=222, bid=1000, bid_qty=2, ask=1001, ask_qty=3, last=999,
                       last_qty=5, exch_ts_ns=111, gw_ts_ns=222, instrument=7, md_flags=1)
    assert frames[0] == expect
    r = wire.decode(frames[1])
    assert (r.seq, r.instrument, r.bid, r.ask, r.last, r.md_flags) == (2, 9, 50, 0, 0, 0)
    seqs = [int.from_bytes(f[MD_SEQ_OFFSET:MD_SEQ_OFFSET + 8], "little") for f in frames]
    assert seqs == [1, 2] and md.seq == 2 and md.n_published == 2 and md.n_dropped == 0


def test_publish_book_only_when_top_changes(pubsub):
    pub, sub = pubsub
    md = MdPublisher(pub)
    slot = md.add(3)
    book = L2Book("BTCUSDT", 2, 4)
    book.apply_snapshot(orjson.dumps({"lastUpdateId": 10, "bids": [["10.00", "1"]],
                                      "asks": [["10.05", "2"]]}))

    def diff(u: int, b: list, a: list) -> bytes:
        return orjson.dumps({"e": "depthUpdate", "E": 1_700_000_000_000 + u, "s": "BTCUSDT",
                             "U": u, "u": u, "b": b, "a": a})

    assert md.publish_book(slot, book, 5, 0) == 1
    assert md.publish_book(slot, book, 6, 0) == 0  # unchanged: nothing sent
    assert book.apply_depth_update(diff(11, [["9.00", "1"]], [])) == 0  # below the top
    assert md.publish_book(slot, book, 7, 0) == 0
    assert book.apply_depth_update(diff(12, [], [["10.04", "0.5"]])) == 0  # new best ask
    assert md.publish_book(slot, book, 8, 0) == 1
    first, second = (wire.decode(sub.recv()) for _ in range(2))
    assert (first.bid, first.bid_qty, first.ask, first.ask_qty) == (1000, 10000, 1005, 20000)
    assert (second.ask, second.ask_qty, second.seq) == (1004, 5000, 2)
    assert second.exch_ts_ns == (1_700_000_000_000 + 12) * 1_000_000
    assert md.top(slot) == (1000, 10000, 1004, 5000, 0, 0)
    assert not sub.poll(50)


def test_bad_slot_and_full_and_closed_socket(pubsub):
    pub, _ = pubsub
    md = MdPublisher(pub, capacity=1)
    slot = md.add(1)
    with pytest.raises(ValueError):
        md.add(2)
    with pytest.raises(IndexError):
        md.publish(5, 0, 0, 0)
    pub.close(0)
    with pytest.raises(zmq.ZMQError):  # never hands libzmq a closed socket
        md.publish(slot, 0, 0, 0)
