"""The engine's compiled ZeroMQ sink (oms_core/engine/zmqio.pyx) around the loop.

Real engine processes, real sockets on ipc://. Covers what the sink does outside the loop:
the session cache (a session that expired and comes back with the same routing id), events
routed to other sessions, malformed envelopes, replies cut into many frames.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zmq

from bindings.client import OmsClient
from bindings.wire.spec import MsgType
from oms_core.engine.process import EngineProcess, base_config
from oms_core.enums import Side

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    with EngineProcess(base_config(tmp_path, "ipc", writer=None), tmp_path) as e:
        yield e


def _events(c: OmsClient, pred: Callable[[Any], bool], timeout: float = 5.0) -> list[Any]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = [e for e in c.events(0.05) if pred(e)]
        if got:
            return got
    raise TimeoutError("event not received")


def test_routing_to_other_sessions_and_expired_session_coming_back(engine: EngineProcess,
                                                                   ) -> None:
    ep = engine.endpoints["client"]
    with OmsClient(ep, account=1, timeout=5, identity=b"c1") as c1, \
            OmsClient(ep, account=1, timeout=5, identity=b"c2") as c2:
        assert c1.hello([1], heartbeat_ms=100).ok  # silent for 300 ms: the session ends
        assert c2.hello([1], heartbeat_ms=10_000).ok
        a = c1.submit(1, Side.BUY, 3, 4_999_000)
        assert a.ok
        # c1's order reaches c2 (it follows account 1)
        _events(c2, lambda e: e.msg_type == MsgType.ORDER_UPDATE and e.order_id == a.order_id)
        time.sleep(0.8)
        # same routing id again: a new session, made on this message
        b = c1.submit(1, Side.BUY, 4, 4_999_000)
        assert b.ok and b.order_id != a.order_id
        list(c1.events(0.1))
        # c2's order reaches the new c1 session: it is the one the engine keeps
        c = c2.submit(1, Side.SELL, 5, 5_001_000)
        assert c.ok
        _events(c1, lambda e: e.msg_type == MsgType.ORDER_UPDATE and e.order_id == c.order_id)
    assert engine.stop() == 0
    st = engine.stats()
    assert st["sessions_expired"] >= 1
    assert st["acks"] >= 5


def test_bad_envelope_counted_then_served(engine: EngineProcess) -> None:
    ctx = zmq.Context()
    try:
        raw = ctx.socket(zmq.DEALER)
        raw.setsockopt(zmq.LINGER, 0)
        raw.connect(engine.endpoints["client"])
        raw.send_multipart([b"two", b"frames"])  # the ROUTER sees three parts
        with OmsClient(engine.endpoints["client"], account=1, timeout=5) as c:
            assert c.submit(1, Side.BUY, 1, 4_999_000).ok
        assert raw.poll(200) == 0  # no answer to a malformed envelope
    finally:
        ctx.destroy(0)
    assert engine.stop() == 0
    assert engine.stats()["bad_envelopes"] == 1


def test_large_batch_answered_in_several_frames(engine: EngineProcess) -> None:
    with OmsClient(engine.endpoints["client"], account=2, timeout=10) as c:
        # 3000 orders -> 6000 answer records (ACK + ORDER_UPDATE): more than one frame
        answers = c.submit_many({"instrument": 1, "side": Side.BUY, "quantity": 1,
                                 "price": 4_000_000 + i} for i in range(3000))
        assert len(answers) == 3000 and all(a.ok for a in answers)
        assert len({a.order_id for a in answers}) == 3000
    assert engine.stop() == 0
    assert engine.stats()["acks"] == 3000
