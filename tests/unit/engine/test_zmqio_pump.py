"""oms_core.engine.zmqio: libzmq is found, the pump is not usable half-made, the C echo works."""

from __future__ import annotations

import threading

import pytest
import zmq

from oms_core.engine import zmqio

pytestmark = pytest.mark.timeout(20)


def test_libzmq_found() -> None:
    assert zmqio.available()


def test_pump_not_constructible_by_accident() -> None:
    p = zmqio.ClientPump()
    with pytest.raises(RuntimeError):
        p.serve(0)
    with pytest.raises(RuntimeError):
        p.drain_clients()


def test_bare_echo_answers_and_stops() -> None:
    ctx = zmq.Context()
    try:
        router = ctx.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        router.bind("tcp://127.0.0.1:*")
        dealer = ctx.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.connect(router.getsockopt_string(zmq.LAST_ENDPOINT))
        out: list[int] = []
        t = threading.Thread(target=lambda: out.append(zmqio.bare_echo(router, b"x" * 216)))
        t.start()
        for _ in range(3):
            dealer.send(b"\0" * 96)
            assert dealer.poll(5000)
            assert dealer.recv() == b"x" * 216
        dealer.send(b"stop")
        t.join(5)
        assert not t.is_alive() and out == [3]
    finally:
        ctx.destroy(0)
