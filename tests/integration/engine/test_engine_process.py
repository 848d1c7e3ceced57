"""The real engine process (subprocess) over real ZeroMQ sockets on ipc:// and tcp://127.0.0.1.

A test plays the gateway (PULL for orders, PUSH for exec reports, PUB for market data) and
the writer (PULL), and talks to the engine with the real Python client.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zmq

from bindings.client import Ack, OmsClient, Rejected
from bindings.wire import records as wire
from bindings.wire.spec import ANY_ID, ExecType, MsgType, QueryKind, Scope, WireError
from oms_core.engine.process import EngineProcess, base_config
from oms_core.enums import KillMode, Limit, OrderStatus, Reject, Side

pytestmark = pytest.mark.timeout(60)


class Peer:
    """The test's gateway and writer sockets, connected to the engine's."""

    def __init__(self, eps: dict[str, str]) -> None:
        self.ctx = zmq.Context()
        self.orders = self.ctx.socket(zmq.PULL)
        self.reports = self.ctx.socket(zmq.PUSH)
        self.md = self.ctx.socket(zmq.PUB)
        self.writer = self.ctx.socket(zmq.PULL)
        for s, name in ((self.orders, "gateway_orders_1"), (self.reports, "gateway_events"),
                        (self.md, "gateway_md"), (self.writer, "writer")):
            s.setsockopt(zmq.LINGER, 0)
            s.connect(eps[name])
        self.seq = 0

    def recv(self, sock: zmq.Socket, pred: Callable[[Any], bool], timeout: float = 5.0) -> Any:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if sock.poll(50):
                for rec in wire.decode_frame(sock.recv()):
                    if pred(rec):
                        return rec
        raise TimeoutError("record not received")

    def report(self, **fields: Any) -> None:
        self.seq += 1
        self.reports.send(wire.encode("GW_EXEC_REPORT", 0, self.seq, time.time_ns(), **fields))

    def close(self) -> None:
        self.ctx.destroy(0)


def _wait_events(c: OmsClient, pred: Callable[[Any], bool], timeout: float = 5.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for ev in c.events(0.05):
            if pred(ev):
                return ev
    raise TimeoutError("event not received")


@pytest.fixture(params=["ipc", "tcp"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    with EngineProcess(base_config(tmp_path, request.param), tmp_path) as e:
        yield e


def test_order_lifecycle_through_gateway_and_writer(engine: EngineProcess) -> None:
    peer = Peer(engine.endpoints)
    try:
        with OmsClient(engine.endpoints["client"], account=1, strategy=1, timeout=5) as c:
            assert c.hello([1]).ok
            a = c.submit(1, Side.BUY, 300, 4_999_000)
            assert isinstance(a, Ack) and a.order_id
            gw = peer.recv(peer.orders, lambda r: r.msg_type == MsgType.GW_NEW_ORDER)
            assert (gw.order_id, gw.quantity, gw.price, gw.account) == (a.order_id, 300,
                                                                       4_999_000, 1)
            peer.report(order_id=a.order_id, exec_type=ExecType.ACK, account=1, instrument=1)
            _wait_events(c, lambda e: e.msg_type == MsgType.ORDER_UPDATE
                         and e.status == OrderStatus.NEW)
            peer.report(order_id=a.order_id, exec_type=ExecType.FILL, trade_id=77,
                        last_qty=100, last_price=4_998_000, fee=5, fee_asset=2, account=1,
                        instrument=1, liquidity=1)
            fill = _wait_events(c, lambda e: e.msg_type == MsgType.FILL)
            assert (fill.order_id, fill.quantity, fill.price, fill.trade_id) == (
                a.order_id, 100, 4_998_000, 77)
            pos = _wait_events(c, lambda e: e.msg_type == MsgType.POSITION_UPDATE)
            assert pos.quantity == 100
            # the fee moved the fee asset's balance: the client hears of it
            bal = _wait_events(c, lambda e: e.msg_type == MsgType.BALANCE_UPDATE)
            row = [r for r in c.balances(account=1).rows if r.asset == 2][0]
            assert (bal.asset, bal.total, bal.locked) == (2, row.total, row.locked)
            assert bal.free == bal.total - bal.locked
            q = c.positions(account=1)
            assert q.ok and q.rows[0].quantity == 100 and q.rows[0].open_buy_qty == 200
            # the same fill again is a duplicate: no change
            peer.report(order_id=a.order_id, exec_type=ExecType.FILL, trade_id=77,
                        last_qty=100, last_price=4_998_000, fee_asset=2, account=1,
                        instrument=1)
            assert c.cancel(a.order_id).ok
            gc = peer.recv(peer.orders, lambda r: r.msg_type == MsgType.GW_CANCEL)
            assert gc.order_id == a.order_id
            peer.report(order_id=a.order_id, exec_type=ExecType.CANCELED, account=1,
                        instrument=1)
            done = _wait_events(c, lambda e: e.msg_type == MsgType.ORDER_UPDATE
                                and e.status == OrderStatus.CANCELED)
            assert (done.filled, done.leaves) == (100, 0)
            assert c.positions(account=1).rows[0].quantity == 100
        # the writer got every ACK and event with a gap-free sequence
        seqs = []
        end = time.monotonic() + 3
        while time.monotonic() < end and (not seqs or seqs[-1] < done.seq):
            if peer.writer.poll(50):
                seqs += [r.seq for r in wire.decode_frame(peer.writer.recv())]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        assert seqs[-1] >= done.seq
    finally:
        peer.close()


def test_every_command_answered_once(engine: EngineProcess) -> None:
    ep = engine.endpoints["client"]
    with OmsClient(ep, account=1, strategy=1, timeout=5) as c:
        a = c.submit(1, Side.BUY, 100, 4_999_000)
        assert a.ok
        # a retry of the same order answers the original; a different one is refused
        again = c.submit(1, Side.BUY, 100, 4_999_000, client_order_id=a.client_order_id)
        assert again.ok and again.order_id == a.order_id
        dup = c.submit(1, Side.BUY, 200, 4_999_000, client_order_id=a.client_order_id)
        assert isinstance(dup, Rejected) and dup.code == Reject.DUPLICATE_CLIENT_ORDER_ID
        for qty in (0, -5):
            r = c.submit(1, Side.BUY, qty, 4_999_000)
            assert isinstance(r, Rejected) and r.code == Reject.INVALID_QUANTITY
        assert c.submit(9, Side.BUY, 1, 4_999_000).code == Reject.UNKNOWN_INSTRUMENT
        assert c.submit(1, Side.BUY, 1, 4_999_000, account=44).code == Reject.UNKNOWN_ACCOUNT
        assert c.cancel(123456).code == Reject.UNKNOWN_ORDER
        assert c.replace(a.order_id, price=4_998_000).code == Reject.NOT_REPLACEABLE
        # batch: answers in command order, one each
        res = c.submit_many([dict(instrument=1, side=Side.SELL, quantity=10,
                                  price=5_001_000 + i) for i in range(50)])
        assert len(res) == 50 and all(r.ok for r in res)
        assert len({r.order_id for r in res}) == 50
        assert c.orders(account=1).rows.__len__() == 51
        assert c.mass_cancel(account=1).ok
        assert all(r.status == OrderStatus.PENDING_CANCEL for r in c.orders(account=1).rows)
        # admin: kill / resume / limits / strategy on-off
        assert c.kill(Scope.ACCOUNT, KillMode.HALT, account=1).ok
        assert c.submit(1, Side.BUY, 1, 4_999_000).code == Reject.ACCOUNT_HALTED
        assert c.resume(Scope.ACCOUNT, account=1).ok
        assert c.set_limit(1, Limit.MAX_ORDER_QTY, 50).ok
        assert c.submit(1, Side.BUY, 60, 4_999_000).code == Reject.MAX_ORDER_QUANTITY
        lim = c.limits(account=1)
        assert any(r.limit == Limit.MAX_ORDER_QTY and r.value == 50 for r in lim.rows)
        assert c.set_limit(1, Limit.MAX_ORDER_QTY, 0).ok
        assert c.strategy_enabled(1, 1, False).ok
        assert c.signal(1, 1).code == Reject.STRATEGY_HALTED
        assert c.strategy_enabled(1, 1, True).ok
        # signal: target = 1 x size 100 on account 2 (a limit order at the signal's price)
        sig = c.signal(1, 1, account=2, price=4_990_000)
        assert sig.ok and sig.order_id
        (row,) = c.orders(account=2).rows
        assert (row.order_id, row.quantity, row.side) == (sig.order_id, 100, Side.BUY)
        # the sizer trades toward the filled position: a new signal replaces the working entry
        again = c.signal(1, 1, account=2, price=4_990_000)
        assert again.ok and again.order_id not in (0, sig.order_id)
        status = {r.order_id: r.status for r in c.orders(account=2).rows}
        assert status[sig.order_id] == OrderStatus.PENDING_CANCEL
        snap = c.account_snapshot(account=1)
        assert snap.ok and any(r.msg_type == MsgType.KILL_STATE for r in snap.rows)
        assert c.heartbeat() >= 0


def test_sessions_see_only_their_accounts(engine: EngineProcess) -> None:
    ep = engine.endpoints["client"]
    with OmsClient(ep, account=1, timeout=5) as c1, OmsClient(ep, account=2, timeout=5) as c2:
        assert c1.hello([1]).ok and c2.hello([2]).ok
        a1 = c1.submit(1, Side.BUY, 5, 4_999_000)
        a2 = c2.submit(1, Side.BUY, 5, 4_999_000)
        assert a1.ok and a2.ok
        time.sleep(0.2)
        ev1 = [e for e in c1.events(0.1) if e.msg_type == MsgType.ORDER_UPDATE]
        ev2 = [e for e in c2.events(0.1) if e.msg_type == MsgType.ORDER_UPDATE]
        assert {e.account for e in ev1} == {1} and {e.account for e in ev2} == {2}
        # admin mass cancel of account 2 reaches c2 (it follows account 2), not c1
        assert c1.mass_cancel(account=2).ok
        _wait_events(c2, lambda e: e.msg_type == MsgType.ORDER_UPDATE
                     and e.status == OrderStatus.PENDING_CANCEL)
        assert not [e for e in c1.events(0.2) if getattr(e, "account", 1) == 2]


def test_bad_input_is_refused_and_counted(engine: EngineProcess) -> None:
    ep = engine.endpoints["client"]
    good = wire.encode("NEW_ORDER", 7, 1, 0, client_order_id=1, price=4_999_000, quantity=1,
                       account=3, strategy=0, instrument=1, side=1, order_type=2, tif=1)
    bad_version = bytearray(good)
    bad_version[2] = 9
    unknown = bytearray(good)
    unknown[4:6] = (60).to_bytes(2, "little")
    event = wire.encode("ACK", 8)
    cases = [
        (b"garbage!" * 10, WireError.BAD_MAGIC),
        (good[:40], WireError.TRUNCATED_RECORD),
        (good[:20], WireError.TRUNCATED_HEADER),
        (bytes(bad_version), WireError.BAD_VERSION),
        (bytes(unknown), WireError.UNKNOWN_TYPE),
        (good + b"\0" * 8, WireError.TRUNCATED_HEADER),
        (good * 4097, WireError.TOO_MANY_RECORDS),
        (good * 11_000, WireError.FRAME_TOO_LARGE),
        (event, WireError.WRONG_DIRECTION),
    ]
    ctx = zmq.Context()
    try:
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(ep)
        for frame, err in cases:
            s.send(frame)
            assert s.poll(5000), err
            (rec,) = [r for r in wire.decode_frame(s.recv())
                      if r.msg_type == MsgType.PROTOCOL_ERROR]
            assert rec.error == err, (err, rec)
        s.send(b"")  # an empty frame
        assert s.poll(5000)
        assert wire.decode_frame(s.recv())[0].error == WireError.EMPTY_FRAME
        s.send_multipart([b"a", b"b"])  # two parts: not a frame, no answer, no harm
        s.send(good)
        assert s.poll(5000)
        recs = wire.decode_frame(s.recv())
        assert recs[0].msg_type == MsgType.ACK and recs[0].request_id == 7
    finally:
        ctx.destroy(0)
    with OmsClient(ep, account=1, timeout=5) as c:
        c.send_raw(b"x" * 64)  # garbage: an unmatched PROTOCOL_ERROR arrives as an event
        ev = _wait_events(c, lambda e: e.msg_type == MsgType.PROTOCOL_ERROR)
        assert ev.error == WireError.BAD_MAGIC and ev.bad_request_id == 0
        assert c.submit(1, Side.BUY, 1, 4_999_000).ok
    assert engine.stop() == 0
    st = engine.stats()
    assert st["bad_frames"] >= 9 and st["wrong_direction"] == 1


def test_cancel_on_disconnect(tmp_path: Path) -> None:
    cfg = base_config(tmp_path, "ipc")
    with EngineProcess(cfg, tmp_path) as e:
        peer = Peer(e.endpoints)
        try:
            c = OmsClient(e.endpoints["client"], account=1, timeout=5)
            assert c.hello([1, 2], heartbeat_ms=100).ok
            a1 = c.submit(1, Side.BUY, 5, 4_999_000)
            a2 = c.submit(1, Side.BUY, 5, 4_999_000, account=2)
            peer.recv(peer.orders, lambda r: r.order_id == a2.order_id)
            c.close()  # silent from now on
            gc = peer.recv(peer.orders, lambda r: r.msg_type == MsgType.GW_CANCEL, 5.0)
            assert gc.order_id == a1.order_id  # account 1 cancels on disconnect, 2 does not
            with pytest.raises(TimeoutError):
                peer.recv(peer.orders, lambda r: r.msg_type == MsgType.GW_CANCEL, 0.5)
        finally:
            peer.close()
        assert e.stop() == 0
        assert e.stats()["cod_mass_cancels"] == 1


def test_a_command_client_that_never_said_hello_arms_no_cancel_on_disconnect(
        tmp_path: Path) -> None:
    # a one-shot command (no HELLO, no heartbeats) ends its session when it goes quiet; that
    # is not a disconnect: the orders it placed stay (a desk's tools send one command each)
    cfg = base_config(tmp_path, "ipc", heartbeat_ms=50)  # sessions end after 150 ms quiet
    with EngineProcess(cfg, tmp_path) as e:
        peer = Peer(e.endpoints)
        try:
            c = OmsClient(e.endpoints["client"], account=1, timeout=5)
            a = c.submit(1, Side.BUY, 5, 4_999_000)
            peer.recv(peer.orders, lambda r: r.order_id == a.order_id)
            c.close()
            with pytest.raises(TimeoutError):
                peer.recv(peer.orders, lambda r: r.msg_type == MsgType.GW_CANCEL, 1.0)
        finally:
            peer.close()
        assert e.stop() == 0
        st = e.stats()
        assert st["sessions_expired"] >= 1 and st["cod_mass_cancels"] == 0


def test_sigterm_answers_in_flight_and_exits_zero(tmp_path: Path) -> None:
    with EngineProcess(base_config(tmp_path, "ipc"), tmp_path) as e:
        ctx = zmq.Context()
        try:
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(e.endpoints["client"])
            fb = wire.FrameBuilder(1 << 20)
            for i in range(2000):
                fb.add_fields("NEW_ORDER", i + 1, i + 1, 0, client_order_id=i + 1,
                              price=4_999_000, quantity=1, account=2, instrument=1, side=1,
                              order_type=2, tif=1)
            frame = fb.tobytes()
            for _ in range(5):
                s.send(frame)
            assert e.proc is not None
            time.sleep(0.05)
            e.proc.send_signal(15)
            answers = 0
            end = time.monotonic() + 10
            while answers < 10_000 and time.monotonic() < end:
                if s.poll(100):
                    answers += sum(r.msg_type in (MsgType.ACK, MsgType.REJECT)
                                   for r in wire.decode_frame(s.recv()))
            assert answers == 10_000
        finally:
            ctx.destroy(0)
        assert e.stop() == 0
        st = e.stats()  # the retries were answered with the original orders
        assert st["acks"] == 10_000 and st["duplicate_retries"] == 8000


def test_market_data_sets_reference_price(engine: EngineProcess) -> None:
    peer = Peer(engine.endpoints)
    sub = peer.ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(engine.endpoints["public"])
    try:
        with OmsClient(engine.endpoints["client"], account=1, timeout=5) as c:
            # price collar (10%) around 50000.00: 60000.00 is outside
            assert c.submit(1, Side.BUY, 1, 6_000_000).code == Reject.PRICE_COLLAR
            md = dict(bid=5_999_000, bid_qty=1, ask=6_001_000, ask_qty=1, last=6_000_000,
                      instrument=1)
            end = time.monotonic() + 5
            while time.monotonic() < end:
                peer.md.send(wire.encode("GW_MARKET_DATA", 0, 1, time.time_ns(), **md))
                if c.submit(1, Side.BUY, 1, 6_000_000).ok:
                    break
            else:
                pytest.fail("market data did not reach the engine")
            got = peer.recv(sub, lambda r: r.msg_type == MsgType.GW_MARKET_DATA)
            assert got.last == 6_000_000
    finally:
        peer.close()


def test_query_filters_any_account_for_admin(engine: EngineProcess) -> None:
    with OmsClient(engine.endpoints["client"], account=1, timeout=5) as c:
        c.submit(1, Side.BUY, 1, 4_999_000)
        c.submit(1, Side.BUY, 1, 4_999_000, account=2)
        q = c.query(QueryKind.OPEN_ORDERS, account=ANY_ID)
        assert q.ok and {r.account for r in q.rows} == {1, 2}
        assert c.query(QueryKind.ORDER, account=ANY_ID, order_id=1).code == Reject.UNKNOWN_ORDER
