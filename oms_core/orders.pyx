"""Preallocated order table (see orders.pxd)."""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memset

from oms_core.index cimport PairIndex
from oms_core.snapshot cimport load_bytes, raw_bytes
from oms_core.types cimport NO_SLOT, order_t


cdef class OrderTable:
    """``capacity`` order slots for ``n_accounts`` accounts, all allocated here, once."""

    def __cinit__(self, uint32_t capacity, uint32_t n_accounts):
        if capacity == 0 or capacity >= NO_SLOT:
            raise ValueError("order table capacity must be in 1 .. 2**32-2")
        self.capacity = capacity
        self.slot_bits = 1
        while (<uint64_t>1 << self.slot_bits) < capacity:
            self.slot_bits += 1
        self.slot_mask = (1 << self.slot_bits) - 1
        self.next_sequence = 1
        self.n_accounts = n_accounts
        self.slots = <order_t*>PyMem_Malloc(capacity * sizeof(order_t))
        self.live_head = <uint32_t*>PyMem_Malloc(n_accounts * sizeof(uint32_t))
        self.live_tail = <uint32_t*>PyMem_Malloc(n_accounts * sizeof(uint32_t))
        if self.slots == NULL or self.live_head == NULL or self.live_tail == NULL:
            raise MemoryError("OrderTable: cannot allocate %d slots" % capacity)
        memset(self.slots, 0, capacity * sizeof(order_t))
        memset(self.live_head, 0xFF, n_accounts * sizeof(uint32_t))
        memset(self.live_tail, 0xFF, n_accounts * sizeof(uint32_t))
        self.closed_head = NO_SLOT
        self.closed_tail = NO_SLOT
        self.by_client_id = PairIndex(capacity)

    def __dealloc__(self):
        PyMem_Free(self.slots)
        PyMem_Free(self.live_head)
        PyMem_Free(self.live_tail)

    cdef order_t* find(self, uint64_t order_id) noexcept nogil:
        """The order with this id, or NULL (unknown, or forgotten to make room)."""
        cdef uint64_t slot = order_id & self.slot_mask
        if order_id == 0 or slot >= self.used:
            return NULL
        cdef order_t* o = &self.slots[slot]
        return o if o.order_id == order_id else NULL

    cdef uint32_t slot_of(self, uint64_t order_id) noexcept nogil:
        return <uint32_t>(order_id & self.slot_mask)

    cdef uint64_t find_client_id(self, uint32_t account, uint64_t cl_ord_id) noexcept nogil:
        cdef uint32_t slot = self.by_client_id.get(cl_ord_id, account)
        return 0 if slot == NO_SLOT else self.slots[slot].order_id

    cdef bint has_room(self, uint32_t needed) noexcept nogil:
        return self.capacity - self.used + self.closed_count >= needed

    cdef order_t* allocate(self, uint32_t account, uint64_t cl_ord_id) noexcept nogil:
        """A zeroed slot with a fresh id, linked at the tail of the account's live list;
        NULL when every slot holds a live order."""
        cdef uint32_t slot
        cdef order_t* o
        if self.used < self.capacity:
            slot = self.used
            self.used += 1
        elif self.closed_head != NO_SLOT:
            slot = self.closed_head  # forget the oldest closed order
            o = &self.slots[slot]
            self.closed_head = o.list_next
            if self.closed_head == NO_SLOT:
                self.closed_tail = NO_SLOT
            self.closed_count -= 1
            self.by_client_id.remove(o.cl_ord_id, o.account)
        else:
            return NULL
        o = &self.slots[slot]
        memset(o, 0, sizeof(order_t))
        o.order_id = (self.next_sequence << self.slot_bits) | slot
        self.next_sequence += 1
        o.cl_ord_id = cl_ord_id
        o.account = account
        self.by_client_id.put(cl_ord_id, account, slot)
        o.list_next = NO_SLOT
        o.list_prev = self.live_tail[account]
        if o.list_prev != NO_SLOT:
            self.slots[o.list_prev].list_next = slot
        else:
            self.live_head[account] = slot
        self.live_tail[account] = slot
        self.live_count += 1
        return o

    cdef void close(self, order_t* o) noexcept nogil:
        """Move a just-closed order from its account's live list to the closed FIFO."""
        cdef uint32_t slot = <uint32_t>(o.order_id & self.slot_mask)
        if o.list_prev != NO_SLOT:
            self.slots[o.list_prev].list_next = o.list_next
        else:
            self.live_head[o.account] = o.list_next
        if o.list_next != NO_SLOT:
            self.slots[o.list_next].list_prev = o.list_prev
        else:
            self.live_tail[o.account] = o.list_prev
        self.live_count -= 1
        o.list_next = NO_SLOT
        o.list_prev = self.closed_tail
        if self.closed_tail != NO_SLOT:
            self.slots[self.closed_tail].list_next = slot
        else:
            self.closed_head = slot
        self.closed_tail = slot
        self.closed_count += 1

    cdef uint32_t collect_live(self, uint32_t account, uint32_t* out) noexcept nogil:
        """Copy the slots of the account's live orders, oldest first, into out."""
        cdef uint32_t n = 0
        cdef uint32_t slot = self.live_head[account]
        while slot != NO_SLOT:
            out[n] = slot
            n += 1
            slot = self.slots[slot].list_next
        return n

    cdef list dump(self):
        """Used slots, list heads, counters and the client-id index (for snapshots)."""
        cdef uint64_t counters[6]
        counters[0] = self.used
        counters[1] = self.next_sequence
        counters[2] = self.closed_head
        counters[3] = self.closed_tail
        counters[4] = self.live_count
        counters[5] = self.closed_count
        return [raw_bytes(counters, sizeof(counters)),
                raw_bytes(self.slots, self.used * sizeof(order_t)),
                raw_bytes(self.live_head, self.n_accounts * sizeof(uint32_t)),
                raw_bytes(self.live_tail, self.n_accounts * sizeof(uint32_t))
                ] + self.by_client_id.dump()

    cdef int load(self, list chunks) except -1:
        cdef uint64_t counters[6]
        load_bytes(counters, chunks[0], sizeof(counters))
        if counters[0] > self.capacity:
            raise ValueError("snapshot holds more orders than this table's capacity")
        self.used = <uint32_t>counters[0]
        self.next_sequence = counters[1]
        self.closed_head = <uint32_t>counters[2]
        self.closed_tail = <uint32_t>counters[3]
        self.live_count = counters[4]
        self.closed_count = counters[5]
        load_bytes(self.slots, chunks[1], self.used * sizeof(order_t))
        load_bytes(self.live_head, chunks[2], self.n_accounts * sizeof(uint32_t))
        load_bytes(self.live_tail, chunks[3], self.n_accounts * sizeof(uint32_t))
        self.by_client_id.load(chunks[4:6])
        return 0

    @property
    def slot_size(self):
        """Bytes of one order slot (the order_t struct)."""
        return sizeof(order_t)

    @property
    def bytes_per_order(self):
        """Bytes the table and its client-id index hold per order slot at capacity."""
        return sizeof(order_t) + self.by_client_id.capacity * 16 // self.capacity
