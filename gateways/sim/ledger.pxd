# cython: language_level=3
"""Free and locked balances of the simulated exchange (the contract).

One ``Ledger`` holds every account's free/locked balance per asset, int64 fixed-point
counts of 1e-8, in two arrays allocated once in ``__cinit__`` and freed in
``__dealloc__``. The matching engine (matching.pyx) moves funds through ``free_ptr`` /
``locked_ptr``: they are defined here, inline, so its calls compile to a direct address
computation, as when the ledger lived in matching.pyx.
"""

from libc.stdint cimport int32_t, int64_t


cdef class Ledger:
    """Free and locked balance per (account, asset); int64 units of 1e-8."""
    cdef int64_t* _free
    cdef int64_t* _locked
    cdef readonly int32_t n_accounts
    cdef readonly int32_t n_assets

    cdef int _check(self, int32_t account, int32_t asset) except -1
    cpdef void deposit(self, int32_t account, int32_t asset, int64_t amount)
    cpdef int64_t free(self, int32_t account, int32_t asset)
    cpdef int64_t locked(self, int32_t account, int32_t asset)

    cdef inline int64_t* free_ptr(self, int32_t account, int32_t asset) noexcept:
        """Address of the free balance (no range check: callers pass checked indices)."""
        return &self._free[account * self.n_assets + asset]

    cdef inline int64_t* locked_ptr(self, int32_t account, int32_t asset) noexcept:
        """Address of the locked balance (no range check: callers pass checked indices)."""
        return &self._locked[account * self.n_assets + asset]
