"""The engine's live copy to the writer (PUSH): every event record once, in sequence order,
in whole records, coalesced into few frames by the compiled sink, and nothing left behind
in the sink when the engine stops.

Real engine processes, a real PULL socket on ipc://, the sync client binding.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest
import zmq

from bindings.client import OmsClient
from oms_core.engine.process import EngineProcess, base_config
from oms_core.enums import Side

pytestmark = pytest.mark.timeout(60)

ORDERS = 200


def _records(frame: bytes) -> list[int]:
    """The sequence numbers of the whole records of one frame (fails on a cut record)."""
    seqs, off = [], 0
    while off < len(frame):
        assert off + 32 <= len(frame), "a record cut at the end of a frame"
        length, = struct.unpack_from("<H", frame, off + 6)
        seq, = struct.unpack_from("<Q", frame, off + 8)
        assert 32 <= length and off + length <= len(frame), "a record cut at the end of a frame"
        seqs.append(seq)
        off += length
    return seqs


def _run(tmp: Path, env: dict[str, str], **engine: int) -> tuple[list[list[int]], int]:
    """Submit ORDERS orders one by one; return the writer frames' sequences and the engine's
    last sequence (from its stop line)."""
    ctx = zmq.Context()
    frames: list[list[int]] = []
    try:
        pull = ctx.socket(zmq.PULL)
        pull.setsockopt(zmq.LINGER, 0)
        with EngineProcess(base_config(tmp, "ipc", **engine), tmp, env=env) as e:
            pull.connect(e.endpoints["writer"])
            time.sleep(0.2)  # the PUSH sends nothing until the PULL is connected
            with OmsClient(e.endpoints["client"], account=1, timeout=5) as c:
                for i in range(ORDERS):
                    assert c.submit(1, Side.BUY, 1 + i % 7, 4_990_000 - i).ok
            assert e.stop() == 0  # what the sink still holds goes out before the close
            last_seq = e.stats()["seq"]
        end = time.monotonic() + 10
        while time.monotonic() < end and pull.poll(300):
            frames.append(_records(pull.recv()))
    finally:
        ctx.destroy(0)
    return frames, last_seq


@pytest.mark.parametrize("delay_us", [2000, 0])
def test_writer_copy_is_complete_ordered_and_coalesced(tmp_path: Path, delay_us: int) -> None:
    frames, last_seq = _run(tmp_path, {}, writer_delay_us=delay_us)
    seqs = [s for f in frames for s in f]
    # every record once, gap free, up to the engine's last: nothing was left in the sink
    assert seqs == list(range(1, last_seq + 1))
    assert last_seq >= 2 * ORDERS  # an ACK and an ORDER_UPDATE (at least) per order
    if delay_us:
        # one round trip per order takes far less than 2 ms here, so orders share frames
        assert len(frames) < ORDERS
    else:
        assert len(frames) >= ORDERS  # 0: a frame at every flush
