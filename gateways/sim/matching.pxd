# cython: language_level=3
"""Price-time priority matching engine of the simulated exchange.

All prices, quantities and balances are int64 fixed-point counts of 1e-8 (``SCALE``), the
precision Binance uses on the wire. One ``Ledger`` (ledger.pxd) holds every account's
free/locked balance per asset; one ``Book`` per symbol owns its order pool, its price levels,
its order-id hash table and its event buffer, all allocated once in ``__cinit__`` and freed in
``__dealloc__``. What each order type means (stops, market-like) is in order_types.pxd.
"""

from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t

from gateways.sim.ledger cimport Ledger

# ---------------------------------------------------------------- constants ----

cdef enum:
    SIDE_BUY = 0
    SIDE_SELL = 1

cdef enum:
    # order types, Binance spot names
    OT_LIMIT = 0
    OT_MARKET = 1
    OT_LIMIT_MAKER = 2
    OT_STOP_LOSS = 3
    OT_STOP_LOSS_LIMIT = 4
    OT_TAKE_PROFIT = 5
    OT_TAKE_PROFIT_LIMIT = 6

cdef enum:
    TIF_GTC = 0
    TIF_IOC = 1
    TIF_FOK = 2

cdef enum:
    STP_NONE = 0
    STP_EXPIRE_TAKER = 1
    STP_EXPIRE_MAKER = 2
    STP_EXPIRE_BOTH = 3

cdef enum:
    # order status, Binance spot names
    ST_NEW = 0
    ST_PARTIALLY_FILLED = 1
    ST_FILLED = 2
    ST_CANCELED = 3
    ST_REJECTED = 4
    ST_EXPIRED = 5
    ST_EXPIRED_IN_MATCH = 6

cdef enum:
    # event kinds, mapped to executionReport "x" (execution type)
    EV_NEW = 0          # accepted (resting, or pending trigger when not working)
    EV_TRADE = 1        # one side of one fill
    EV_CANCELED = 2     # user cancel
    EV_EXPIRED = 3      # IOC/FOK/market remainder, or STP
    EV_TRIGGERED = 4    # a stop order became working
    EV_STP = 5          # TRADE_PREVENTION

cdef enum:
    # reject codes returned (negated) by submit/cancel; rejects are normal traffic
    REJ_OK = 0
    REJ_BAD_PARAM = 1
    REJ_INSUFFICIENT_BALANCE = 2
    REJ_WOULD_TAKE = 3          # LIMIT_MAKER that would cross
    REJ_WOULD_TRIGGER = 4       # stop order that would trigger immediately
    REJ_FULL = 5                # order pool or level array full
    REJ_UNKNOWN_ORDER = 6
    REJ_FOK_UNFILLABLE = 7      # FOK reported as EXPIRED, code used for query only
    REJ_NO_LIQUIDITY = 8        # market order on an empty opposite side

# ------------------------------------------------------------------ structs ----

ctypedef struct order_t:
    int64_t order_id        # exchange id, > 0; 0 marks a free slot
    int64_t price           # limit price (0 for market)
    int64_t stop_price      # trigger price (0 when none); trails the last price when
    int64_t trailing_delta  #   trailing_delta > 0 (BIPS, Binance's trailingDelta)
    int64_t qty             # original quantity
    int64_t filled          # executed quantity
    int64_t cum_quote       # executed quote amount
    int64_t locked          # funds still locked for this order (quote for buy, base for sell)
    int64_t seq             # arrival sequence, for priority checks in tests
    int32_t account
    int32_t prev            # FIFO neighbours inside the price level, -1 at the ends
    int32_t next
    uint8_t side
    uint8_t otype
    uint8_t tif
    uint8_t status
    uint8_t stp
    uint8_t working         # 0 while a stop order waits for its trigger

ctypedef struct level_t:
    int64_t price
    int64_t qty             # sum of remaining quantity of the orders at this level
    int32_t head            # oldest order slot (first to fill)
    int32_t tail
    int32_t count

ctypedef struct event_t:
    int64_t order_id
    int64_t trade_id        # -1 when not a trade
    int64_t price           # fill price (trade) or 0
    int64_t qty             # fill quantity (trade) or 0
    int64_t quote_qty       # fill quote amount (trade) or 0
    int64_t commission      # in the asset received (base for buyer, quote for seller)
    int64_t filled          # order's executed quantity after this event
    int64_t cum_quote       # order's executed quote after this event
    int64_t counter_id      # other order of the fill, or the prevented one (STP)
    int32_t account
    uint8_t kind            # EV_*
    uint8_t status          # ST_* after this event
    uint8_t side
    uint8_t is_maker

# ------------------------------------------------------------------ classes ----

cdef class Book:
    """One symbol's limit order book with price-time priority."""
    # ---- configuration
    cdef readonly Ledger ledger
    cdef readonly int32_t base_asset
    cdef readonly int32_t quote_asset
    cdef readonly int64_t maker_bps
    cdef readonly int64_t taker_bps
    # ---- order pool (free list threaded through order_t.next)
    cdef order_t* _orders
    cdef int32_t _cap_orders
    cdef int32_t _free_head
    cdef readonly int32_t n_orders
    # ---- order-id -> slot hash (open addressing, linear probing, backward-shift delete)
    cdef int64_t* _hkeys
    cdef int32_t* _hvals
    cdef int64_t _hmask
    # ---- price levels: best at the END of each array (bids ascending, asks descending)
    cdef level_t* _levels[2]
    cdef int32_t _n_levels[2]
    cdef int32_t _cap_levels
    # ---- stop orders waiting for a trigger (slot indices)
    cdef int32_t* _stops
    cdef int32_t _n_stops
    cdef int32_t _cap_stops
    # ---- event buffer, cleared by the caller (grows by doubling when a sweep overflows it)
    cdef event_t* _events
    cdef int32_t _n_events
    cdef int32_t _cap_events
    # ---- counters
    cdef readonly int64_t next_order_id
    cdef readonly int64_t next_trade_id
    cdef readonly int64_t update_id       # bumped on every change of a price level
    cdef readonly int64_t last_price
    cdef int64_t _seq

    # fast twins of the public methods
    cdef int64_t c_submit(self, int32_t account, uint8_t side, uint8_t otype, uint8_t tif,
                          int64_t price, int64_t qty, int64_t stop_price, uint8_t stp,
                          int64_t trailing_delta=*)
    cdef int c_cancel(self, int64_t order_id, int32_t account)
    # internals
    cdef int32_t _alloc(self) except -2
    cdef void _release(self, int32_t slot) noexcept
    cdef void _hput(self, int64_t key, int32_t val) noexcept
    cdef int32_t _hget(self, int64_t key) noexcept
    cdef void _hdel(self, int64_t key) noexcept
    cdef int32_t _find_level(self, uint8_t side, int64_t price) noexcept
    cdef int32_t _insert_level(self, uint8_t side, int64_t price) noexcept
    cdef void _remove_level(self, uint8_t side, int32_t idx) noexcept
    cdef int _rest(self, int32_t slot) except -1
    cdef void _unlink(self, int32_t slot) noexcept
    cdef int _emit(self, int32_t slot, uint8_t kind, int64_t trade_id, int64_t price,
                   int64_t qty, int64_t quote, int64_t fee, int64_t counter, uint8_t maker) except -1
    cdef int _finish(self, int32_t slot, uint8_t status, uint8_t kind) except -1
    cdef bint _lock(self, int32_t slot) noexcept
    cdef int64_t _required_lock(self, order_t* o) noexcept
    cdef bint _crosses(self, uint8_t side, int64_t limit, int64_t price) noexcept
    cdef int64_t _available(self, uint8_t side, int64_t limit, int64_t need) noexcept
    cdef int _match(self, int32_t slot) except -1
    cdef int _fill(self, int32_t taker, int32_t maker, int64_t qty) except -1
    cdef int _activate(self, int32_t slot) except -1
    cdef int _check_stops(self) except -1
