# PairIndex: open-addressing hash map from a (uint64, uint32) key to a uint32 value.
# Used for exchange trade id dedupe and strategy positions (client order ids have their own
# index inside OrderTable, see orders.pxd). Capacity is fixed at construction: no allocation
# after __cinit__.

cimport cython
from libc.stdint cimport uint32_t, uint64_t

from oms_core.types cimport NO_SLOT, oms_mix64, oms_prefetch


ctypedef struct index_entry_t:
    uint64_t k1
    uint32_t k2
    uint32_t value            # NO_SLOT marks an empty entry


cdef inline uint64_t pair_hash(uint64_t k1, uint32_t k2) noexcept nogil:
    return oms_mix64(k1 ^ (<uint64_t>k2 * 0x9E3779B97F4A7C15ULL))


@cython.final
cdef class PairIndex:
    cdef index_entry_t* entries
    cdef uint64_t mask
    cdef readonly uint64_t capacity     # entries allocated (a power of two)
    cdef readonly uint64_t max_items    # at most this many keys (load factor <= 3/4)
    cdef readonly uint64_t count

    cdef bint put(self, uint64_t k1, uint32_t k2, uint32_t value) noexcept nogil
    cdef bint remove(self, uint64_t k1, uint32_t k2) noexcept nogil
    cdef void clear(self) noexcept nogil
    cdef list dump(self)
    cdef int load(self, list chunks) except -1

    cdef inline uint32_t get(self, uint64_t k1, uint32_t k2) noexcept nogil:
        """Value for the key, or NO_SLOT."""
        cdef uint64_t i = pair_hash(k1, k2) & self.mask
        cdef index_entry_t* e
        while True:
            e = &self.entries[i]
            if e.value == NO_SLOT:
                return NO_SLOT
            if e.k1 == k1 and e.k2 == k2:
                return e.value
            i = (i + 1) & self.mask

    cdef inline void prefetch(self, uint64_t k1, uint32_t k2) noexcept nogil:
        """Start loading the key's home entry into the cache (a hint; no effect on state)."""
        oms_prefetch(&self.entries[pair_hash(k1, k2) & self.mask])
