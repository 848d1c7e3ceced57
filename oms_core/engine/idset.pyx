"""Exact sets of account / strategy ids for the engine's access checks (see idset.pxd)."""

from cpython.mem cimport PyMem_Free, PyMem_Realloc
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy, memset

# ANY_ID (0xFFFFFFFF) is the wire's wildcard, never an id
MAX_ID = 0xFFFFFFFE


cdef class IdSet:
    """An exact set of ids (0 .. MAX_ID), or every id.

    Parameters
    ----------
    ids : iterable of int
        The members.
    every : bool
        The set of all ids (``ids`` must be empty).
    capacity : int
        Ids the bitmap holds without growing (members beyond it grow it).
    frozen : bool
        No member can be added later (a constant shared by many users).
    """

    def __cinit__(self, ids=(), bint every=False, uint32_t capacity=0, bint frozen=False):
        self.every = every
        if capacity:
            self._grow((capacity + 63) >> 6)
        for i in ids:
            if every:
                raise ValueError("IdSet: every id, or listed ids, not both")
            if not 0 <= i <= MAX_ID:
                raise ValueError(f"IdSet: id {i} outside 0..{MAX_ID}")
            self.add(i)
        self.frozen = frozen

    def __dealloc__(self):
        PyMem_Free(self.words)

    cdef int _grow(self, uint32_t n_words) except -1:
        cdef uint64_t* grown
        if n_words <= self.n_words:
            return 0
        grown = <uint64_t*>PyMem_Realloc(self.words, n_words * sizeof(uint64_t))
        if grown == NULL:
            raise MemoryError("IdSet: allocation failed")
        memset(grown + self.n_words, 0, (n_words - self.n_words) * sizeof(uint64_t))
        self.words = grown
        self.n_words = n_words
        return 0

    cdef int add(self, uint32_t i) except -1:
        if self.frozen:
            raise ValueError("IdSet: a frozen set cannot change")
        if self.every:
            return 0
        if (i >> 6) >= self.n_words:
            self._grow((i >> 6) + 1)
        self.words[i >> 6] |= (<uint64_t>1) << (i & 63)
        return 0

    @staticmethod
    def from_mask(mask):
        """The ids of the set bits of the integer ``mask`` (bit i: id i), any size."""
        if mask < 0:
            raise ValueError("IdSet: a mask is not negative")
        return IdSet([i for i in range(mask.bit_length()) if mask >> i & 1])

    def put(self, uint32_t i):
        """Add ``i`` (cold)."""
        if i > MAX_ID:
            raise ValueError(f"IdSet: id {i} outside 0..{MAX_ID}")
        self.add(i)

    def copy(self):
        """A new set with the same members."""
        cdef IdSet c = IdSet(every=self.every)  # a copy can change
        c._grow(self.n_words)
        if self.n_words:
            memcpy(c.words, self.words, self.n_words * sizeof(uint64_t))
        return c

    def intersects(self, IdSet other not None):
        """True when the two sets have an id in common."""
        cdef uint32_t w, n
        if self.every:
            return other.every or len(other) > 0
        if other.every:
            return len(self) > 0
        n = self.n_words if self.n_words < other.n_words else other.n_words
        for w in range(n):
            if self.words[w] & other.words[w]:
                return True
        return False

    def __contains__(self, i):
        return 0 <= i <= MAX_ID and self.has(<uint32_t>i)

    def __iter__(self):
        cdef uint32_t w, b
        if self.every:
            raise TypeError("IdSet: the set of every id cannot be listed")
        for w in range(self.n_words):
            if self.words[w]:
                for b in range(64):
                    if (self.words[w] >> b) & 1:
                        yield (w << 6) | b

    def __len__(self):
        cdef uint32_t w
        cdef Py_ssize_t n = 0
        if self.every:
            raise TypeError("IdSet: the set of every id has no length")
        for w in range(self.n_words):
            n += bin(self.words[w]).count("1")
        return n

    def __bool__(self):
        cdef uint32_t w
        if self.every:
            return True
        for w in range(self.n_words):
            if self.words[w]:
                return True
        return False

    def __eq__(self, other):
        if not isinstance(other, IdSet):
            return NotImplemented
        if self.every or (<IdSet>other).every:
            return self.every == (<IdSet>other).every
        return list(self) == list(other)

    __hash__ = None

    def __repr__(self):
        return "IdSet(every=True)" if self.every else f"IdSet({list(self)})"


EVERY = IdSet(every=True, frozen=True)
"""Every id: an admin's accounts, or the trusted engine itself."""
NOBODY = IdSet(frozen=True)
"""No id: the subscription of a sender that follows no account (internal inputs)."""
