# Raw-memory helpers for snapshots: each memory-owning class dumps its arrays as bytes chunks
# (byte-exact copies) and loads them back into a core built with the same capacities.

from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.string cimport memcpy


cdef inline bytes raw_bytes(const void* p, size_t n):
    return PyBytes_FromStringAndSize(<const char*>p, n)


cdef inline int load_bytes(void* dst, bytes chunk, size_t n) except -1:
    if <size_t>len(chunk) != n:
        raise ValueError("snapshot does not match this core's capacities (%d != %d bytes)"
                         % (len(chunk), n))
    memcpy(dst, <const char*>chunk, n)
    return 0
