# cython: language_level=3
"""Balances of the simulated exchange's accounts (see ledger.pxd)."""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int32_t, int64_t
from libc.string cimport memset


cdef class Ledger:
    """Balances of ``n_accounts`` accounts in ``n_assets`` assets, allocated once.

    Parameters
    ----------
    n_accounts, n_assets : int
        Capacity, fixed for the life of the ledger.
    """

    def __cinit__(self, int32_t n_accounts, int32_t n_assets):
        if n_accounts <= 0 or n_assets <= 0:
            raise ValueError("n_accounts and n_assets must be positive")
        cdef size_t n = <size_t>n_accounts * <size_t>n_assets
        self._free = <int64_t*>PyMem_Malloc(n * sizeof(int64_t))
        self._locked = <int64_t*>PyMem_Malloc(n * sizeof(int64_t))
        if self._free == NULL or self._locked == NULL:
            raise MemoryError()
        memset(self._free, 0, n * sizeof(int64_t))
        memset(self._locked, 0, n * sizeof(int64_t))
        self.n_accounts = n_accounts
        self.n_assets = n_assets

    def __dealloc__(self):
        PyMem_Free(self._free)
        PyMem_Free(self._locked)

    cdef int _check(self, int32_t account, int32_t asset) except -1:
        if account < 0 or account >= self.n_accounts or asset < 0 or asset >= self.n_assets:
            raise IndexError("account or asset out of range")
        return 0

    cpdef void deposit(self, int32_t account, int32_t asset, int64_t amount):
        """Add ``amount`` (may be negative, a withdrawal) to the free balance."""
        self._check(account, asset)
        if self.free_ptr(account, asset)[0] + amount < 0:
            raise ValueError("withdrawal exceeds free balance")
        self.free_ptr(account, asset)[0] += amount

    cpdef int64_t free(self, int32_t account, int32_t asset):
        """Return the free balance."""
        self._check(account, asset)
        return self.free_ptr(account, asset)[0]

    cpdef int64_t locked(self, int32_t account, int32_t asset):
        """Return the balance locked by open orders."""
        self._check(account, asset)
        return self.locked_ptr(account, asset)[0]
