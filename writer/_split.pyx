"""Walk a frame of wire records in C: drop sequences <= last, stop at a gap, append each
record to the bytearray of its type (``bufs[msg_type]``, None = no table)."""

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from libc.stdint cimport uint16_t, uint64_t
from libc.string cimport memcpy


cpdef tuple split_frame(const unsigned char[::1] frame, uint64_t last, list bufs):
    """Return ``(last, gap, rows, bad_offset)``: the last sequence taken, the first missing
    sequence (0 if none), rows appended, and the offset of a malformed record (-1 if none)."""
    cdef Py_ssize_t n = frame.shape[0], off = 0, size
    cdef uint16_t mt, length
    cdef uint64_t seq
    cdef Py_ssize_t rows = 0
    cdef object b
    cdef Py_ssize_t nb = len(bufs)
    if n == 0:
        return last, 0, 0, -1
    while off + 32 <= n:
        memcpy(&mt, &frame[off + 4], 2)
        memcpy(&length, &frame[off + 6], 2)
        if length < 32 or off + length > n:
            return last, 0, rows, off
        memcpy(&seq, &frame[off + 8], 8)
        if seq <= last:
            off += length
            continue
        if seq != last + 1:
            return last, last + 1, rows, -1
        if mt < nb:
            b = bufs[mt]
            if b is not None:
                size = PyByteArray_GET_SIZE(b)
                PyByteArray_Resize(b, size + length)
                memcpy(PyByteArray_AS_STRING(b) + size, &frame[off], length)
                rows += 1
        last = seq
        off += length
    return last, 0, rows, -1
