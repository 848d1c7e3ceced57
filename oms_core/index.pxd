# PairIndex: open-addressing hash map from a (uint64, uint32) key to a uint32 value.
# Used for client order id -> slot, exchange trade id dedupe and strategy positions.
# Capacity is fixed at construction: no allocation after __cinit__.

from libc.stdint cimport uint32_t, uint64_t


ctypedef struct index_entry_t:
    uint64_t k1
    uint32_t k2
    uint32_t value            # NO_SLOT marks an empty entry


cdef class PairIndex:
    cdef index_entry_t* entries
    cdef uint64_t mask
    cdef readonly uint64_t capacity     # entries allocated (a power of two)
    cdef readonly uint64_t max_items    # at most this many keys (load factor <= 3/4)
    cdef readonly uint64_t count

    cdef uint32_t get(self, uint64_t k1, uint32_t k2) noexcept nogil
    cdef bint put(self, uint64_t k1, uint32_t k2, uint32_t value) noexcept nogil
    cdef bint remove(self, uint64_t k1, uint32_t k2) noexcept nogil
    cdef list dump(self)
    cdef int load(self, list chunks) except -1
