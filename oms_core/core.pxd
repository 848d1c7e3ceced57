# OmsCore: the engine's state in one object. It owns the instrument table and composes the
# order table, ledger, risk checker and heaps; it runs the order state machine, contingent
# orders, engine-held stops and expiry, and queues events (event_t) for the engine to drain.
#
# Fast cdef twins (c_submit, c_cancel, c_on_fill, ...) serve compiled callers such as the
# engine loop and the benchmarks; the def methods wrap them for Python.

from libc.stdint cimport int64_t, uint32_t, uint64_t

cimport cython

from oms_core.heaps cimport HeapSet
from oms_core.index cimport PairIndex
from oms_core.ledger cimport Ledger
from oms_core.orders cimport OrderTable
from oms_core.risk cimport RiskChecker
from oms_core.types cimport account_t, event_t, instrument_t, order_t


@cython.final
cdef class OmsCore:
    cdef instrument_t* instruments
    cdef readonly uint32_t n_instruments
    cdef readonly uint32_t n_assets
    cdef uint32_t* asset_precision
    # fee asset x quote asset -> the instrument whose last price values such a fee (or NO_SLOT)
    cdef uint32_t* fee_pairs
    cdef readonly OrderTable orders
    cdef readonly Ledger ledger
    cdef readonly RiskChecker risk
    cdef HeapSet resting          # self-trade prevention: (account, instrument, side)
    cdef HeapSet triggers         # held stops: per instrument x {rises-to, falls-to, trailing}
    cdef HeapSet expiries         # GTD / DAY orders, one heap
    # exchange trade id dedupe: (trade id, instrument) with a FIFO window
    cdef PairIndex seen_trades
    # client order ids (cl_ord_id, account) of this trading day's orders that left the table
    # (the table's own index refuses the ids of orders still in it); cleared by start_of_day
    cdef PairIndex day_ids
    cdef uint64_t day_orders          # orders inserted this trading day (<= day_ids.max_items)
    cdef uint64_t day_first_order_id  # order ids from here on were inserted this trading day
    cdef uint64_t* seen_k1
    cdef uint32_t* seen_k2
    cdef readonly uint64_t trade_window
    cdef uint64_t seen_next
    cdef uint64_t seen_at          # seen_next % trade_window, kept without a division
    # events queued for the engine
    cdef event_t* events
    cdef readonly uint64_t n_events
    cdef uint64_t events_capacity
    # scratch for mass cancel, triggers and expiry (max_orders slots)
    cdef uint32_t* scratch
    cdef uint64_t* scratch_ids
    cdef readonly uint64_t overfills
    cdef readonly uint64_t duplicate_fills
    cdef readonly uint64_t unknown_orders  # live orders in status UNKNOWN
    cdef readonly dict symbols
    cdef uint64_t _count_status(self, int status) except? 0

    # hot path
    cdef int c_submit(self, uint32_t account, uint32_t strategy, uint32_t instrument,
                      uint64_t cl_ord_id, int side, int order_type, int tif, int64_t price,
                      int64_t trigger, int64_t qty, int flags, int64_t expire_ts, int64_t ts,
                      int64_t trail_offset, uint64_t* order_id) except -1
    cdef int c_cancel(self, uint32_t account, uint64_t order_id, int64_t ts) except -1
    cdef int c_replace(self, uint32_t account, uint64_t order_id, int64_t new_price,
                       int64_t new_qty, int64_t ts) except -1
    cdef int c_on_ack(self, uint64_t order_id, int64_t ts) except -1
    cdef int c_on_unknown(self, uint64_t order_id, int64_t ts) except -1
    cdef int c_on_fill(self, uint64_t order_id, uint64_t trade_id, int64_t qty, int64_t price,
                       int64_t fee, uint32_t fee_asset, int liquidity, int64_t ts) except -1
    cdef int c_on_canceled(self, uint64_t order_id, int64_t ts) except -1
    cdef int c_set_price(self, uint32_t instrument, int64_t last, int64_t bid, int64_t ask,
                         int64_t ts, bint stale) except -1
    cdef void c_mark_to_market(self, int64_t ts) except *
    cdef void clear_events(self) noexcept nogil

    # internals
    cdef int _check_bracket(self, uint32_t account, uint32_t instrument, uint64_t cl_ord_id,
                            uint64_t tp_cl, uint64_t sl_cl, int side, int64_t base,
                            int64_t tp_price, int64_t sl_trigger) except -1
    cdef int64_t _single_entry_qty(self, uint32_t account, uint32_t strategy,
                                   uint32_t instrument, int64_t qty) noexcept nogil
    cdef int64_t _fee_value(self, instrument_t* inst, uint32_t fee_asset, int64_t fee,
                            int64_t price, int* overflow) noexcept nogil
    cdef int _protection_refused(self, order_t* o, int reason, int64_t ts) except -1
    cdef int _mark_protected(self, uint32_t account, uint32_t strategy, uint32_t instrument,
                             uint64_t order_id, bint unprotected, int64_t ts) except -1
    cdef int _rejected(self, uint32_t account, int code, int64_t ts) except -1
    cdef order_t* _insert(self, uint32_t account, uint32_t strategy, uint32_t instrument,
                          uint64_t cl_ord_id, int side, int order_type, int tif, int64_t price,
                          int64_t trigger, int64_t qty, int flags, int64_t expire_ts,
                          int64_t ts, int64_t trail_offset, int64_t reserve_price, bint oco,
                          bint child) except? NULL
    cdef int _hold_or_send(self, order_t* o, int64_t ts) except -1
    cdef int _link_oco(self, order_t* a, order_t* b, int64_t qty) except -1
    cdef int _set_status(self, order_t* o, int status, int64_t ts) except -1
    cdef int _on_terminal(self, order_t* o, int64_t ts) except -1
    cdef int _request_cancel(self, order_t* o, int64_t ts) except -1
    cdef order_t* _venue_partner(self, order_t* o) noexcept nogil
    cdef bint _partner_fired(self, order_t* o) noexcept nogil
    cdef int _send_fired(self, order_t* fired, order_t* partner, int64_t ts) except -1
    cdef int _fired_check(self, order_t* o) noexcept nogil
    cdef int _send_checked(self, order_t* o, int64_t ts) except -1
    cdef int _resize_oco_peer(self, order_t* o, int64_t ts) except -1
    cdef int _sync(self, order_t* o) except -1
    cdef void _sync_reserve(self, order_t* o) noexcept nogil
    cdef int _sync_heaps(self, order_t* o) except -1
    cdef bint _carries_pair(self, order_t* o) noexcept nogil
    cdef void _revalue(self, account_t* acct, uint32_t account, uint32_t instrument,
                       int64_t mark) noexcept nogil
    cdef int _check_breakers(self, uint32_t account, int64_t ts) except -1
    cdef int _trigger_stops(self, uint32_t instrument, int64_t last, int64_t ts) except -1
    cdef int _emit(self, int etype, order_t* o, int code, int64_t a, int64_t b,
                   int64_t ts) except -1
    cdef int _emit_raw(self, int etype, int code, uint32_t account, uint32_t instrument,
                       uint32_t strategy, uint64_t order_id, int64_t a, int64_t b,
                       int64_t ts) except -1
