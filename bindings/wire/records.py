"""Python codecs for the wire records, built from ``spec.py``.

Each record type gets a :class:`RecordCodec` holding a precompiled ``struct.Struct`` (for one
record at a time), a numpy structured dtype (for arrays of records of one type) and a
namedtuple class for decoded values. :class:`FrameBuilder` batches records into one
preallocated buffer. :func:`validate_frame_py` is the pure-Python reference of the compiled
validator in ``bindings.wire.codec``; the two are held to the same answers by tests.
"""

from __future__ import annotations

import struct
from collections import namedtuple
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from bindings.wire import spec
from bindings.wire.spec import HEADER_SIZE, MAGIC, VERSION, MsgType, WireError

_HDR = struct.Struct("<HBBHHQQq")
assert _HDR.size == HEADER_SIZE
_HDR_NAMES = ("flags", "seq", "request_id", "send_ns")


def _fmt(fields: tuple[spec.Field, ...]) -> str:
    out = []
    for f in fields:
        ch = spec.CTYPES[f.ctype][1]
        if f.is_pad:
            out.append(f"{f.size}x")
        else:
            out.append(f"{f.count}{ch}" if f.count > 1 else ch)
    return "".join(out)


def _camel(name: str) -> str:
    return "".join(p.capitalize() for p in name.split("_"))


class RecordCodec:
    """Encoder/decoder of one record type. Instances live in :data:`CODECS`; do not build.

    ``pack_into(buf, offset, request_id, seq, send_ns, flags, *values) -> end_offset`` writes
    one record into a writable buffer (values: body fields in ``field_names`` order, arrays as
    sequences). ``decode(buf, offset=0)`` returns the namedtuple of the record at ``offset``
    (header assumed validated). Both are closures over precompiled structs: no attribute
    lookups on the hot path.
    """

    __slots__ = (
        "name", "msg_type", "size", "record", "struct", "dtype", "tuple_cls", "field_names",
        "pack_into", "decode", "_has_array", "_arrays", "_defaults", "_decode_struct",
    )

    def __init__(self, record: spec.Record) -> None:
        self.name = record.name
        self.msg_type = MsgType(record.type_id)
        self.size = record.size
        self.record = record
        body_fmt = _fmt(record.fields)
        self.struct = struct.Struct("<HBBHHQQq" + body_fmt)
        # Decoding skips magic/version (3x) and msg_type/length (4x): the tuple comes out in
        # namedtuple order (flags, seq, request_id, send_ns, body...).
        self._decode_struct = struct.Struct("<3xB4xQQq" + body_fmt)
        assert self.struct.size == record.size == self._decode_struct.size, record.name
        body = record.body_fields
        self.field_names: tuple[str, ...] = tuple(f.name for f in body)
        self.tuple_cls = namedtuple(_camel(record.name), _HDR_NAMES + self.field_names)  # type: ignore[misc]
        self.tuple_cls.msg_type = self.msg_type
        self._arrays = {f.name: f.count for f in body if f.count > 1}
        self._has_array = bool(self._arrays)
        self._defaults = {
            f.name: ((0,) * f.count if f.count > 1 else 0) for f in body
        }
        names, formats, offsets = [], [], []
        for f in spec.HEADER_FIELDS + record.fields:
            if f.is_pad:
                continue
            names.append(f.name)
            dt = spec.CTYPES[f.ctype][2]
            formats.append((dt, (f.count,)) if f.count > 1 else dt)
            offsets.append(f.offset)
        self.dtype = np.dtype(
            {"names": names, "formats": formats, "offsets": offsets, "itemsize": record.size}
        )
        self.pack_into, self.decode = self._closures()

    def _closures(self) -> tuple[Any, Any]:
        size = self.size
        mt = int(self.msg_type)  # a plain int: struct would call IntEnum.__index__ each time
        raw_pack_into = self.struct.pack_into
        unpack_from = self._decode_struct.unpack_from
        cls = self.tuple_cls
        new = tuple.__new__
        if not self._has_array:
            def pack_into(buf: Any, offset: int, request_id: int, seq: int, send_ns: int,
                          flags: int, *values: Any) -> int:
                raw_pack_into(buf, offset, MAGIC, VERSION, flags, mt, size, seq, request_id,
                              send_ns, *values)
                return offset + size

            def decode(buf: Any, offset: int = 0) -> Any:
                return new(cls, unpack_from(buf, offset))

            return pack_into, decode

        flat = self._flat
        arrays = self._arrays
        names = self.field_names

        def pack_into_arr(buf: Any, offset: int, request_id: int, seq: int, send_ns: int,
                          flags: int, *values: Any) -> int:
            raw_pack_into(buf, offset, MAGIC, VERSION, flags, mt, size, seq, request_id,
                          send_ns, *flat(values))
            return offset + size

        def decode_arr(buf: Any, offset: int = 0) -> Any:
            v = unpack_from(buf, offset)
            out: list[Any] = list(v[:4])
            i = 4
            for name in names:
                n = arrays.get(name)
                if n is None:
                    out.append(v[i])
                    i += 1
                else:
                    out.append(tuple(v[i:i + n]))
                    i += n
            return new(cls, out)

        return pack_into_arr, decode_arr

    # -- encoding ---------------------------------------------------------------------------

    def values(self, fields: dict[str, Any]) -> list[Any]:
        """Return body values in layout order from a dict (missing fields are 0)."""
        unknown = fields.keys() - self._defaults.keys()
        if unknown:
            raise TypeError(f"{self.name}: unknown field(s) {sorted(unknown)}")
        d = self._defaults
        return [fields.get(n, d[n]) for n in self.field_names]

    def _flat(self, values: list[Any] | tuple[Any, ...]) -> list[Any]:
        if not self._has_array:
            return list(values)
        out: list[Any] = []
        for name, v in zip(self.field_names, values, strict=True):
            n = self._arrays.get(name)
            if n is None:
                out.append(v)
            else:
                v = tuple(v)
                if len(v) > n:
                    raise ValueError(f"{self.name}.{name}: at most {n} entries")
                out.extend(v + (0,) * (n - len(v)))
        return out

    def encode(
        self, request_id: int = 0, seq: int = 0, send_ns: int = 0, flags: int = 0,
        **fields: Any,
    ) -> bytes:
        """Return one record as bytes; body fields by keyword (missing fields are 0)."""
        vals = self._flat(self.values(fields))
        return self.struct.pack(
            MAGIC, VERSION, flags, int(self.msg_type), self.size, seq, request_id, send_ns,
            *vals,
        )

    # -- decoding ---------------------------------------------------------------------------

    def decode_array(self, buf: Any) -> np.ndarray:
        """Return a read-only numpy view of a frame holding only records of this type.

        The array is a view of ``buf``'s memory (no copy); it is valid while ``buf`` is.
        """
        return np.frombuffer(buf, dtype=self.dtype)


CODECS: dict[str, RecordCodec] = {name: RecordCodec(r) for name, r in spec.RECORDS.items()}
CODECS_BY_TYPE: dict[int, RecordCodec] = {c.msg_type: c for c in CODECS.values()}
DTYPES: dict[str, np.dtype] = {name: c.dtype for name, c in CODECS.items()}
HEADER_DTYPE = np.dtype(
    {
        "names": [f.name for f in spec.HEADER_FIELDS],
        "formats": [spec.CTYPES[f.ctype][2] for f in spec.HEADER_FIELDS],
        "offsets": [f.offset for f in spec.HEADER_FIELDS],
        "itemsize": HEADER_SIZE,
    }
)


class Header(NamedTuple):
    magic: int
    version: int
    flags: int
    msg_type: int
    length: int
    seq: int
    request_id: int
    send_ns: int


def decode_header(buf: Any, offset: int = 0) -> Header:
    """Decode the 32-byte header at ``offset`` without checking it."""
    return Header._make(_HDR.unpack_from(buf, offset))


def encode(name: str, request_id: int = 0, seq: int = 0, send_ns: int = 0, flags: int = 0,
           **fields: Any) -> bytes:
    """Return one record of type ``name`` (e.g. ``"NEW_ORDER"``) as bytes."""
    return CODECS[name].encode(request_id, seq, send_ns, flags, **fields)


def decode(buf: Any, offset: int = 0) -> Any:
    """Decode the record at ``offset`` (header assumed validated) into its namedtuple."""
    (msg_type,) = struct.unpack_from("<H", buf, offset + 4)
    return CODECS_BY_TYPE[msg_type].decode(buf, offset)


class WireFormatError(ValueError):
    """A frame failed validation; ``error`` is the WireError, ``offset`` the bad record."""

    def __init__(self, error: WireError, offset: int, n_valid: int) -> None:
        super().__init__(f"{error.name} at byte {offset} (after {n_valid} valid records)")
        self.error = error
        self.offset = offset
        self.n_valid = n_valid


def check_frame_py(buf: Any) -> tuple[int, int, int]:
    """Walk a frame; return ``(n_valid_records, WireError, error_offset)``.

    Pure-Python reference of ``bindings.wire.codec.check_frame``. The walk stops at the first
    error; records before it are whole and well-formed, but the engine refuses the frame as a
    whole when the error is not OK.
    """
    mv = memoryview(buf).cast("B")
    n = len(mv)
    if n == 0:
        return 0, WireError.EMPTY_FRAME, 0
    if n > spec.MAX_FRAME_SIZE:
        return 0, WireError.FRAME_TOO_LARGE, 0
    sizes = spec.RECORD_SIZES
    off = 0
    count = 0
    while off < n:
        if count >= spec.MAX_RECORDS_PER_FRAME:
            return count, WireError.TOO_MANY_RECORDS, off
        if n - off < HEADER_SIZE:
            return count, WireError.TRUNCATED_HEADER, off
        magic, version, _flags, msg_type, length = struct.unpack_from("<HBBHH", mv, off)
        if magic != MAGIC:
            return count, WireError.BAD_MAGIC, off
        if version != VERSION:
            return count, WireError.BAD_VERSION, off
        size = sizes.get(msg_type, 0)
        if size == 0:
            return count, WireError.UNKNOWN_TYPE, off
        if length != size:
            return count, WireError.BAD_LENGTH, off
        if length > n - off:
            return count, WireError.TRUNCATED_RECORD, off
        off += length
        count += 1
    return count, WireError.OK, off


def validate_frame_py(buf: Any) -> tuple[int, int]:
    """Return ``(n_valid_records, WireError)`` for a frame (pure Python)."""
    n, err, _ = check_frame_py(buf)
    return n, err


def iter_frame(buf: Any) -> Iterator[Any]:
    """Validate a frame, then yield its records decoded; raise WireFormatError if invalid."""
    n, err, off = check_frame_py(buf)
    if err != WireError.OK:
        raise WireFormatError(WireError(err), off, n)
    off = 0
    end = len(memoryview(buf).cast("B"))
    by_type = CODECS_BY_TYPE
    while off < end:
        (msg_type, length) = struct.unpack_from("<HH", buf, off + 4)
        yield by_type[msg_type].decode(buf, off)
        off += length


def decode_frame(buf: Any) -> list[Any]:
    """Validate a frame and return all its records decoded (raise WireFormatError)."""
    return list(iter_frame(buf))


class FrameBuilder:
    """Batch records into one reusable buffer, sent as a single ZeroMQ frame.

    Allocate once with a capacity in bytes; :meth:`reset` before each batch. :meth:`view`
    returns a memoryview of the internal buffer (valid until the next add/reset).
    """

    __slots__ = ("_buf", "_off", "_count", "capacity")

    def __init__(self, capacity: int = 64 * 1024) -> None:
        if capacity <= 0 or capacity > spec.MAX_FRAME_SIZE:
            raise ValueError(f"capacity must be in 1..{spec.MAX_FRAME_SIZE}")
        self.capacity = capacity
        self._buf = bytearray(capacity)
        self._off = 0
        self._count = 0

    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        return self._off

    def reset(self) -> None:
        self._off = 0
        self._count = 0

    def room(self, codec: RecordCodec) -> bool:
        """Return True when one more record of this type fits."""
        return (
            self._off + codec.size <= self.capacity
            and self._count < spec.MAX_RECORDS_PER_FRAME
        )

    def add(self, codec: RecordCodec, request_id: int, seq: int, send_ns: int, flags: int,
            *values: Any) -> None:
        """Append one record (body values in layout order); raise BufferError when full."""
        if not self.room(codec):
            raise BufferError("frame is full")
        self._off = codec.pack_into(
            self._buf, self._off, request_id, seq, send_ns, flags, *values
        )
        self._count += 1

    def add_fields(self, name: str, request_id: int = 0, seq: int = 0, send_ns: int = 0,
                   flags: int = 0, **fields: Any) -> None:
        """Append one record with body fields by keyword."""
        codec = CODECS[name]
        self.add(codec, request_id, seq, send_ns, flags, *codec.values(fields))

    def view(self) -> memoryview:
        """Return a view of the bytes written so far (internal memory: copy to keep)."""
        return memoryview(self._buf)[: self._off]

    def tobytes(self) -> bytes:
        return bytes(self._buf[: self._off])


__all__ = [
    "CODECS", "CODECS_BY_TYPE", "DTYPES", "HEADER_DTYPE", "FrameBuilder", "Header",
    "RecordCodec", "WireFormatError", "check_frame_py", "decode", "decode_frame",
    "decode_header", "encode", "iter_frame", "validate_frame_py",
]
