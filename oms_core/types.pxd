# Shared C declarations of the compiled core: constants (the same numbers as oms_core/enums.py,
# held together by tests/unit/core/test_enums.py) and the fixed-layout structs kept in preallocated
# arrays. Prices and quantities are raw int64 counts at the instrument's precision.

from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t


cdef extern from "oms_math.h":
    int64_t oms_mul3(int64_t a, int64_t b, int64_t c, int64_t limit, int* overflow) noexcept nogil
    int64_t oms_muldiv(int64_t a, int64_t b, int64_t c) noexcept nogil
    int64_t oms_fee_value(int64_t fee, int64_t price, int64_t mult, int64_t div,
                          int* overflow) noexcept nogil
    int oms_prod_gt(int64_t lhs_a, int64_t lhs_b, int64_t rhs_a, int64_t rhs_b) noexcept nogil
    uint64_t oms_mix64(uint64_t x) noexcept nogil

# A cache hint: start loading a line the next steps will read. On x86 it is a volatile asm
# because GCC deems a function holding only __builtin_prefetch pure and drops calls to it.
cdef extern from *:
    """
    static inline void oms_prefetch(const void *p) {
    #if defined(__x86_64__) || defined(__i386__)
        __asm__ __volatile__("prefetcht0 %0" : : "m"(*(const char *)p));
    #else
        __builtin_prefetch(p);
    #endif
    }
    """
    void oms_prefetch(const void* p) noexcept nogil


# ---------------------------------------------------------------- constants (see enums.py)
cdef enum:
    SIDE_BUY = 1
    SIDE_SELL = 2

cdef enum:
    TYPE_MARKET = 1
    TYPE_LIMIT = 2
    TYPE_STOP_MARKET = 3
    TYPE_STOP_LIMIT = 4
    TYPE_TAKE_PROFIT = 5
    TYPE_TRAILING_STOP = 6

cdef enum:
    TIF_GTC = 1
    TIF_IOC = 2
    TIF_FOK = 3
    TIF_GTD = 4
    TIF_DAY = 5

cdef enum:
    ST_PENDING_NEW = 1
    ST_NEW = 2
    ST_PARTIALLY_FILLED = 3
    ST_FILLED = 4
    ST_PENDING_CANCEL = 5
    ST_PENDING_REPLACE = 6
    ST_CANCELED = 7
    ST_REJECTED = 8
    ST_EXPIRED = 9
    ST_UNKNOWN = 10

cdef enum:
    FLAG_REDUCE_ONLY = 1
    FLAG_POST_ONLY = 2

cdef enum:
    HOLD_NONE = 0
    HOLD_PARENT = 1
    HOLD_TRIGGER = 2
    HOLD_FIRED = 3            # an engine-held OCO leg that fired waits for its partner's cancel

cdef enum:
    CONT_NONE = 0
    CONT_OCO = 1
    CONT_OTO = 2

cdef enum:
    KILL_OFF = 0
    KILL_REDUCE_ONLY = 1
    KILL_HALT = 2

cdef enum:
    EXIT_NONE = 0
    EXIT_ORDER = 1
    EXIT_STOP_LOSS = 2
    EXIT_TAKE_PROFIT = 3
    EXIT_TRAILING_STOP = 4
    EXIT_FLIP = 5
    EXIT_RECONCILIATION = 6

cdef enum:
    EV_SEND_ORDER = 1
    EV_SEND_CANCEL = 2
    EV_SEND_REPLACE = 3
    EV_ORDER_UPDATE = 4
    EV_POSITION_UPDATE = 5
    EV_TRADE_CLOSED = 6
    EV_ALERT = 7
    EV_BALANCE_UPDATE = 8

cdef enum:
    ALERT_OVERFILL = 1
    ALERT_FILL_ON_REJECTED_ORDER = 2
    ALERT_UNKNOWN_ORDER_FILL = 3
    ALERT_DAILY_LOSS_BREAKER = 4
    ALERT_DRAWDOWN_BREAKER = 5
    ALERT_REJECT_RATE_BREAKER = 6
    ALERT_RECONCILIATION_DIFFERENCE = 7
    ALERT_PROTECTION_REFUSED = 8

cdef enum:
    LIM_MAX_ORDER_QTY = 1
    LIM_MAX_ORDER_NOTIONAL = 2
    LIM_MAX_POSITION = 3
    LIM_MAX_GROSS_EXPOSURE = 4
    LIM_MAX_NET_EXPOSURE = 5
    LIM_MAX_OPEN_ORDERS = 6
    LIM_COLLAR_BPS = 7
    LIM_COLLAR_TICKS = 8
    LIM_COLLAR_USE_MID = 9
    LIM_MAX_REFERENCE_AGE_NS = 10
    LIM_ORDER_RATE = 11
    LIM_ORDER_BURST = 12
    LIM_MESSAGE_RATE = 13
    LIM_MESSAGE_BURST = 14
    LIM_EXCHANGE_RATE = 15
    LIM_EXCHANGE_BURST = 16
    LIM_LONG_ONLY = 17
    LIM_CHECK_BALANCE = 18
    LIM_MAX_DAILY_LOSS = 19
    LIM_MAX_DRAWDOWN = 20
    LIM_REJECT_RATE = 21
    LIM_REJECT_BURST = 22
    LIM_PROTECT_ANCHOR = 23
    LIM_PROTECT_ON_REJECT = 24
    LIM_CLAMP_SINGLE_ENTRY_SELL = 25
    N_LIMITS = 26

# bracket protection (the values of LIM_PROTECT_ANCHOR and LIM_PROTECT_ON_REJECT)
cdef enum:
    ANCHOR_FILL = 0           # children keep their distance from the entry's first fill
    ANCHOR_ARRIVAL = 1        # ... from the price the bracket was planned on
    ON_REJECT_RETRY = 0       # a refused child is sent once more (stops engine-held), then flatten
    ON_REJECT_FLATTEN = 1     # a refused child closes what it protected with a market order

# what was done about a refused protective child (ALERT_PROTECTION_REFUSED detail b)
cdef enum:
    PROTECT_ACTION_NONE = 0
    PROTECT_ACTION_RETRY = 1
    PROTECT_ACTION_FLATTEN = 2

cdef enum:
    PROTECT_ON_FILL = 1       # order_t.protect, entry: anchor on the first fill
    PROTECT_RETRIED = 2       # order_t.protect, child: already the retry of a refused child

cdef enum:
    R_OK = 0
    R_UNKNOWN_ACCOUNT = 1
    R_UNKNOWN_INSTRUMENT = 2
    R_INSTRUMENT_NOT_TRADABLE = 3
    R_INVALID_SIDE = 4
    R_INVALID_ORDER_TYPE = 5
    R_INVALID_TIME_IN_FORCE = 6
    R_INVALID_FLAGS = 7
    R_INVALID_QUANTITY = 8
    R_INVALID_PRICE = 9
    R_INVALID_TRIGGER_PRICE = 10
    R_INVALID_EXPIRY = 11
    R_NOTIONAL_OVERFLOW = 12
    R_PRICE_NOT_TICK_MULTIPLE = 13
    R_QUANTITY_NOT_LOT_MULTIPLE = 14
    R_BELOW_MIN_QUANTITY = 15
    R_ABOVE_MAX_QUANTITY = 16
    R_BELOW_MIN_NOTIONAL = 17
    R_UNKNOWN_STRATEGY = 18
    R_GLOBAL_HALT = 20
    R_ACCOUNT_HALTED = 21
    R_STRATEGY_HALTED = 22
    R_REDUCE_ONLY_MODE = 23
    R_DUPLICATE_CLIENT_ORDER_ID = 30
    R_MESSAGE_RATE_EXCEEDED = 31
    R_ORDER_RATE_EXCEEDED = 32
    R_EXCHANGE_RATE_EXCEEDED = 33
    R_MAX_ORDER_QUANTITY = 40
    R_MAX_ORDER_NOTIONAL = 41
    R_NO_REFERENCE_PRICE = 42
    R_STALE_REFERENCE_PRICE = 43
    R_PRICE_COLLAR = 44
    R_LONG_ONLY = 45
    R_SINGLE_ENTRY = 46
    R_MAX_POSITION = 47
    R_MAX_OPEN_ORDERS = 48
    R_MAX_GROSS_EXPOSURE = 49
    R_MAX_NET_EXPOSURE = 50
    R_INSUFFICIENT_BALANCE = 51
    R_SELF_TRADE = 52
    R_REDUCE_ONLY_VIOLATION = 53
    R_NOT_ENOUGH_BARS = 54
    R_UNKNOWN_ORDER = 60
    R_ORDER_CLOSED = 61
    R_CANCEL_PENDING = 62
    R_REPLACE_PENDING = 63
    R_NOT_REPLACEABLE = 64
    R_TABLE_FULL = 65
    R_INVALID_CONTINGENCY = 66
    R_DUPLICATE_FILL = 70
    R_INVALID_FILL = 71
    R_OVERFILL = 72
    R_INVALID_TRANSITION = 73
    R_VENUE_REJECTED = 74

cdef enum:
    NO_SLOT = 0xFFFFFFFF
    ANY_ID = 0xFFFFFFFF

# Bounds (same values as oms_core/limits.py).
cdef extern from "oms_math.h":
    const int64_t MAX_RAW "OMS_MAX_RAW"
    const int64_t MAX_NOTIONAL "OMS_MAX_NOTIONAL"
    const int64_t NANOS_PER_TOKEN "OMS_NANOS_PER_TOKEN"


# ---------------------------------------------------------------- structs
ctypedef struct order_t:
    # identity (order_id 0 marks a free slot; id = creation sequence << slot bits | slot)
    uint64_t order_id
    uint64_t cl_ord_id
    uint64_t linked_id        # OCO: the other leg
    uint64_t parent_id        # OTO / bracket child: its entry
    uint64_t child1_id        # bracket entry: take-profit (or the only child)
    uint64_t child2_id        # bracket entry: stop-loss
    # terms, raw units
    int64_t price
    int64_t trigger
    int64_t qty
    int64_t filled
    int64_t fill_notional     # sum of price * qty over fills; average price = this / filled
    int64_t reserve_price     # price the worst case is valued at (limit, trigger or reference)
    int64_t pending_price     # replace in flight
    int64_t pending_qty
    int64_t trail_offset
    int64_t trail_anchor
    int64_t group_qty         # OCO: the size both legs protect together
    int64_t expire_ts
    # bracket entry: the price its children's distances were measured from; bracket child: the
    # signed distance of its price / trigger from the entry's fill (or anchor) when released
    int64_t anchor
    # this order's share of the account's open quantity and notional (locks derive from them)
    int64_t reserved_qty
    int64_t reserved_notional
    # nanosecond timestamps of each step
    int64_t ts_received
    int64_t ts_risk
    int64_t ts_sent
    int64_t ts_ack
    int64_t ts_last_fill
    int64_t ts_done
    uint32_t account
    uint32_t strategy
    uint32_t instrument
    uint32_t list_prev        # account live list while live, closed FIFO once terminal
    uint32_t list_next
    uint16_t reason
    uint8_t side
    uint8_t order_type
    uint8_t tif
    uint8_t flags
    uint8_t status
    uint8_t hold
    uint8_t contingency
    uint8_t exit_reason
    uint8_t locks_funds
    uint8_t expiring
    uint8_t protect           # PROTECT_* bits
    int32_t venue_code        # REJECTED by the venue: its error code (in the slot's padding)


ctypedef struct instrument_t:
    int64_t tick
    int64_t lot
    int64_t min_qty
    int64_t max_qty
    int64_t min_notional
    int64_t notional_mult     # quote units per (price unit x qty unit)
    int64_t base_mult         # base units per qty unit
    # a fee in the base asset is worth fee * price * fee_mult / fee_div quote units
    int64_t fee_mult
    int64_t fee_div
    int64_t last
    int64_t bid
    int64_t ask
    int64_t price_ts
    uint32_t base_asset
    uint32_t quote_asset
    uint16_t exchange_id
    uint8_t price_precision
    uint8_t qty_precision
    uint8_t tradable
    uint8_t native_stops
    uint8_t stale
    uint8_t active


ctypedef struct bucket_t:
    int64_t rate              # tokens per second; 0 = off
    int64_t burst
    int64_t nanotokens
    int64_t last_ts


ctypedef struct position_t:
    int64_t qty               # signed
    int64_t cost              # signed quote units of the open quantity
    int64_t realized
    int64_t fees
    int64_t open_buy          # qty reserved by open buy orders
    int64_t open_sell
    int64_t entry_ts
    int64_t trip_realized
    int64_t exposure          # qty * mark * mult at the last valuation
    int64_t unrealized        # at the last valuation
    int64_t unprotected       # 1: a protective child was refused and nothing protects it yet


ctypedef struct account_t:
    int64_t limits[N_LIMITS]
    bucket_t message_bucket
    bucket_t order_bucket
    bucket_t reject_bucket
    int64_t open_orders
    int64_t open_buy_notional
    int64_t open_sell_notional
    int64_t gross
    int64_t net
    int64_t realized
    int64_t fees
    int64_t unrealized
    int64_t day_start_pnl
    int64_t day_start_ts      # when the trading day of day_start_pnl began (start_of_day)
    int64_t peak_pnl
    uint32_t live_head
    uint32_t live_tail
    uint8_t kill
    uint8_t active


ctypedef struct balance_t:
    int64_t total
    int64_t locked


ctypedef struct event_t:
    uint16_t type
    uint16_t code
    uint32_t account
    uint32_t instrument
    uint32_t strategy
    uint64_t order_id
    int64_t a
    int64_t b
    int64_t ts
