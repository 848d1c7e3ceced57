"""Compiled frame validator for the OMS wire protocol.

The engine calls :func:`wire_check_frame` (cimported, no Python objects) on every frame before
it reads any record; Python callers and the fuzz tests use :func:`validate_frame`. The
pure-Python reference is ``bindings.wire.records.check_frame_py``.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy

from bindings.wire.wire cimport (
    OMS_WIRE_HEADER_SIZE,
    OMS_WIRE_MAGIC,
    OMS_WIRE_MAX_FRAME_SIZE,
    OMS_WIRE_MAX_RECORDS_PER_FRAME,
    OMS_WIRE_VERSION,
    OMS_WIRE_OK,
    OMS_WIRE_EMPTY_FRAME,
    OMS_WIRE_FRAME_TOO_LARGE,
    OMS_WIRE_TRUNCATED_HEADER,
    OMS_WIRE_BAD_MAGIC,
    OMS_WIRE_BAD_VERSION,
    OMS_WIRE_UNKNOWN_TYPE,
    OMS_WIRE_BAD_LENGTH,
    OMS_WIRE_TRUNCATED_RECORD,
    OMS_WIRE_TOO_MANY_RECORDS,
    OMS_MSG_NEW_ORDER,
    oms_hdr_t,
    oms_new_order_t,
    oms_wire_init,
    oms_wire_record_size,
)


cdef int wire_check_frame(const uint8_t* data, Py_ssize_t n, uint32_t* count,
                          Py_ssize_t* err_offset) noexcept nogil:
    cdef Py_ssize_t off = 0
    cdef uint32_t k = 0
    cdef oms_hdr_t h
    cdef uint16_t size
    count[0] = 0
    err_offset[0] = 0
    if n <= 0:
        return OMS_WIRE_EMPTY_FRAME
    if n > OMS_WIRE_MAX_FRAME_SIZE:
        return OMS_WIRE_FRAME_TOO_LARGE
    while off < n:
        count[0] = k
        err_offset[0] = off
        if k >= OMS_WIRE_MAX_RECORDS_PER_FRAME:
            return OMS_WIRE_TOO_MANY_RECORDS
        if n - off < OMS_WIRE_HEADER_SIZE:
            return OMS_WIRE_TRUNCATED_HEADER
        # memcpy: frames need not be 8-byte aligned in memory; this compiles to plain loads
        memcpy(&h, data + off, OMS_WIRE_HEADER_SIZE)
        if h.magic != OMS_WIRE_MAGIC:
            return OMS_WIRE_BAD_MAGIC
        if h.version != OMS_WIRE_VERSION:
            return OMS_WIRE_BAD_VERSION
        size = oms_wire_record_size(h.msg_type)
        if size == 0:
            return OMS_WIRE_UNKNOWN_TYPE
        if h.length != size:
            return OMS_WIRE_BAD_LENGTH
        if <Py_ssize_t>h.length > n - off:
            return OMS_WIRE_TRUNCATED_RECORD
        off += h.length
        k += 1
    count[0] = k
    err_offset[0] = off
    return OMS_WIRE_OK


cdef inline int _check(object frame, uint32_t* count, Py_ssize_t* err_offset) except -1:
    cdef Py_buffer view
    cdef int err
    if type(frame) is bytes:
        return wire_check_frame(<const uint8_t*>PyBytes_AS_STRING(frame),
                                PyBytes_GET_SIZE(frame), count, err_offset)
    PyObject_GetBuffer(frame, &view, PyBUF_SIMPLE)
    try:
        err = wire_check_frame(<const uint8_t*>view.buf, view.len, count, err_offset)
    finally:
        PyBuffer_Release(&view)
    return err


def validate_frame(object frame) -> tuple:
    """Return ``(n_valid_records, error_code)`` for a frame (any bytes-like object).

    ``error_code`` is a ``WireError`` value, 0 when the frame is a whole number of well-formed
    records. Never raises on content; raises TypeError only for objects without a buffer.
    """
    cdef uint32_t count
    cdef Py_ssize_t err_offset
    cdef int err = _check(frame, &count, &err_offset)
    return count, err


def check_frame(object frame) -> tuple:
    """Return ``(n_valid_records, error_code, error_offset)`` for a frame."""
    cdef uint32_t count
    cdef Py_ssize_t err_offset
    cdef int err = _check(frame, &count, &err_offset)
    return count, err, err_offset


def new_order_fields(object frame, Py_ssize_t offset=0) -> tuple:
    """Return ``(account, instrument, side, price, quantity)`` of a NEW_ORDER at ``offset``.

    Reads through the cimported ``oms_new_order_t``; the caller validates the frame first.
    Raises ValueError when the record there is not a whole NEW_ORDER.
    """
    cdef Py_buffer view
    cdef oms_new_order_t rec
    PyObject_GetBuffer(frame, &view, PyBUF_SIMPLE)
    try:
        if offset < 0 or view.len - offset < <Py_ssize_t>sizeof(oms_new_order_t):
            raise ValueError("no whole NEW_ORDER at this offset")
        memcpy(&rec, <const uint8_t*>view.buf + offset, sizeof(oms_new_order_t))
    finally:
        PyBuffer_Release(&view)
    if rec.hdr.msg_type != OMS_MSG_NEW_ORDER:
        raise ValueError("record at this offset is not a NEW_ORDER")
    return rec.account, rec.instrument, rec.side, <int64_t>rec.price, <int64_t>rec.quantity


def pack_new_order(object buf, Py_ssize_t offset, uint64_t request_id, uint64_t seq,
                   int64_t send_ns, uint64_t client_order_id, int64_t price,
                   int64_t trigger_price, int64_t quantity, uint32_t account, uint32_t strategy,
                   uint32_t instrument, uint8_t side, uint8_t order_type, uint8_t tif,
                   uint8_t order_flags=0, int64_t expire_ns=0, int64_t trail_offset=0) -> int:
    """Write one NEW_ORDER into a writable buffer at ``offset``; return the end offset.

    The compiled twin of ``CODECS["NEW_ORDER"].pack_into`` for publishers that send at high
    rates. Raises ValueError when the record does not fit (checked before writing).
    """
    cdef Py_buffer view
    cdef oms_new_order_t rec
    oms_wire_init(&rec, OMS_MSG_NEW_ORDER, seq, request_id, send_ns)
    rec.client_order_id = client_order_id
    rec.price = price
    rec.trigger_price = trigger_price
    rec.quantity = quantity
    rec.expire_ns = expire_ns
    rec.trail_offset = trail_offset
    rec.account = account
    rec.strategy = strategy
    rec.instrument = instrument
    rec.side = side
    rec.order_type = order_type
    rec.tif = tif
    rec.order_flags = order_flags
    PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE)
    try:
        if offset < 0 or view.len - offset < <Py_ssize_t>sizeof(oms_new_order_t):
            raise ValueError("NEW_ORDER does not fit the buffer at this offset")
        memcpy(<uint8_t*>view.buf + offset, &rec, sizeof(oms_new_order_t))
    finally:
        PyBuffer_Release(&view)
    return offset + <Py_ssize_t>sizeof(oms_new_order_t)
