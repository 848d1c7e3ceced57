# RiskChecker: per-account limits, token buckets, kill switches and the pre-trade checks.
# A check returns a reject code (R_OK when the order may go): rejects are normal traffic, never
# exceptions. Every check is O(1) in the number of open orders (self-trade prevention reads the
# top of one heap).

cimport cython
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t

from oms_core.heaps cimport HeapSet
from oms_core.ledger cimport Ledger
from oms_core.index cimport PairIndex
from oms_core.orders cimport OrderTable
from oms_core.types cimport account_t, bucket_t, instrument_t, order_t


@cython.final
cdef class RiskChecker:
    cdef account_t* accounts
    cdef bucket_t* exchange_buckets      # n_accounts x n_exchanges
    cdef uint8_t* strategy_kill
    cdef uint8_t* strategy_single_entry
    cdef uint8_t* strategy_active
    cdef readonly uint8_t global_kill
    cdef readonly uint32_t n_accounts
    cdef readonly uint32_t n_strategies
    cdef readonly uint32_t n_exchanges
    cdef instrument_t* instruments       # owned by OmsCore
    cdef uint32_t n_instruments
    cdef Ledger ledger
    cdef OrderTable orders
    cdef PairIndex day_ids               # (client order id, account) seen this trading day
    cdef HeapSet resting                 # self-trade heaps, maintained by OmsCore

    cdef int check_new(self, uint32_t account, uint32_t strategy, uint32_t instrument,
                       uint64_t cl_ord_id, int side, int order_type, int tif, int64_t price,
                       int64_t trigger, int64_t qty, int flags, int64_t expire_ts, int64_t ts,
                       int64_t trail_offset, bint count_message,
                       int64_t* reserve_price) noexcept nogil
    cdef int check_replace(self, account_t* acct, order_t* o, int64_t new_price,
                           int64_t new_qty, int64_t ts) noexcept nogil
    cdef list dump(self)
    cdef int load(self, list chunks) except -1
    cdef int kill_switch(self, account_t* acct, uint32_t strategy,
                         bint* reduce_mode) noexcept nogil
    cdef bint crosses_own(self, uint32_t account, uint32_t instrument, bint is_buy,
                          int order_type, int64_t price) noexcept nogil
    cdef inline uint32_t resting_heap(self, uint32_t account, uint32_t instrument,
                                      bint is_buy) noexcept nogil:
        return (account * self.n_instruments + instrument) * 2 + (0 if is_buy else 1)


cdef bint bucket_take(bucket_t* b, int64_t ts) noexcept nogil
cdef void bucket_configure(bucket_t* b, int64_t rate, int64_t burst) noexcept nogil
