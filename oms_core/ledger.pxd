# Ledger: netting positions per account x instrument (dense), per account x strategy x
# instrument (pooled, found through a PairIndex), signed base-asset positions per account x
# asset (the aggregate across exchanges), and cash balances per account x asset.

cimport cython
from libc.stdint cimport int64_t, uint32_t, uint64_t

from oms_core.index cimport PairIndex
from oms_core.types cimport NO_SLOT, balance_t, position_t


# What a fill did to the round trip: closed it (and maybe opened the next one).
ctypedef struct trip_t:
    bint closed
    bint flipped
    int64_t realized          # realized P&L of the closed trip
    int64_t entry_ts


@cython.final
cdef class Ledger:
    cdef position_t* positions
    cdef position_t* strategy_pool
    cdef PairIndex strategy_index
    cdef readonly uint32_t strategy_pool_used
    cdef balance_t* balances
    cdef int64_t* asset_positions
    cdef readonly uint32_t n_accounts
    cdef readonly uint32_t n_instruments
    cdef readonly uint32_t n_assets
    cdef readonly uint32_t strategy_capacity

    cdef position_t* _new_strategy_position(self, uint64_t key,
                                            uint32_t instrument) noexcept nogil

    cdef list dump(self)
    cdef int load(self, list chunks) except -1

    # accessors, inline: the core and the risk checks call them several times per order
    cdef inline position_t* position(self, uint32_t account, uint32_t instrument) noexcept nogil:
        return &self.positions[account * self.n_instruments + instrument]

    cdef inline balance_t* balance(self, uint32_t account, uint32_t asset) noexcept nogil:
        return &self.balances[account * self.n_assets + asset]

    cdef inline int64_t* asset_position(self, uint32_t account, uint32_t asset) noexcept nogil:
        return &self.asset_positions[account * self.n_assets + asset]

    cdef inline position_t* strategy_position(self, uint32_t account, uint32_t strategy,
                                              uint32_t instrument) noexcept nogil:
        """The account x strategy x instrument position, created flat on first use; NULL when
        the pool is full."""
        cdef uint64_t key = (<uint64_t>account << 32) | strategy
        cdef uint32_t i = self.strategy_index.get(key, instrument)
        if i == NO_SLOT:
            return self._new_strategy_position(key, instrument)
        return &self.strategy_pool[i]

    cdef inline position_t* find_strategy_position(self, uint32_t account, uint32_t strategy,
                                                   uint32_t instrument) noexcept nogil:
        """The account x strategy x instrument position; NULL when it was never used."""
        cdef uint32_t i = self.strategy_index.get((<uint64_t>account << 32) | strategy,
                                                  instrument)
        return NULL if i == NO_SLOT else &self.strategy_pool[i]

    @staticmethod
    cdef int64_t apply_fill(position_t* pos, int64_t signed_qty, int64_t price, int64_t mult,
                            int64_t ts, trip_t* trip) noexcept nogil
