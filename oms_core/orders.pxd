# OrderTable: every order lives in one preallocated order_t slot. An order id carries its slot
# in the low bits (id = creation sequence << slot_bits | slot), so lookup by id is one index and
# one compare; lookup by (account, client order id) is one PairIndex probe. Closed orders stay
# findable until their slot is needed again (oldest closed first).

from libc.stdint cimport int64_t, uint32_t, uint64_t

from oms_core.index cimport PairIndex
from oms_core.types cimport order_t


cdef class OrderTable:
    cdef order_t* slots
    cdef readonly uint32_t capacity
    cdef readonly uint32_t used            # slots handed out so far (high-water mark)
    cdef readonly uint32_t slot_bits
    cdef uint64_t slot_mask
    cdef uint64_t next_sequence
    cdef PairIndex by_client_id
    # per account: doubly linked list of live orders, oldest first
    cdef uint32_t* live_head
    cdef uint32_t* live_tail
    cdef readonly uint32_t n_accounts
    # closed orders, oldest first: the eviction queue
    cdef uint32_t closed_head
    cdef uint32_t closed_tail
    cdef readonly uint64_t live_count
    cdef readonly uint64_t closed_count

    cdef order_t* find(self, uint64_t order_id) noexcept nogil
    cdef uint32_t slot_of(self, uint64_t order_id) noexcept nogil
    cdef uint64_t find_client_id(self, uint32_t account, uint64_t cl_ord_id) noexcept nogil
    cdef bint has_room(self, uint32_t needed) noexcept nogil
    cdef order_t* allocate(self, uint32_t account, uint64_t cl_ord_id) noexcept nogil
    cdef void close(self, order_t* o) noexcept nogil
    cdef list dump(self)
    cdef int load(self, list chunks) except -1
    cdef uint32_t collect_live(self, uint32_t account, uint32_t* out) noexcept nogil
