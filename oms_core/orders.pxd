# OrderTable: every order lives in one preallocated order_t slot. An order id carries its slot
# in the low bits (id = creation sequence << slot_bits | slot), so lookup by id is one index and
# one compare. Lookup by (account, client order id) is one probe of the table's own client-id
# index: 8-byte entries {hash tag, slot}, the key itself being the one stored in the slot.
# Closed orders stay findable until their slot is needed again (oldest closed first).

cimport cython
from libc.stdint cimport int64_t, uint32_t, uint64_t

from oms_core.types cimport NO_SLOT, oms_mix64, oms_prefetch, order_t


# One entry of the client-id index (linear probing, backward-shift deletion). The home
# position of a key is tag & mask, so an entry can be moved without reading its order.
ctypedef struct client_entry_t:
    uint32_t tag              # low 32 bits of the key's hash
    uint32_t slot             # the order's slot; NO_SLOT marks an empty entry


cdef inline uint32_t client_tag(uint32_t account, uint64_t cl_ord_id) noexcept nogil:
    return <uint32_t>oms_mix64(cl_ord_id ^ (<uint64_t>account * 0x9E3779B97F4A7C15ULL))


@cython.final
cdef class OrderTable:
    cdef order_t* slots
    cdef readonly uint32_t capacity
    cdef readonly uint32_t used            # slots handed out so far (high-water mark)
    cdef readonly uint32_t slot_bits
    cdef uint64_t slot_mask
    cdef uint64_t next_sequence
    # client-id index: (account, client order id) -> slot, load <= 3/4
    cdef client_entry_t* client_entries
    cdef uint64_t client_mask
    cdef readonly uint64_t client_capacity # entries allocated (a power of two <= 2**32)
    cdef readonly uint64_t client_count
    # per account: doubly linked list of live orders, oldest first
    cdef uint32_t* live_head
    cdef uint32_t* live_tail
    cdef readonly uint32_t n_accounts
    # closed orders, oldest first: the eviction queue
    cdef uint32_t closed_head
    cdef uint32_t closed_tail
    cdef readonly uint64_t live_count
    cdef readonly uint64_t closed_count

    cdef uint64_t find_client_id(self, uint32_t account, uint64_t cl_ord_id) noexcept nogil
    cdef order_t* allocate(self, uint32_t account, uint64_t cl_ord_id) noexcept nogil
    cdef void close(self, order_t* o) noexcept nogil
    cdef list dump(self)
    cdef int load(self, list chunks) except -1
    cdef uint32_t collect_live(self, uint32_t account, uint32_t* out) noexcept nogil
    cdef void _client_put(self, uint32_t account, uint64_t cl_ord_id,
                          uint32_t slot) noexcept nogil
    cdef void _client_remove(self, uint32_t account, uint64_t cl_ord_id) noexcept nogil

    # ---------------------------------------------------------------- inline lookups
    cdef inline order_t* find(self, uint64_t order_id) noexcept nogil:
        """The order with this id, or NULL (unknown, or forgotten to make room)."""
        cdef uint64_t slot = order_id & self.slot_mask
        if order_id == 0 or slot >= self.used:
            return NULL
        cdef order_t* o = &self.slots[slot]
        return o if o.order_id == order_id else NULL

    cdef inline uint32_t slot_of(self, uint64_t order_id) noexcept nogil:
        return <uint32_t>(order_id & self.slot_mask)

    cdef inline bint has_room(self, uint32_t needed) noexcept nogil:
        return self.capacity - self.used + self.closed_count >= needed

    cdef inline order_t* next_forgotten(self) noexcept nogil:
        """The closed order the next allocate forgets to make room, or NULL (room left)."""
        if self.used < self.capacity or self.closed_head == NO_SLOT:
            return NULL
        return &self.slots[self.closed_head]

    cdef inline uint32_t client_slot(self, uint32_t account, uint64_t cl_ord_id) noexcept nogil:
        """Slot of the order with this (account, client order id), or NO_SLOT."""
        cdef uint32_t tag = client_tag(account, cl_ord_id)
        cdef uint64_t i = tag & self.client_mask
        cdef client_entry_t* e
        cdef order_t* o
        while True:
            e = &self.client_entries[i]
            if e.slot == NO_SLOT:
                return NO_SLOT
            if e.tag == tag:
                o = &self.slots[e.slot]
                if o.cl_ord_id == cl_ord_id and o.account == account:
                    return e.slot
            i = (i + 1) & self.client_mask

    cdef inline void prefetch_client(self, uint32_t account, uint64_t cl_ord_id) noexcept nogil:
        """Cache hint for a submit about to come: the key's index entry and, when the next
        insert must forget the oldest closed order, that order's index entry."""
        oms_prefetch(&self.client_entries[client_tag(account, cl_ord_id) & self.client_mask])
        cdef order_t* old
        if self.used >= self.capacity and self.closed_head != NO_SLOT:
            old = &self.slots[self.closed_head]
            oms_prefetch(&self.client_entries[client_tag(old.account, old.cl_ord_id)
                                               & self.client_mask])
