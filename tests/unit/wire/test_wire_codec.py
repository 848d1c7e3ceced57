"""The compiled frame validator: error cases, agreement with the Python reference, fuzzing."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bindings.wire import spec
from bindings.wire.records import CODECS, check_frame_py, encode
from bindings.wire.spec import (
    HEADER_SIZE,
    MAX_FRAME_SIZE,
    MAX_RECORDS_PER_FRAME,
    VERSION,
    WireError,
)

codec = pytest.importorskip("bindings.wire.codec", reason="run setup.py build_ext --inplace")

ORDER = encode("NEW_ORDER", request_id=1, account=3, instrument=9, side=1, price=100,
               quantity=5)
HB = encode("HEARTBEAT", request_id=2)


def _both(frame: bytes) -> tuple[int, int, int]:
    c = codec.check_frame(frame)
    p = check_frame_py(frame)
    assert tuple(c) == tuple(int(x) for x in p), (c, p)
    assert codec.validate_frame(frame) == c[:2]
    return c


def _patch(b: bytes, fmt: str, off: int, v: int) -> bytes:
    m = bytearray(b)
    struct.pack_into(fmt, m, off, v)
    return bytes(m)


@pytest.mark.parametrize(("frame", "expect"), [
    (ORDER, (1, WireError.OK)),
    (ORDER + HB + ORDER, (3, WireError.OK)),
    (b"", (0, WireError.EMPTY_FRAME)),
    (ORDER[:31], (0, WireError.TRUNCATED_HEADER)),
    (ORDER + HB[:10], (1, WireError.TRUNCATED_HEADER)),
    (ORDER[:-1], (0, WireError.TRUNCATED_RECORD)),
    (HB + ORDER[:-8], (1, WireError.TRUNCATED_RECORD)),
    (_patch(ORDER, "<H", 0, 0x1234), (0, WireError.BAD_MAGIC)),
    (_patch(ORDER, "<B", 2, VERSION + 1), (0, WireError.BAD_VERSION)),
    (_patch(ORDER, "<H", 4, 999), (0, WireError.UNKNOWN_TYPE)),
    (_patch(ORDER, "<H", 6, 104), (0, WireError.BAD_LENGTH)),
    (_patch(ORDER, "<H", 6, 0), (0, WireError.BAD_LENGTH)),
    (_patch(ORDER + HB, "<H", len(ORDER) + 6, 40), (1, WireError.BAD_LENGTH)),
    (b"\xff" * 200, (0, WireError.BAD_MAGIC)),
])
def test_validator_cases(frame: bytes, expect: tuple[int, int]) -> None:
    assert _both(frame)[:2] == expect


def test_oversized_frame_is_refused_whole() -> None:
    n = MAX_FRAME_SIZE // len(HB) + 1
    assert _both(HB * n)[:2] == (0, WireError.FRAME_TOO_LARGE)


def test_too_many_records() -> None:
    frame = HB * (MAX_RECORDS_PER_FRAME + 1)
    assert len(frame) <= MAX_FRAME_SIZE
    assert _both(frame) == (MAX_RECORDS_PER_FRAME, WireError.TOO_MANY_RECORDS,
                            MAX_RECORDS_PER_FRAME * len(HB))
    assert _both(HB * MAX_RECORDS_PER_FRAME)[:2] == (MAX_RECORDS_PER_FRAME, WireError.OK)


def test_every_record_type_validates() -> None:
    frame = b"".join(c.encode(request_id=i) for i, c in enumerate(CODECS.values()))
    assert _both(frame)[:2] == (len(CODECS), WireError.OK)


def test_accepts_any_buffer() -> None:
    assert codec.validate_frame(bytearray(ORDER)) == (1, 0)
    assert codec.validate_frame(memoryview(ORDER + HB)) == (2, 0)
    with pytest.raises(TypeError):
        codec.validate_frame(12)


def test_cimported_struct_reads_fields() -> None:
    assert codec.new_order_fields(HB + ORDER, len(HB)) == (3, 9, 1, 100, 5)
    with pytest.raises(ValueError):
        codec.new_order_fields(HB)
    with pytest.raises(ValueError):
        codec.new_order_fields(ORDER, 8)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_random_bytes(data: bytes) -> None:
    n, err, off = _both(data)
    assert 0 <= off <= len(data)


@st.composite
def _mutated_frames(draw: st.DrawFn) -> bytes:
    names = draw(st.lists(st.sampled_from(list(spec.RECORDS)), min_size=1, max_size=6))
    frame = bytearray(b"".join(CODECS[n].encode(request_id=i) for i, n in enumerate(names)))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "extend"]))
        if kind == "flip" and frame:
            i = draw(st.integers(0, len(frame) - 1))
            frame[i] = draw(st.integers(0, 255))
        elif kind == "cut" and frame:
            del frame[draw(st.integers(0, len(frame) - 1)):]
        else:
            frame += draw(st.binary(max_size=HEADER_SIZE * 2))
    return bytes(frame)


@settings(max_examples=400, deadline=None)
@given(_mutated_frames())
def test_fuzz_mutated_frames(frame: bytes) -> None:
    _both(frame)


def test_fuzz_random_seeded_bounded() -> None:
    rng = random.Random(1234)
    base = ORDER + HB + encode("FILL") + encode("GW_EXEC_REPORT")
    for _ in range(5000):
        b = bytearray(base)
        for _ in range(rng.randint(1, 3)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        _both(bytes(b[: rng.randint(0, len(b))]))


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**64 - 1), st.integers(-(2**63), 2**63 - 1), st.integers(0, 2**32 - 1),
       st.integers(0, 255))
def test_compiled_pack_new_order_matches_python(rid: int, px: int, acc: int, side: int) -> None:
    buf = bytearray(8 + 96)
    end = codec.pack_new_order(buf, 8, rid, 5, -7, 42, px, 3, ~px, acc, 2, 9, side, 2, 1, 1,
                               99, 4)
    assert end == 104
    assert bytes(buf[8:]) == encode(
        "NEW_ORDER", request_id=rid, seq=5, send_ns=-7, client_order_id=42, price=px,
        trigger_price=3, quantity=~px, account=acc, strategy=2, instrument=9, side=side,
        order_type=2, tif=1, order_flags=1, expire_ns=99, trail_offset=4)


def test_compiled_pack_new_order_checks_room_first() -> None:
    buf = bytearray(100)
    with pytest.raises(ValueError):
        codec.pack_new_order(buf, 8, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
    assert buf == bytearray(100)  # nothing written
    with pytest.raises(BufferError):
        codec.pack_new_order(bytes(200), 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
