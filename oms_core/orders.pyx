"""Preallocated order table (see orders.pxd)."""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memset

from oms_core.snapshot cimport load_bytes, raw_bytes
from oms_core.types cimport NO_SLOT, oms_prefetch, order_t


cdef inline void _zero_slot(order_t* o) noexcept nogil:
    # 30 word stores: GCC turns a 240-byte memset into `rep stos`, which costs more at this
    # size (volatile keeps it from folding the loop back into a memset)
    cdef volatile uint64_t* w = <volatile uint64_t*>o
    cdef size_t i
    for i in range(sizeof(order_t) // sizeof(uint64_t)):  # order_t is 8-byte aligned
        w[i] = 0


cdef class OrderTable:
    """``capacity`` order slots for ``n_accounts`` accounts, all allocated here, once."""

    def __cinit__(self, uint32_t capacity, uint32_t n_accounts):
        if capacity == 0 or capacity > 3 * (1 << 30):
            # the client-id index keys its home position off a 32-bit tag: <= 2**32 entries
            raise ValueError("order table capacity must be in 1 .. 3 * 2**30")
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
        cdef uint64_t cap = 16
        while cap * 3 < <uint64_t>capacity * 4:
            cap <<= 1
        self.client_entries = <client_entry_t*>PyMem_Malloc(cap * sizeof(client_entry_t))
        if self.client_entries == NULL:
            raise MemoryError("OrderTable: cannot allocate a %d-entry client-id index" % cap)
        memset(self.client_entries, 0xFF, cap * sizeof(client_entry_t))
        self.client_capacity = cap
        self.client_mask = cap - 1

    def __dealloc__(self):
        PyMem_Free(self.slots)
        PyMem_Free(self.live_head)
        PyMem_Free(self.live_tail)
        PyMem_Free(self.client_entries)

    cdef uint64_t find_client_id(self, uint32_t account, uint64_t cl_ord_id) noexcept nogil:
        cdef uint32_t slot = self.client_slot(account, cl_ord_id)
        return 0 if slot == NO_SLOT else self.slots[slot].order_id

    cdef void _client_put(self, uint32_t account, uint64_t cl_ord_id,
                          uint32_t slot) noexcept nogil:
        """Map the key to slot (overwriting it if present); nothing when the index already
        holds one key per order slot."""
        cdef uint32_t tag = client_tag(account, cl_ord_id)
        cdef uint64_t i = tag & self.client_mask
        cdef client_entry_t* e
        cdef order_t* o
        while True:
            e = &self.client_entries[i]
            if e.slot == NO_SLOT:
                if self.client_count >= self.capacity:
                    return
                e.tag = tag
                e.slot = slot
                self.client_count += 1
                return
            if e.tag == tag:
                o = &self.slots[e.slot]
                if o.cl_ord_id == cl_ord_id and o.account == account:
                    e.slot = slot
                    return
            i = (i + 1) & self.client_mask

    cdef void _client_remove(self, uint32_t account, uint64_t cl_ord_id) noexcept nogil:
        cdef uint32_t tag = client_tag(account, cl_ord_id)
        cdef uint64_t mask = self.client_mask
        cdef uint64_t i = tag & mask
        cdef uint64_t j, home
        cdef client_entry_t* e
        cdef order_t* o
        while True:
            e = &self.client_entries[i]
            if e.slot == NO_SLOT:
                return
            if e.tag == tag:
                o = &self.slots[e.slot]
                if o.cl_ord_id == cl_ord_id and o.account == account:
                    break
            i = (i + 1) & mask
        # backward-shift: pull later entries of the probe run into the hole
        j = i
        while True:
            j = (j + 1) & mask
            if self.client_entries[j].slot == NO_SLOT:
                break
            home = self.client_entries[j].tag & mask
            # entry j may move to i only if its home is not in the cyclic range (i, j]
            if (j > i and (home <= i or home > j)) or (j < i and (home <= i and home > j)):
                self.client_entries[i] = self.client_entries[j]
                i = j
        self.client_entries[i].slot = NO_SLOT
        self.client_count -= 1

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
            self._client_remove(o.account, o.cl_ord_id)
        else:
            return NULL
        o = &self.slots[slot]
        _zero_slot(o)
        o.order_id = (self.next_sequence << self.slot_bits) | slot
        self.next_sequence += 1
        o.cl_ord_id = cl_ord_id
        o.account = account
        self._client_put(account, cl_ord_id, slot)
        o.list_next = NO_SLOT
        o.list_prev = self.live_tail[account]
        if o.list_prev != NO_SLOT:
            self.slots[o.list_prev].list_next = slot
        else:
            self.live_head[account] = slot
        self.live_tail[account] = slot
        self.live_count += 1
        if self.closed_head != NO_SLOT and self.used >= self.capacity:
            oms_prefetch(&self.slots[self.closed_head])  # the next insert forgets this one
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
                raw_bytes(self.live_tail, self.n_accounts * sizeof(uint32_t)),
                raw_bytes(self.client_entries, self.client_capacity * sizeof(client_entry_t)),
                raw_bytes(&self.client_count, sizeof(uint64_t))]

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
        load_bytes(self.client_entries, chunks[4],
                   self.client_capacity * sizeof(client_entry_t))
        load_bytes(&self.client_count, chunks[5], sizeof(uint64_t))
        return 0

    @property
    def slot_size(self):
        """Bytes of one order slot (the order_t struct)."""
        return sizeof(order_t)

    @property
    def bytes_per_order(self):
        """Bytes the table and its client-id index hold per order slot at capacity."""
        return sizeof(order_t) + self.client_capacity * sizeof(client_entry_t) // self.capacity
