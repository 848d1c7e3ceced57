"""oms_core.engine.zmqio: one libzmq shared with pyzmq, the pump is not usable half-made, the C
echo works."""

from __future__ import annotations

import subprocess
import threading

import pytest
import zmq

from bindings.libzmq import share_with_extensions

share_with_extensions()
from gateways import mdpub  # noqa: E402
from oms_core.engine import zmqio  # noqa: E402

pytestmark = pytest.mark.timeout(20)


@pytest.mark.parametrize("module", [zmqio, mdpub], ids=["zmqio", "mdpub"])
def test_compiled_modules_use_the_libzmq_pyzmq_loaded(module) -> None:
    # linked against no libzmq: the zmq_* calls are left to the one already in the process
    dynamic = subprocess.run(["readelf", "-d", module.__file__], capture_output=True,
                             text=True, check=True).stdout
    assert "libzmq" not in dynamic
    symbols = subprocess.run(["nm", "-D", module.__file__], capture_output=True, text=True,
                             check=True).stdout.split("\n")
    assert any(line.split() == ["U", "zmq_send"] for line in symbols)
    with open("/proc/self/maps") as f:
        loaded = {line.split()[-1] for line in f if "libzmq" in line.rpartition("/")[2]}
    assert len(loaded) == 1, loaded


def test_sink_not_usable_half_made() -> None:
    p = zmqio.EngineSink.__new__(zmqio.EngineSink)
    with pytest.raises(RuntimeError):
        p.serve(0)
    with pytest.raises(RuntimeError):
        p.drain_all()


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
