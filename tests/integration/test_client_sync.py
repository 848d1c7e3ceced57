"""Blocking OmsClient against the stub engine over real sockets (tcp loopback and ipc)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from bindings import (
    Ack,
    MsgType,
    OmsClient,
    OmsTimeout,
    ProtocolError,
    QueryKind,
    Rejected,
    RejectedError,
    SignalMode,
)
from bindings.stub_engine import StubEngine
from bindings.wire.spec import WireError
from oms_core.enums import OrderStatus, OrderType, Reject, Side

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=["tcp", "ipc"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StubEngine]:
    ep = "tcp://127.0.0.1:0" if request.param == "tcp" else f"ipc://{tmp_path}/oms.sock"
    with StubEngine(ep) as e:
        yield e


@pytest.fixture
def client(engine: StubEngine) -> Iterator[OmsClient]:
    with OmsClient(engine.endpoint, account=1, strategy=2, timeout=3.0,
                   precisions={7: (2, 3)}) as c:
        yield c


def test_submit_ack_and_event(client: OmsClient, engine: StubEngine) -> None:
    assert isinstance(client.hello([1]), Ack)
    ack = client.submit(7, Side.BUY, "1.5", "101.25", post_only=True)
    assert isinstance(ack, Ack) and ack.ok and ack.order_id > 0
    assert ack.cmd_type == MsgType.NEW_ORDER and ack.recv_ns <= ack.ack_ns
    sent = engine.received[-1]
    assert (sent.price, sent.quantity, sent.order_type, sent.order_flags) == (
        10125, 1500, OrderType.LIMIT, 2)
    events = list(client.events(timeout=0.5))
    assert [(e.msg_type, e.order_id, e.status) for e in events] == [
        (MsgType.ORDER_UPDATE, ack.order_id, OrderStatus.NEW)]


def test_reject_is_returned_or_raised(engine: StubEngine) -> None:
    with OmsClient(engine.endpoint, account=1, timeout=3.0) as c:
        r = c.submit(7, Side.SELL, 0, 100)
        assert isinstance(r, Rejected) and not r.ok
        assert r.code == Reject.INVALID_QUANTITY and "quantity" in r.reason
    with OmsClient(engine.endpoint, account=1, timeout=3.0, raise_on_reject=True) as c:
        with pytest.raises(RejectedError) as ei:
            c.cancel(order_id=12345)
        assert ei.value.rejected.code == Reject.UNKNOWN_ORDER


def test_cancel_replace_massive_and_queries(client: OmsClient) -> None:
    a = client.submit(7, Side.BUY, 1000, 5000)
    b = client.submit(7, Side.SELL, 2000, 6000)
    q = client.orders()
    assert q.ok and q.kind == QueryKind.OPEN_ORDERS
    assert {r.order_id for r in q.rows} == {a.order_id, b.order_id}
    assert client.replace(a.order_id, price=5100).ok
    assert client.cancel(client_order_id=b.client_order_id).order_id == b.order_id
    assert client.mass_cancel().ok
    br = client.bracket(7, Side.BUY, 1000, entry_price=5000, tp_price=5500, sl_trigger_price=4500)
    assert br.ok and len({br.order_id, br.leg2_order_id, br.leg3_order_id}) == 3
    oco = client.oco(7, Side.SELL, 1000, a_type=OrderType.LIMIT, a_price=5500,
                     b_type=OrderType.STOP_MARKET, b_trigger_price=4500)
    assert oco.ok and oco.leg2_order_id
    assert client.signal(7, 1).ok
    assert client.signal(7, "-0.5", mode=SignalMode.TARGET_QTY).ok
    assert client.kill().ok and client.resume().ok
    assert client.set_limit(1, 1, 10).ok
    assert client.positions().ok and client.balances().rows == []


def test_heartbeat_round_trip(client: OmsClient) -> None:
    rtt = client.heartbeat()
    assert 0 < rtt < 1_000_000_000


def test_batch_of_orders_in_few_frames(client: OmsClient, engine: StubEngine) -> None:
    frames_before = engine.frames
    orders = [{"instrument": 7, "side": Side.BUY, "quantity": i + 1, "price": 100}
              for i in range(2000)]
    orders[5]["quantity"] = 0
    res = client.submit_many(orders)
    assert len(res) == 2000
    assert isinstance(res[5], Rejected)
    assert sum(r.ok for r in res) == 1999
    assert engine.frames - frames_before == 1  # 2000 x 96 bytes fit one frame
    assert len(list(client.events(timeout=0.5))) == 1999


def test_timeout_raises_clear_error(tmp_path: Path) -> None:
    ctx = zmq.Context.instance()
    silent = ctx.socket(zmq.ROUTER)
    silent.setsockopt(zmq.LINGER, 0)
    port = silent.bind_to_random_port("tcp://127.0.0.1")
    try:
        with OmsClient(f"tcp://127.0.0.1:{port}", account=1, timeout=0.2) as c:
            t0 = time.monotonic()
            with pytest.raises(OmsTimeout):
                c.submit(7, Side.BUY, 1, 1)
            assert time.monotonic() - t0 < 2.0
    finally:
        silent.close(linger=0)


def test_malformed_frame_gets_protocol_error(client: OmsClient) -> None:
    client.send_raw(b"not a record at all, not even a header...")
    ev = list(client.events(timeout=0.5))
    assert len(ev) == 1 and ev[0].msg_type == MsgType.PROTOCOL_ERROR
    assert ev[0].error == WireError.BAD_MAGIC
    # a wrong-version command with a request id fails that request
    rid, rec = client.session.encode("HEARTBEAT", {})
    bad = bytearray(rec)
    bad[2] = 9
    client.send_raw(bytes(bad))
    with pytest.raises(ProtocolError) as ei:
        client._wait([rid])
    assert ei.value.error == WireError.BAD_VERSION


def test_float_price_refused(client: OmsClient) -> None:
    with pytest.raises(TypeError):
        client.submit(7, Side.BUY, 1, 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        client.submit(8, Side.BUY, "1", "1.5")  # no precisions for instrument 8
