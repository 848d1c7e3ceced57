# IdSet: an exact set of account or strategy ids, one bit per id, for the engine's checks.
#
# The hot path asks ``has(id)`` once per command and once per event (O(1), no Python object);
# the bitmap is sized up front from the configuration (the largest configured id), so nothing
# is allocated per message. ``every`` stands for all ids (an admin, a trusted internal input).
# Building, copying and listing are cold (sessions, HELLO, configuration).

from libc.stdint cimport uint32_t, uint64_t


cdef class IdSet:
    cdef uint64_t* words
    """One bit per id: id i is bit (i & 63) of words[i >> 6]."""
    cdef uint32_t n_words
    cdef readonly bint every
    """True: every id is in the set (nothing is stored)."""
    cdef readonly bint frozen
    """True: a shared constant; ``add`` refuses."""

    cdef inline bint has(self, uint32_t i) noexcept nogil:
        cdef uint32_t w = i >> 6
        return self.every or (w < self.n_words and ((self.words[w] >> (i & 63)) & 1) != 0)

    cdef int add(self, uint32_t i) except -1
    """Put ``i`` in the set (grows the bitmap when ``i`` is beyond it: cold)."""
    cdef int _grow(self, uint32_t n_words) except -1
