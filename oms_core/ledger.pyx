"""Position and balance ledger (see ledger.pxd)."""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.string cimport memset

from oms_core.index cimport PairIndex
from oms_core.snapshot cimport load_bytes, raw_bytes
from oms_core.types cimport balance_t, oms_muldiv, position_t


cdef inline int64_t _abs(int64_t x) noexcept nogil:
    return -x if x < 0 else x


cdef class Ledger:
    """All position and balance memory, allocated once for the configured maxima."""

    def __cinit__(self, uint32_t n_accounts, uint32_t n_instruments, uint32_t n_assets,
                  uint32_t strategy_capacity):
        self.n_accounts = n_accounts
        self.n_instruments = n_instruments
        self.n_assets = n_assets
        self.strategy_capacity = strategy_capacity
        cdef size_t n_pos = <size_t>n_accounts * n_instruments
        cdef size_t n_bal = <size_t>n_accounts * n_assets
        self.positions = <position_t*>PyMem_Malloc(n_pos * sizeof(position_t))
        self.strategy_pool = <position_t*>PyMem_Malloc(strategy_capacity * sizeof(position_t))
        self.balances = <balance_t*>PyMem_Malloc(n_bal * sizeof(balance_t))
        self.asset_positions = <int64_t*>PyMem_Malloc(n_bal * sizeof(int64_t))
        if (not self.positions or not self.strategy_pool or not self.balances
                or not self.asset_positions):
            raise MemoryError("Ledger: allocation failed")
        memset(self.positions, 0, n_pos * sizeof(position_t))
        memset(self.strategy_pool, 0, strategy_capacity * sizeof(position_t))
        memset(self.balances, 0, n_bal * sizeof(balance_t))
        memset(self.asset_positions, 0, n_bal * sizeof(int64_t))
        self.strategy_index = PairIndex(strategy_capacity)

    def __dealloc__(self):
        PyMem_Free(self.positions)
        PyMem_Free(self.strategy_pool)
        PyMem_Free(self.balances)
        PyMem_Free(self.asset_positions)

    cdef position_t* _new_strategy_position(self, uint64_t key,
                                            uint32_t instrument) noexcept nogil:
        # first use of this account x strategy x instrument (strategy_position's slow path)
        if self.strategy_pool_used >= self.strategy_capacity:
            return NULL
        cdef uint32_t i = self.strategy_pool_used
        self.strategy_pool_used += 1
        self.strategy_index.put(key, instrument, i)
        return &self.strategy_pool[i]

    cdef list dump(self):
        cdef size_t n_pos = <size_t>self.n_accounts * self.n_instruments
        cdef size_t n_bal = <size_t>self.n_accounts * self.n_assets
        return [raw_bytes(self.positions, n_pos * sizeof(position_t)),
                raw_bytes(&self.strategy_pool_used, sizeof(uint32_t)),
                raw_bytes(self.strategy_pool, self.strategy_pool_used * sizeof(position_t)),
                raw_bytes(self.balances, n_bal * sizeof(balance_t)),
                raw_bytes(self.asset_positions, n_bal * sizeof(int64_t))
                ] + self.strategy_index.dump()

    cdef int load(self, list chunks) except -1:
        cdef size_t n_pos = <size_t>self.n_accounts * self.n_instruments
        cdef size_t n_bal = <size_t>self.n_accounts * self.n_assets
        load_bytes(self.positions, chunks[0], n_pos * sizeof(position_t))
        load_bytes(&self.strategy_pool_used, chunks[1], sizeof(uint32_t))
        if self.strategy_pool_used > self.strategy_capacity:
            raise ValueError("snapshot holds more strategy positions than this ledger's capacity")
        load_bytes(self.strategy_pool, chunks[2], self.strategy_pool_used * sizeof(position_t))
        load_bytes(self.balances, chunks[3], n_bal * sizeof(balance_t))
        load_bytes(self.asset_positions, chunks[4], n_bal * sizeof(int64_t))
        self.strategy_index.load(chunks[5:7])
        return 0

    @staticmethod
    cdef int64_t apply_fill(position_t* pos, int64_t signed_qty, int64_t price, int64_t mult,
                            int64_t ts, trip_t* trip) noexcept nogil:
        """Net a fill into the position; return the realized P&L (quote units).

        Reducing removes cost in proportion, truncated: removed = |cost| * closed / |qty|.
        """
        cdef int64_t qty = _abs(signed_qty)
        cdef int64_t close, removed, exit_value, realized = 0, rest
        trip.closed = False
        trip.flipped = False
        if pos.qty == 0 or (pos.qty > 0) == (signed_qty > 0):
            if pos.qty == 0:
                pos.entry_ts = ts
                pos.trip_realized = 0
            pos.qty += signed_qty
            pos.cost += signed_qty * price * mult
            return 0
        close = qty if qty < _abs(pos.qty) else _abs(pos.qty)
        removed = oms_muldiv(_abs(pos.cost), close, _abs(pos.qty))
        exit_value = close * price * mult
        if pos.qty > 0:
            realized = exit_value - removed
            pos.cost -= removed
            pos.qty -= close
        else:
            realized = removed - exit_value
            pos.cost += removed
            pos.qty += close
        pos.realized += realized
        pos.trip_realized += realized
        rest = qty - close
        if pos.qty == 0:
            trip.closed = True
            trip.flipped = rest > 0
            trip.realized = pos.trip_realized
            trip.entry_ts = pos.entry_ts
            if rest > 0:
                pos.entry_ts = ts
                pos.trip_realized = 0
                pos.qty = rest if signed_qty > 0 else -rest
                pos.cost = pos.qty * price * mult
        return realized
