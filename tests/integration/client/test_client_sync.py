"""Blocking OmsClient against the real engine process over real sockets (tcp loopback and ipc);
the test plays the gateway. Tests about the client alone (timeouts, frames it batches, what
it refuses before sending) use a silent socket or the stub engine."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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
from bindings.wire import records as wire
from bindings.wire.spec import ExecType, WireError
from oms_core.engine.process import EngineProcess, base_config
from oms_core.enums import OrderFlag, OrderStatus, OrderType, Reject, Side

pytestmark = pytest.mark.timeout(60)

BTC = 1  # base_config: BTCUSDT, 2 price / 5 quantity decimals, last 50000.00


class Gateway:
    """The test as the exchange gateway of base_config's exchange 1."""

    def __init__(self, eps: dict[str, str]) -> None:
        self.ctx = zmq.Context()
        self.orders = self.ctx.socket(zmq.PULL)
        self.reports = self.ctx.socket(zmq.PUSH)
        for s, name in ((self.orders, "gateway_orders_1"), (self.reports, "gateway_events")):
            s.setsockopt(zmq.LINGER, 0)
            s.connect(eps[name])
        self.pending: list[Any] = []
        self.seq = 0

    def recv(self, pred: Callable[[Any], bool], timeout: float = 5.0) -> Any:
        end = time.monotonic() + timeout
        while True:
            for i, rec in enumerate(self.pending):
                if pred(rec):
                    return self.pending.pop(i)
            if time.monotonic() >= end:
                raise TimeoutError("no such record reached the gateway")
            if self.orders.poll(50):
                self.pending += wire.decode_frame(self.orders.recv())

    def ack(self, order_id: int, account: int) -> None:
        self.seq += 1
        self.reports.send(wire.encode("GW_EXEC_REPORT", 0, self.seq, time.time_ns(),
                                      order_id=order_id, exch_order_id=order_id,
                                      exec_type=ExecType.ACK, account=account, instrument=BTC))

    def close(self) -> None:
        self.ctx.destroy(0)


@pytest.fixture(params=["tcp", "ipc"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EngineProcess]:
    with EngineProcess(base_config(tmp_path, request.param), tmp_path) as e:
        yield e


@pytest.fixture
def gateway(engine: EngineProcess) -> Iterator[Gateway]:
    g = Gateway(engine.endpoints)
    yield g
    g.close()


@pytest.fixture
def client(engine: EngineProcess) -> Iterator[OmsClient]:
    with OmsClient(engine.endpoints["client"], account=1, strategy=1, timeout=5.0,
                   precisions={BTC: (2, 5)}) as c:
        yield c


def test_submit_ack_and_event(client: OmsClient, gateway: Gateway) -> None:
    assert isinstance(client.hello([1]), Ack)
    ack = client.submit(BTC, Side.BUY, "0.015", "50010.25", post_only=True)
    assert isinstance(ack, Ack) and ack.ok and ack.order_id > 0
    assert ack.cmd_type == MsgType.NEW_ORDER and ack.recv_ns <= ack.ack_ns
    sent = gateway.recv(lambda r: r.msg_type == MsgType.GW_NEW_ORDER)
    assert (sent.order_id, sent.price, sent.quantity, sent.order_type, sent.order_flags) == (
        ack.order_id, 5_001_025, 1500, OrderType.LIMIT, OrderFlag.POST_ONLY)
    gateway.ack(ack.order_id, 1)
    events = list(client.events(timeout=0.5))
    updates = [(e.order_id, e.status) for e in events if e.msg_type == MsgType.ORDER_UPDATE]
    assert updates[-1] == (ack.order_id, OrderStatus.NEW)


def test_reject_is_returned_or_raised(engine: EngineProcess) -> None:
    ep = engine.endpoints["client"]
    with OmsClient(ep, account=1, timeout=5.0) as c:
        r = c.submit(BTC, Side.SELL, 0, 5_000_000)
        assert isinstance(r, Rejected) and not r.ok
        assert r.code == Reject.INVALID_QUANTITY and "quantity" in r.reason
        assert str(r) == "INVALID_QUANTITY (quantity must be positive and within range)"
        far = c.submit(BTC, Side.BUY, 1, 9_000_000)  # the engine's risk checks answer
        assert isinstance(far, Rejected) and far.code == Reject.PRICE_COLLAR
    with OmsClient(ep, account=1, timeout=5.0, raise_on_reject=True) as c:
        with pytest.raises(RejectedError) as ei:
            c.cancel(order_id=12345)
        assert ei.value.rejected.code == Reject.UNKNOWN_ORDER
        assert "UNKNOWN_ORDER (unknown order)" in str(ei.value)


def test_cancel_replace_massive_and_queries(client: OmsClient, gateway: Gateway) -> None:
    a = client.submit(BTC, Side.BUY, 1000, 4_990_000)
    b = client.submit(BTC, Side.SELL, 2000, 5_010_000)
    q = client.orders()
    assert q.ok and q.kind == QueryKind.OPEN_ORDERS
    assert {r.order_id for r in q.rows} == {a.order_id, b.order_id}
    for o in (a, b):
        gateway.recv(lambda r, oid=o.order_id: r.order_id == oid)
        gateway.ack(o.order_id, 1)
    _until(lambda: {r.status for r in client.orders().rows} == {OrderStatus.NEW})
    assert client.replace(a.order_id, price=4_991_000).ok
    rep = gateway.recv(lambda r: r.msg_type == MsgType.GW_REPLACE)
    assert (rep.order_id, rep.price) == (a.order_id, 4_991_000)
    assert client.cancel(client_order_id=b.client_order_id).order_id == b.order_id
    assert gateway.recv(lambda r: r.msg_type == MsgType.GW_CANCEL).order_id == b.order_id
    assert client.mass_cancel().ok
    br = client.bracket(BTC, Side.BUY, 1000, entry_price=4_990_000, tp_price=5_100_000,
                        sl_trigger_price=4_900_000)
    assert br.ok and len({br.order_id, br.leg2_order_id, br.leg3_order_id}) == 3
    oco = client.oco(BTC, Side.SELL, 1000, a_type=OrderType.LIMIT, a_price=5_100_000,
                     b_type=OrderType.STOP_MARKET, b_trigger_price=4_900_000)
    assert oco.ok and oco.leg2_order_id
    bad = client.bracket(BTC, Side.BUY, 1000, entry_price=4_990_000, tp_price=4_900_000,
                         sl_trigger_price=5_100_000)  # exits on the wrong sides
    assert isinstance(bad, Rejected) and bad.code == Reject.INVALID_CONTINGENCY
    # strategy 1 sizes 100 per unit for account 1 as a limit entry at the signal's price;
    # at the OCO's sell price it would meet it
    assert client.signal(BTC, 1, price=5_100_000).code == Reject.SELF_TRADE
    assert client.signal(BTC, 1, price=4_980_000).ok
    assert client.signal(BTC, "-0.001", mode=SignalMode.TARGET_QTY, price=5_200_000).ok
    assert client.kill().ok and client.resume().ok
    assert client.set_limit(1, 1, 10).ok
    assert client.positions().ok and client.balances().ok


def test_heartbeat_round_trip(client: OmsClient) -> None:
    rtt = client.heartbeat()
    assert 0 < rtt < 1_000_000_000


def test_batch_of_orders_answered_in_order(client: OmsClient) -> None:
    orders = [{"instrument": BTC, "side": Side.BUY, "quantity": i + 1, "price": 4_990_000}
              for i in range(2000)]
    orders[5]["quantity"] = 0
    res = client.submit_many(orders)
    assert len(res) == 2000
    assert isinstance(res[5], Rejected) and res[5].code == Reject.INVALID_QUANTITY
    assert sum(r.ok for r in res) == 1999
    assert len({r.order_id for r in res if r.ok}) == 1999


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


# -- the client alone -------------------------------------------------------------------------


def test_timeout_raises_clear_error() -> None:
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


def test_batch_fits_few_frames() -> None:
    with StubEngine() as engine, OmsClient(engine.endpoint, account=1, timeout=5.0) as c:
        frames_before = engine.frames
        res = c.submit_many([{"instrument": 7, "side": Side.BUY, "quantity": 1, "price": 100}
                             for _ in range(2000)])
        assert len(res) == 2000
        assert engine.frames - frames_before == 1  # 2000 x 96 bytes fit one frame


def test_refused_before_sending() -> None:
    with OmsClient("tcp://127.0.0.1:9", precisions={7: (2, 3)}, timeout=0.2) as c:
        with pytest.raises(TypeError):
            c.submit(7, Side.BUY, 1, 1.5, account=1)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="no precisions known for instrument 8"):
            c.submit(8, Side.BUY, "1", "1.5", account=1)
        with pytest.raises(ValueError, match="more than 2 decimals"):
            c.submit(7, Side.BUY, "1", "1.505", account=1)
        with pytest.raises(ValueError, match="no account"):
            c.submit(7, Side.BUY, 1, 100)  # no default account 0
        with pytest.raises(KeyError, match="unknown instrument 'BTCUSDT'"):
            c.submit("BTCUSDT", Side.BUY, 1, 100, account=1)  # names need config=


def _until(pred: Callable[[], bool], timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise TimeoutError("condition not reached")
        time.sleep(0.02)
