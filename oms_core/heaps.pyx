"""Indexed binary heaps over order slots (see heaps.pxd)."""

from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.string cimport memset

from oms_core.snapshot cimport load_bytes, raw_bytes
from oms_core.types cimport NO_SLOT


cdef inline bint _less(heap_entry_t* a, heap_entry_t* b) noexcept nogil:
    return a.key < b.key or (a.key == b.key and a.tie < b.tie)


cdef class HeapSet:
    """``n_heaps`` heaps over slots ``0 .. n_slots-1``. Heap storage grows by doubling (rare,
    amortised); the per-slot position array is allocated once."""

    def __cinit__(self, uint32_t n_heaps, uint32_t n_slots):
        self.n_heaps = n_heaps
        self.n_slots = n_slots
        self.heaps = <heap_entry_t**>PyMem_Malloc(n_heaps * sizeof(heap_entry_t*))
        self.sizes = <uint32_t*>PyMem_Malloc(n_heaps * sizeof(uint32_t))
        self.capacities = <uint32_t*>PyMem_Malloc(n_heaps * sizeof(uint32_t))
        self.position = <uint32_t*>PyMem_Malloc(n_slots * sizeof(uint32_t))
        if not self.heaps or not self.sizes or not self.capacities or not self.position:
            raise MemoryError("HeapSet: allocation failed")
        memset(self.heaps, 0, n_heaps * sizeof(heap_entry_t*))
        memset(self.sizes, 0, n_heaps * sizeof(uint32_t))
        memset(self.capacities, 0, n_heaps * sizeof(uint32_t))
        memset(self.position, 0xFF, n_slots * sizeof(uint32_t))

    def __dealloc__(self):
        cdef uint32_t i
        if self.heaps != NULL:
            for i in range(self.n_heaps):
                PyMem_Free(self.heaps[i])
        PyMem_Free(self.heaps)
        PyMem_Free(self.sizes)
        PyMem_Free(self.capacities)
        PyMem_Free(self.position)

    cdef void _place(self, heap_entry_t* h, uint32_t i, heap_entry_t e) noexcept nogil:
        h[i] = e
        self.position[e.slot] = i

    cdef void _sift_up(self, heap_entry_t* h, uint32_t i) noexcept nogil:
        cdef heap_entry_t e = h[i]
        cdef uint32_t parent
        while i > 0:
            parent = (i - 1) >> 1
            if not _less(&e, &h[parent]):
                break
            self._place(h, i, h[parent])
            i = parent
        self._place(h, i, e)

    cdef void _sift_down(self, heap_entry_t* h, uint32_t n, uint32_t i) noexcept nogil:
        cdef heap_entry_t e = h[i]
        cdef uint32_t child
        while True:
            child = 2 * i + 1
            if child >= n:
                break
            if child + 1 < n and _less(&h[child + 1], &h[child]):
                child += 1
            if not _less(&h[child], &e):
                break
            self._place(h, i, h[child])
            i = child
        self._place(h, i, e)

    cdef int push(self, uint32_t heap, int64_t key, uint64_t tie, uint32_t slot) except -1:
        cdef uint32_t n = self.sizes[heap]
        cdef uint32_t cap = self.capacities[heap]
        cdef heap_entry_t* grown
        if n == cap:
            cap = 8 if cap == 0 else cap * 2
            grown = <heap_entry_t*>PyMem_Realloc(self.heaps[heap], cap * sizeof(heap_entry_t))
            if grown == NULL:
                raise MemoryError("HeapSet: cannot grow heap to %d entries" % cap)
            self.heaps[heap] = grown
            self.capacities[heap] = cap
        cdef heap_entry_t e
        e.key = key
        e.tie = tie
        e.slot = slot
        self.heaps[heap][n] = e
        self.position[slot] = n
        self.sizes[heap] = n + 1
        self._sift_up(self.heaps[heap], n)
        return 0

    cdef void remove(self, uint32_t heap, uint32_t slot) noexcept nogil:
        cdef uint32_t i = self.position[slot]
        if i == NO_SLOT:
            return
        cdef heap_entry_t* h = self.heaps[heap]
        cdef uint32_t last = self.sizes[heap] - 1
        self.position[slot] = NO_SLOT
        self.sizes[heap] = last
        if i == last:
            return
        cdef heap_entry_t moved = h[last]
        self._place(h, i, moved)
        if i > 0 and _less(&moved, &h[(i - 1) >> 1]):
            self._sift_up(h, i)
        else:
            self._sift_down(h, last, i)

    cdef list dump(self):
        """Sizes, positions and every heap's entries, concatenated (for snapshots)."""
        cdef list chunks = [raw_bytes(self.sizes, self.n_heaps * sizeof(uint32_t)),
                            raw_bytes(self.position, self.n_slots * sizeof(uint32_t))]
        cdef uint32_t i
        cdef list entries = []
        for i in range(self.n_heaps):
            if self.sizes[i]:
                entries.append(raw_bytes(self.heaps[i], self.sizes[i] * sizeof(heap_entry_t)))
        chunks.append(b"".join(entries))
        return chunks

    cdef int load(self, list chunks) except -1:
        cdef uint32_t i, n, cap
        cdef size_t offset = 0
        cdef bytes entries = chunks[2]
        cdef heap_entry_t* grown
        load_bytes(self.sizes, chunks[0], self.n_heaps * sizeof(uint32_t))
        load_bytes(self.position, chunks[1], self.n_slots * sizeof(uint32_t))
        for i in range(self.n_heaps):
            n = self.sizes[i]
            if n == 0:
                continue
            if n > self.capacities[i]:
                cap = 8
                while cap < n:
                    cap *= 2
                grown = <heap_entry_t*>PyMem_Realloc(self.heaps[i], cap * sizeof(heap_entry_t))
                if grown == NULL:
                    raise MemoryError("HeapSet: cannot restore heap of %d entries" % n)
                self.heaps[i] = grown
                self.capacities[i] = cap
            load_bytes(self.heaps[i], entries[offset:offset + n * sizeof(heap_entry_t)],
                       n * sizeof(heap_entry_t))
            offset += n * sizeof(heap_entry_t)
        if offset != <size_t>len(entries):
            raise ValueError("snapshot heap entries do not add up")
        return 0

    # Python access, for tests
    def py_push(self, heap, key, tie, slot):
        self.push(heap, key, tie, slot)

    def py_remove(self, heap, slot):
        self.remove(heap, slot)

    def py_top(self, heap):
        if self.sizes[heap] == 0:
            return None
        return (self.heaps[heap][0].key, self.heaps[heap][0].tie, self.heaps[heap][0].slot)

    def py_size(self, heap):
        return self.sizes[heap]
