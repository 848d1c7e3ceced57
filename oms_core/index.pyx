"""Fixed-capacity open-addressing hash index (linear probing, backward-shift deletion)."""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport uint32_t, uint64_t

from oms_core.snapshot cimport load_bytes, raw_bytes
from oms_core.types cimport NO_SLOT


cdef class PairIndex:
    """Map (uint64, uint32) -> uint32 for up to ``max_items`` keys, allocated once."""

    def __cinit__(self, uint64_t max_items):
        cdef uint64_t cap = 16
        while cap * 3 < max_items * 4:
            cap <<= 1
        self.entries = <index_entry_t*>PyMem_Malloc(cap * sizeof(index_entry_t))
        if self.entries == NULL:
            raise MemoryError("PairIndex: cannot allocate %d entries" % cap)
        self.capacity = cap
        self.mask = cap - 1
        self.max_items = max_items
        self.count = 0
        cdef uint64_t i
        for i in range(cap):
            self.entries[i].value = NO_SLOT

    def __dealloc__(self):
        PyMem_Free(self.entries)

    cdef bint put(self, uint64_t k1, uint32_t k2, uint32_t value) noexcept nogil:
        """Insert or overwrite; False when the index already holds max_items keys."""
        cdef uint64_t i = pair_hash(k1, k2) & self.mask
        cdef index_entry_t* e
        while True:
            e = &self.entries[i]
            if e.value == NO_SLOT:
                if self.count >= self.max_items:
                    return False
                e.k1 = k1
                e.k2 = k2
                e.value = value
                self.count += 1
                return True
            if e.k1 == k1 and e.k2 == k2:
                e.value = value
                return True
            i = (i + 1) & self.mask

    cdef bint remove(self, uint64_t k1, uint32_t k2) noexcept nogil:
        cdef uint64_t i = pair_hash(k1, k2) & self.mask
        cdef uint64_t j, home
        while True:
            if self.entries[i].value == NO_SLOT:
                return False
            if self.entries[i].k1 == k1 and self.entries[i].k2 == k2:
                break
            i = (i + 1) & self.mask
        # backward-shift: pull later entries of the probe run into the hole
        j = i
        while True:
            j = (j + 1) & self.mask
            if self.entries[j].value == NO_SLOT:
                break
            home = pair_hash(self.entries[j].k1, self.entries[j].k2) & self.mask
            # entry j may move to i only if its home is not in the cyclic range (i, j]
            if (j > i and (home <= i or home > j)) or (j < i and (home <= i and home > j)):
                self.entries[i] = self.entries[j]
                i = j
        self.entries[i].value = NO_SLOT
        self.count -= 1
        return True

    cdef void clear(self) noexcept nogil:
        """Forget every key."""
        cdef uint64_t i
        for i in range(self.capacity):
            self.entries[i].value = NO_SLOT
        self.count = 0

    cdef list dump(self):
        """A byte-exact copy of the entries and the count (for snapshots)."""
        return [raw_bytes(self.entries, self.capacity * sizeof(index_entry_t)),
                raw_bytes(&self.count, sizeof(uint64_t))]

    cdef int load(self, list chunks) except -1:
        load_bytes(self.entries, chunks[0], self.capacity * sizeof(index_entry_t))
        load_bytes(&self.count, chunks[1], sizeof(uint64_t))
        return 0

    # Python access, for tests
    def py_get(self, k1, k2):
        cdef uint32_t v = self.get(k1, k2)
        return None if v == NO_SLOT else v

    def py_put(self, k1, k2, value):
        return self.put(k1, k2, value)

    def py_remove(self, k1, k2):
        return self.remove(k1, k2)

    def __len__(self):
        return self.count
