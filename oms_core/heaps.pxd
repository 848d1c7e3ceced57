# HeapSet: many binary min-heaps of (key, tie) -> slot, with each slot's position kept so an
# order can leave its heap in O(log n). A slot is in at most one heap of a set at a time.
# Used for self-trade prevention (best resting price per account x instrument x side), held
# stop triggers per instrument, and GTD/DAY expiry.

cimport cython
from libc.stdint cimport int64_t, uint32_t, uint64_t


ctypedef struct heap_entry_t:
    int64_t key
    uint64_t tie              # order id: ties break by creation order
    uint32_t slot


@cython.final
cdef class HeapSet:
    cdef heap_entry_t** heaps
    cdef uint32_t* sizes
    cdef uint32_t* capacities
    cdef uint32_t* position     # per slot: index in its heap, or NO_SLOT
    cdef readonly uint32_t n_heaps
    cdef readonly uint32_t n_slots

    cdef void _place(self, heap_entry_t* h, uint32_t i, heap_entry_t e) noexcept nogil
    cdef void _sift_up(self, heap_entry_t* h, uint32_t i) noexcept nogil
    cdef void _sift_down(self, heap_entry_t* h, uint32_t n, uint32_t i) noexcept nogil
    cdef list dump(self)
    cdef int load(self, list chunks) except -1
    cdef int push(self, uint32_t heap, int64_t key, uint64_t tie, uint32_t slot) except -1
    cdef void remove(self, uint32_t heap, uint32_t slot) noexcept nogil

    # accessors, inline so the core's per-order calls compile to one load each
    cdef inline bint contains(self, uint32_t slot) noexcept nogil:
        return self.position[slot] != 0xFFFFFFFFU

    cdef inline uint32_t size(self, uint32_t heap) noexcept nogil:
        return self.sizes[heap]

    cdef inline heap_entry_t* top(self, uint32_t heap) noexcept nogil:
        return &self.heaps[heap][0]

    cdef inline heap_entry_t* entry(self, uint32_t heap, uint32_t i) noexcept nogil:
        return &self.heaps[heap][i]
