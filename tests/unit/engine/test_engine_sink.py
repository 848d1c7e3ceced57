"""The compiled ZeroMQ sink serves the gateway and signal sockets too, without the Engine.

Real sockets (inproc), the real loop and session table; the sink built as the Engine builds
it, with its sockets given one by one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import zmq

from bindings.libzmq import share_with_extensions
from bindings.wire import records as wire
from oms_core.engine.config import build_core, load_engine_config
from oms_core.engine.process import ROOT
from oms_core.engine.sessions import SessionTable

share_with_extensions()
from oms_core.engine.server import Engine  # noqa: E402
from oms_core.engine.zmqio import EngineSink  # noqa: E402

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def rig() -> Iterator[dict[str, Any]]:
    cfg = load_engine_config(ROOT / "examples" / "oms.toml")
    loop = Engine(build_core(cfg), config=cfg).loop
    ctx = zmq.Context()
    socks: dict[str, Any] = {}
    try:
        for name, kind in (("router", zmq.ROUTER), ("events", zmq.PULL), ("md", zmq.PULL),
                           ("signals", zmq.PULL), ("pub", zmq.PUB)):
            s = socks[name] = ctx.socket(kind)
            s.setsockopt(zmq.LINGER, 0)
            s.bind(f"inproc://{name}")
        for name in ("events", "md", "signals"):
            p = socks[f"to_{name}"] = ctx.socket(zmq.PUSH)
            p.setsockopt(zmq.LINGER, 0)
            p.connect(f"inproc://{name}")
        sub = socks["sub"] = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect("inproc://pub")
        counters: dict[str, int] = {}
        sink = EngineSink(loop, SessionTable(None, frozenset(), frozenset(), 64, 1000, counters),
                          socks["router"], pub=socks["pub"], gateway_events=socks["events"],
                          market_data=socks["md"], signals=socks["signals"], counters=counters)
        end = time.monotonic() + 5
        while True:  # the SUB has joined once a probe gets through
            sink.publish(b"probe")
            if sub.poll(20):
                while sub.poll(20):
                    sub.recv()
                break
            assert time.monotonic() < end, "SUB never joined"
        yield {"sink": sink, "loop": loop, "counters": counters, "cfg": cfg, **socks}
        sink = None  # holds raw socket handles: gone before the sockets close
    finally:
        ctx.destroy(0)


def _serve(sink: EngineSink, ms: int = 100) -> None:
    sink.serve(time.time_ns() + ms * 1_000_000)


def test_market_data_is_applied_and_republished_by_the_sink(rig: dict[str, Any]) -> None:
    instrument = min(rig["cfg"].oms.ids.instruments.values())
    frame = wire.encode("GW_MARKET_DATA", 0, 1, 0, bid=4_999_900, bid_qty=10, ask=5_000_100,
                        ask_qty=10, last=5_000_000, last_qty=1, md_flags=2,
                        instrument=instrument)
    rig["to_md"].send(frame)
    _serve(rig["sink"])
    assert rig["loop"].reference_price(instrument) == (5_000_000, 4_999_900, 5_000_100)
    assert rig["sub"].poll(1000) and rig["sub"].recv() == frame  # for everyone, as received
    assert rig["sink"].n_gateway_frames == 1 and rig["loop"].n_gw_records == 1


def test_gateway_events_are_applied_and_malformed_ones_counted(rig: dict[str, Any]) -> None:
    instrument = min(rig["cfg"].oms.ids.instruments.values())
    rig["to_events"].send(wire.encode("GW_MARKET_DATA", 0, 1, 0, bid=1, bid_qty=1, ask=2,
                                      ask_qty=1, instrument=instrument))
    rig["to_events"].send(b"\0" * 40)  # no record header: a wire error, nothing applied
    _serve(rig["sink"])
    assert rig["loop"].reference_price(instrument)[1:] == (1, 2)
    assert rig["sink"].n_gateway_frames == 2 and rig["loop"].n_gw_errors == 1
    assert not rig["sub"].poll(50)  # only market data is republished


def test_signal_frames_with_other_records_are_refused_whole(rig: dict[str, Any]) -> None:
    sig = wire.encode("SIGNAL", 1, 1, 0)
    rig["to_signals"].send(sig + wire.encode("HEARTBEAT", 0, 0, 0, 0, last_seq=0, echo_ns=0))
    rig["to_signals"].send(b"")
    frames_before = rig["loop"].n_frames
    _serve(rig["sink"])
    assert rig["counters"]["bad_signal_frames"] == 2
    assert rig["sink"].n_signal_frames == 2 and rig["loop"].n_frames == frames_before
