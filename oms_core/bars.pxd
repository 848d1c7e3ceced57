# LiveBars: the live bars of every strategy bar interval, built from the venue trades the
# engine hears (GW_MARKET_DATA records flagged TRADE), one O(1) update per trade and interval.
# Owned by the EngineLoop (oms_core/engine/loop.pyx), which feeds it from c_apply, so the
# journaled market data rebuild the same bars in recovery. Reference twin: oms_core/bars_ref.py.
#
# Layout: series s = interval index * n_instruments + instrument
#   bars[s]                           the bar being built (index -1: no trade yet)
#   closes[s * kept .. s * kept + kept)  ring of the closes of completed bars, oldest at
#                                     (head - count) mod kept

from libc.stdint cimport int64_t, uint32_t, uint64_t


ctypedef struct bar_t:
    int64_t index   # ts // interval of the bar being built; -1: no trade yet
    int64_t end     # (index + 1) * interval: a trade before it is in this bar (no division)
    int64_t open    # first trade of the bar
    int64_t high
    int64_t low
    int64_t close   # last trade of the bar
    uint32_t head   # next slot of the ring of completed closes
    uint32_t count  # completed closes kept (<= kept)


cdef class LiveBars:
    cdef int64_t* intervals
    """Bar intervals, ns, ascending (one series each per instrument)."""
    cdef readonly uint32_t n_intervals
    cdef readonly uint32_t n_instruments
    cdef readonly uint32_t kept
    """Completed closes kept per series (the longest volatility window)."""
    cdef bar_t* bars
    cdef int64_t* closes
    cdef readonly uint64_t n_trades
    """Trades applied (all instruments)."""

    cdef void c_trade(self, uint32_t instrument, int64_t ts, int64_t price) noexcept nogil
    """One venue trade at engine time ``ts``: update the bar of ``ts`` of every interval,
    closing the one before it when ``ts`` is in a later interval."""
    cdef void _clear(self) noexcept
    cdef int _series(self, int64_t interval_ns, uint32_t instrument) except -2
