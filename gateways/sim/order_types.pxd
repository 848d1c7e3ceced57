# cython: language_level=3
"""What a Binance order type means to the matching engine (matching.pyx).

Which types wait for a trigger (stops), which take any price once working (market-like),
when a stop triggers on the last trade price, and how a trailing stop follows it. Inline
functions in the .pxd, so the engine's calls compile into its own C as before.
"""

from libc.stdint cimport int64_t, uint8_t

from gateways.sim.matching cimport (
    OT_MARKET,
    OT_STOP_LOSS,
    OT_STOP_LOSS_LIMIT,
    OT_TAKE_PROFIT,
    SIDE_BUY,
    SIDE_SELL,
    order_t,
)


cdef inline bint is_stop(uint8_t otype) noexcept:
    return otype >= OT_STOP_LOSS


cdef inline bint is_market_like(uint8_t otype) noexcept:
    return otype == OT_MARKET or otype == OT_STOP_LOSS or otype == OT_TAKE_PROFIT


cdef inline void trail_stop(order_t* o, int64_t last) noexcept:
    """Move a trailing stop's price with the last price, never back (Binance's trailingDelta
    without an activation price: a sell stop follows the high, a buy stop the low)."""
    cdef int64_t stop
    if last <= 0:
        return
    if o.side == SIDE_SELL:
        stop = last - last * o.trailing_delta // 10000
        if stop > o.stop_price:
            o.stop_price = stop
    else:
        stop = last + (last * o.trailing_delta + 9999) // 10000
        if o.stop_price == 0 or stop < o.stop_price:
            o.stop_price = stop


cdef inline bint stop_triggers(order_t* o, int64_t last) noexcept:
    if last <= 0:
        return False
    if o.otype == OT_STOP_LOSS or o.otype == OT_STOP_LOSS_LIMIT:
        return last >= o.stop_price if o.side == SIDE_BUY else last <= o.stop_price
    return last <= o.stop_price if o.side == SIDE_BUY else last >= o.stop_price
