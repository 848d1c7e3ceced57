"""Python codecs: round trips of every record, numpy dtypes, FrameBuilder, decimal helpers."""

from __future__ import annotations

import struct
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bindings.decimals import from_raw, to_raw
from bindings.wire import spec
from bindings.wire.records import (
    CODECS,
    FrameBuilder,
    WireFormatError,
    check_frame_py,
    decode,
    decode_frame,
    decode_header,
    encode,
)
from bindings.wire.spec import MAGIC, VERSION, WireError

_RANGES = {
    "u8": (0, 2**8 - 1), "i8": (-(2**7), 2**7 - 1), "u16": (0, 2**16 - 1),
    "i16": (-(2**15), 2**15 - 1), "u32": (0, 2**32 - 1), "i32": (-(2**31), 2**31 - 1),
    "u64": (0, 2**64 - 1), "i64": (-(2**63), 2**63 - 1),
}


def _field_strategy(f: spec.Field) -> st.SearchStrategy:
    lo, hi = _RANGES[f.ctype]
    one = st.integers(lo, hi)
    if f.count > 1:
        return st.tuples(*([one] * f.count))
    return one


@st.composite
def _records(draw: st.DrawFn, name: str) -> dict:
    r = spec.RECORDS[name]
    vals = {f.name: draw(_field_strategy(f)) for f in r.body_fields}
    hdr = {
        "request_id": draw(st.integers(0, 2**64 - 1)),
        "seq": draw(st.integers(0, 2**64 - 1)),
        "send_ns": draw(st.integers(-(2**63), 2**63 - 1)),
        "flags": draw(st.integers(0, 255)),
    }
    return {"hdr": hdr, "body": vals}


@pytest.mark.parametrize("name", list(spec.RECORDS))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_round_trip_every_record(name: str, data: st.DataObject) -> None:
    rec = data.draw(_records(name))
    codec = CODECS[name]
    b = codec.encode(**rec["hdr"], **rec["body"])
    assert len(b) == codec.size == spec.RECORDS[name].size
    h = decode_header(b)
    assert (h.magic, h.version, h.msg_type, h.length) == (MAGIC, VERSION, codec.msg_type, len(b))
    out = decode(b)
    assert type(out).msg_type == codec.msg_type
    for k, v in {**rec["hdr"], **rec["body"]}.items():
        assert getattr(out, k) == v, k
    # pads are zero
    for f in spec.RECORDS[name].fields:
        if f.is_pad:
            assert b[f.offset:f.offset + f.size] == bytes(f.size)
    # numpy dtype reads the same values at the same offsets
    arr = codec.decode_array(b)
    for k, v in rec["body"].items():
        got = arr[k][0]
        assert (tuple(int(x) for x in got) if isinstance(v, tuple) else int(got)) == v, k
    # pack_into at an offset of a reused buffer gives the same bytes
    buf = bytearray(8 + codec.size)
    end = codec.pack_into(buf, 8, rec["hdr"]["request_id"], rec["hdr"]["seq"],
                          rec["hdr"]["send_ns"], rec["hdr"]["flags"],
                          *codec.values(rec["body"]))
    assert end == 8 + codec.size and bytes(buf[8:]) == b


def test_new_order_bytes_are_little_endian_at_spec_offsets() -> None:
    b = encode("NEW_ORDER", request_id=0x0102030405060708, account=7, price=-5, quantity=9,
               side=2)
    assert b[:2] == b"OM"
    assert b[2] == VERSION and struct.unpack_from("<H", b, 4)[0] == 3
    offs = {f.name: f.offset for f in spec.RECORDS["NEW_ORDER"].fields}
    assert struct.unpack_from("<q", b, offs["price"])[0] == -5
    assert struct.unpack_from("<I", b, offs["account"])[0] == 7
    assert b[16:24] == bytes([8, 7, 6, 5, 4, 3, 2, 1])


def test_unknown_field_is_refused() -> None:
    with pytest.raises(TypeError):
        encode("CANCEL", order_idd=1)


def test_frame_builder_batches_and_refuses_overflow() -> None:
    codec = CODECS["NEW_ORDER"]
    fb = FrameBuilder(capacity=codec.size * 3)
    for i in range(3):
        fb.add_fields("NEW_ORDER", request_id=i + 1, quantity=i + 10)
    assert not fb.room(codec)
    with pytest.raises(BufferError):
        fb.add_fields("NEW_ORDER", request_id=4)
    recs = decode_frame(fb.view())
    assert [r.request_id for r in recs] == [1, 2, 3]
    assert [r.quantity for r in recs] == [10, 11, 12]
    arr = codec.decode_array(fb.tobytes())
    assert arr["quantity"].tolist() == [10, 11, 12]
    fb.reset()
    assert fb.nbytes == 0 and len(fb) == 0


def test_decode_frame_raises_on_bad_frames() -> None:
    good = encode("HEARTBEAT", request_id=1)
    assert check_frame_py(good + good) == (2, WireError.OK, 2 * len(good))
    with pytest.raises(WireFormatError) as ei:
        decode_frame(good + good[:-1])
    assert ei.value.error == WireError.TRUNCATED_RECORD and ei.value.offset == len(good)


def test_heterogeneous_frame_dtype() -> None:
    assert np.dtype(CODECS["FILL"].dtype).itemsize == spec.RECORDS["FILL"].size


@pytest.mark.parametrize(("text", "prec", "raw"), [
    ("101.25", 2, 10125), ("0.001", 3, 1), ("-3", 4, -30000), ("1e2", 0, 100),
    (Decimal("0.5"), 1, 5), (7, 2, 700), ("0", 8, 0),
])
def test_to_raw(text: object, prec: int, raw: int) -> None:
    assert to_raw(text, prec) == raw  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["1.234", "abc", "nan", "inf", "1e30"])
def test_to_raw_refuses_inexact(bad: str) -> None:
    with pytest.raises(ValueError):
        to_raw(bad, 2)


def test_to_raw_refuses_float() -> None:
    with pytest.raises(TypeError):
        to_raw(1.5, 2)  # type: ignore[arg-type]


@given(st.integers(-(2**63), 2**63 - 1), st.integers(0, 18))
def test_from_raw_round_trips(raw: int, prec: int) -> None:
    assert to_raw(from_raw(raw, prec), prec) == raw


def test_from_raw_examples() -> None:
    assert from_raw(10125, 2) == "101.25"
    assert from_raw(-5, 3) == "-0.005"
    assert from_raw(42, 0) == "42"
