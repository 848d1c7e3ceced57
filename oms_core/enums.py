"""Enumerations shared by the compiled core, the reference model and the wire protocol.

The integer values are part of the wire protocol and of the journal format: never renumber,
only append. ``oms_core/types.pxd`` declares the same values for C; a unit test holds the two
to the same numbers.
"""

from __future__ import annotations

from enum import IntEnum


class Side(IntEnum):
    BUY = 1
    SELL = 2


class OrderType(IntEnum):
    MARKET = 1
    LIMIT = 2
    STOP_MARKET = 3
    STOP_LIMIT = 4
    TAKE_PROFIT = 5  # market order released when the price reaches the trigger favourably
    TRAILING_STOP = 6  # market order released when price retraces trail_offset from its best


class TimeInForce(IntEnum):
    GTC = 1
    IOC = 2
    FOK = 3
    GTD = 4  # good till expire_ts
    DAY = 5  # good till expire_ts, which the engine sets to the end of the trading day


class OrderStatus(IntEnum):
    PENDING_NEW = 1
    NEW = 2
    PARTIALLY_FILLED = 3
    FILLED = 4
    PENDING_CANCEL = 5
    PENDING_REPLACE = 6
    CANCELED = 7
    REJECTED = 8
    EXPIRED = 9
    UNKNOWN = 10  # submit outcome in doubt at the venue: being queried, never re-sent blind


TERMINAL_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)


class OrderFlag(IntEnum):
    REDUCE_ONLY = 1
    POST_ONLY = 2


class Hold(IntEnum):
    """Why an accepted order is kept by the engine instead of being at the venue."""

    NONE = 0  # live at the venue (or on its way there)
    PARENT = 1  # waits for its parent (OTO / bracket entry) to fill
    TRIGGER = 2  # stop / take-profit / trailing order the engine triggers from market prices
    # an engine-held OCO leg that fired while its partner is at the venue: it is sent only
    # when the partner's cancel is confirmed (so both never fill), for what the pair has left
    FIRED = 3


class Contingency(IntEnum):
    NONE = 0
    OCO = 1  # linked_id is the other leg
    OTO = 2  # parent_id is the triggering order


class Liquidity(IntEnum):
    UNKNOWN = 0
    MAKER = 1
    TAKER = 2


class KillMode(IntEnum):
    OFF = 0
    REDUCE_ONLY = 1
    HALT = 2


class ExitReason(IntEnum):
    """Why a round trip (flat -> position -> flat) ended: the kind of the closing order."""

    NONE = 0
    ORDER = 1  # a plain market / limit order
    STOP_LOSS = 2
    TAKE_PROFIT = 3
    TRAILING_STOP = 4
    FLIP = 5  # position went through zero to the other side
    RECONCILIATION = 6


class Reject(IntEnum):
    """Result codes of commands. OK is success; every other value is a reject with a reason."""

    OK = 0
    # -- validity
    UNKNOWN_ACCOUNT = 1
    UNKNOWN_INSTRUMENT = 2
    INSTRUMENT_NOT_TRADABLE = 3
    INVALID_SIDE = 4
    INVALID_ORDER_TYPE = 5
    INVALID_TIME_IN_FORCE = 6
    INVALID_FLAGS = 7
    INVALID_QUANTITY = 8
    INVALID_PRICE = 9
    INVALID_TRIGGER_PRICE = 10
    INVALID_EXPIRY = 11
    NOTIONAL_OVERFLOW = 12
    PRICE_NOT_TICK_MULTIPLE = 13
    QUANTITY_NOT_LOT_MULTIPLE = 14
    BELOW_MIN_QUANTITY = 15
    ABOVE_MAX_QUANTITY = 16
    BELOW_MIN_NOTIONAL = 17
    UNKNOWN_STRATEGY = 18
    # -- kill switches and breakers
    GLOBAL_HALT = 20
    ACCOUNT_HALTED = 21
    STRATEGY_HALTED = 22
    REDUCE_ONLY_MODE = 23
    # -- identity and throttles
    DUPLICATE_CLIENT_ORDER_ID = 30
    MESSAGE_RATE_EXCEEDED = 31
    ORDER_RATE_EXCEEDED = 32
    EXCHANGE_RATE_EXCEEDED = 33
    # -- limits
    MAX_ORDER_QUANTITY = 40
    MAX_ORDER_NOTIONAL = 41
    NO_REFERENCE_PRICE = 42
    STALE_REFERENCE_PRICE = 43
    PRICE_COLLAR = 44
    LONG_ONLY = 45
    SINGLE_ENTRY = 46
    MAX_POSITION = 47
    MAX_OPEN_ORDERS = 48
    MAX_GROSS_EXPOSURE = 49
    MAX_NET_EXPOSURE = 50
    INSUFFICIENT_BALANCE = 51
    SELF_TRADE = 52
    REDUCE_ONLY_VIOLATION = 53
    NOT_ENOUGH_BARS = 54  # signal sizing or exits need more bars for a volatility estimate
    # -- order management
    UNKNOWN_ORDER = 60
    ORDER_CLOSED = 61
    CANCEL_PENDING = 62
    REPLACE_PENDING = 63
    NOT_REPLACEABLE = 64
    TABLE_FULL = 65
    INVALID_CONTINGENCY = 66
    # -- execution reports
    DUPLICATE_FILL = 70
    INVALID_FILL = 71
    OVERFILL = 72
    INVALID_TRANSITION = 73
    VENUE_REJECTED = 74  # the venue refused the order: ORDER_UPDATE.venue_code says why


REJECT_REASONS: dict[Reject, str] = {
    Reject.OK: "ok",
    Reject.UNKNOWN_ACCOUNT: "unknown account",
    Reject.UNKNOWN_INSTRUMENT: "unknown instrument",
    Reject.INSTRUMENT_NOT_TRADABLE: "instrument is not tradable",
    Reject.INVALID_SIDE: "side must be BUY or SELL",
    Reject.INVALID_ORDER_TYPE: "unknown order type",
    Reject.INVALID_TIME_IN_FORCE: "unknown time in force, or not allowed for this order type",
    Reject.INVALID_FLAGS: "unknown flag, or post-only on an order that is not a limit order",
    Reject.INVALID_QUANTITY: "quantity must be positive and within range",
    Reject.INVALID_PRICE: "price must be positive for limit orders and within range",
    Reject.INVALID_TRIGGER_PRICE: "trigger price must be positive for stop orders",
    Reject.INVALID_EXPIRY: "GTD/DAY orders need an expiry after the current time",
    Reject.NOTIONAL_OVERFLOW: "price x quantity does not fit the fixed-point range",
    Reject.PRICE_NOT_TICK_MULTIPLE: "price is not a multiple of the tick size",
    Reject.QUANTITY_NOT_LOT_MULTIPLE: "quantity is not a multiple of the lot size",
    Reject.BELOW_MIN_QUANTITY: "quantity below the instrument minimum",
    Reject.ABOVE_MAX_QUANTITY: "quantity above the instrument maximum",
    Reject.BELOW_MIN_NOTIONAL: "notional below the instrument minimum",
    Reject.UNKNOWN_STRATEGY: "unknown strategy",
    Reject.GLOBAL_HALT: "trading is halted globally",
    Reject.ACCOUNT_HALTED: "account is halted",
    Reject.STRATEGY_HALTED: "strategy is halted",
    Reject.REDUCE_ONLY_MODE: "kill switch allows only orders that reduce the position",
    Reject.DUPLICATE_CLIENT_ORDER_ID: "client order id already used by this account",
    Reject.MESSAGE_RATE_EXCEEDED: "account message rate exceeded",
    Reject.ORDER_RATE_EXCEEDED: "account order rate exceeded",
    Reject.EXCHANGE_RATE_EXCEEDED: "exchange account order rate exceeded",
    Reject.MAX_ORDER_QUANTITY: "order quantity above the account limit",
    Reject.MAX_ORDER_NOTIONAL: "order notional above the account limit",
    Reject.NO_REFERENCE_PRICE: "no reference price for the instrument",
    Reject.STALE_REFERENCE_PRICE: "reference price is stale",
    Reject.PRICE_COLLAR: "price outside the collar around the reference price",
    Reject.LONG_ONLY: "long-only account: sell would open a short position",
    Reject.SINGLE_ENTRY: "single-entry strategy: already in (buy) or not in (sell) a position",
    Reject.MAX_POSITION: "position including open orders would exceed the limit",
    Reject.MAX_OPEN_ORDERS: "too many open orders for the account",
    Reject.MAX_GROSS_EXPOSURE: "gross exposure would exceed the account limit",
    Reject.MAX_NET_EXPOSURE: "net exposure would exceed the account limit",
    Reject.INSUFFICIENT_BALANCE: "insufficient free balance",
    Reject.SELF_TRADE: "order would trade against a resting order of the same account",
    Reject.REDUCE_ONLY_VIOLATION: "reduce-only order would increase the position",
    Reject.NOT_ENOUGH_BARS: "not enough bars to estimate volatility",
    Reject.UNKNOWN_ORDER: "unknown order",
    Reject.ORDER_CLOSED: "order is already closed",
    Reject.CANCEL_PENDING: "a cancel is already pending",
    Reject.REPLACE_PENDING: "a replace is already pending",
    Reject.NOT_REPLACEABLE: "order cannot be replaced in its current state or type",
    Reject.TABLE_FULL: "order table is full",
    Reject.INVALID_CONTINGENCY: "invalid contingent order group",
    Reject.DUPLICATE_FILL: "duplicate fill (exchange trade id already booked)",
    Reject.INVALID_FILL: "fill with non-positive quantity or price",
    Reject.OVERFILL: "fill would take the filled quantity above the order quantity",
    Reject.INVALID_TRANSITION: "execution report not valid in the order's current state",
    Reject.VENUE_REJECTED: "rejected by the venue",
}

# What a venue's error code (ORDER_UPDATE.venue_code) means. Both gateways report Binance's
# spot codes (the ccxt gateway maps ccxt's errors to them); -2010 covers several causes that
# only the venue's message, which the fixed wire layout does not carry, tells apart.
VENUE_REASONS: dict[int, str] = {
    -1000: "unknown error at the venue",
    -1003: "too many requests (venue rate limit)",
    -1013: "filter failure (price, lot size, notional or trailing delta)",
    -1015: "too many new orders (venue order rate limit)",
    -1021: "timestamp outside the venue's receive window",
    -1022: "signature not valid",
    -1100: "illegal characters in a parameter",
    -1102: "mandatory parameter missing or malformed",
    -1106: "parameter sent when not required",
    -1111: "precision over the maximum for this asset",
    -1116: "invalid order type",
    -1117: "invalid side",
    -1121: "invalid symbol",
    -2010: "new order rejected (e.g. insufficient balance, post-only would take)",
    -2011: "cancel rejected (order unknown)",
    -2013: "order does not exist",
    -2014: "API key format invalid",
    -2015: "invalid API key, IP or permissions (no venue account for this client here)",
    -2021: "cancel-replace partially failed",
    -2022: "cancel-replace failed",
}


class Alert(IntEnum):
    """Risk alerts the core raises; each is also an event."""

    OVERFILL = 1
    FILL_ON_REJECTED_ORDER = 2
    UNKNOWN_ORDER_FILL = 3
    DAILY_LOSS_BREAKER = 4
    DRAWDOWN_BREAKER = 5
    REJECT_RATE_BREAKER = 6
    RECONCILIATION_DIFFERENCE = 7  # the venue's orders, fills or balances differ from ours
    # the venue refused a bracket's protective child: order_id = the child, a = the venue's
    # error code (on the wire; VENUE_REJECTED inside the core), b = what the core did
    # (ProtectAction); the position is marked unprotected
    PROTECTION_REFUSED = 8


class ProtectAnchor(IntEnum):
    """Limit.PROTECT_ANCHOR: what a bracket child's distance is measured from."""

    FILL = 0  # the entry's first fill
    ARRIVAL = 1  # the price the bracket was planned on (limit price, or the arrival mid)


class ProtectOnReject(IntEnum):
    """Limit.PROTECT_ON_REJECT: what the core does when the venue refuses a protective child."""

    RETRY = 0  # send it once more (a stop engine-held); a refused retry flattens
    FLATTEN = 1  # cancel the partner and close the protected quantity at market


class ProtectAction(IntEnum):
    """Alert.PROTECTION_REFUSED detail b: what was done."""

    NONE = 0  # no order slot left: nothing could be placed
    RETRY = 1
    FLATTEN = 2


class EventType(IntEnum):
    """What the core asks the engine to do or report after a call (see OmsCore.drain_events)."""

    SEND_ORDER = 1  # order released to the venue (after submit, trigger or parent fill)
    SEND_CANCEL = 2  # cancel request to the venue
    SEND_REPLACE = 3  # replace request to the venue
    ORDER_UPDATE = 4  # an order changed status or filled quantity
    POSITION_UPDATE = 5
    TRADE_CLOSED = 6  # round trip ended; a = realized P&L of the trip, b = exit reason
    ALERT = 7  # code = Alert, a/b = details
    BALANCE_UPDATE = 8  # a fill moved a balance: code = asset id, a = total, b = locked


class Limit(IntEnum):
    """Per-account risk limits (set_limit). 0 disables a limit unless noted."""

    MAX_ORDER_QTY = 1  # qty units
    MAX_ORDER_NOTIONAL = 2  # quote units
    MAX_POSITION = 3  # qty units, absolute, per instrument, counting open orders
    MAX_GROSS_EXPOSURE = 4  # quote units
    MAX_NET_EXPOSURE = 5  # quote units, absolute
    MAX_OPEN_ORDERS = 6  # count
    COLLAR_BPS = 7  # basis points around the reference price
    COLLAR_TICKS = 8  # ticks around the reference price (used when COLLAR_BPS is 0)
    COLLAR_USE_MID = 9  # 1: reference is the mid; 0: the last trade price
    MAX_REFERENCE_AGE_NS = 10  # older reference prices are stale
    ORDER_RATE = 11  # orders per second (token bucket)
    ORDER_BURST = 12
    MESSAGE_RATE = 13  # commands per second (token bucket)
    MESSAGE_BURST = 14
    EXCHANGE_RATE = 15  # orders per second per exchange account
    EXCHANGE_BURST = 16
    LONG_ONLY = 17  # 1: no sell beyond the position
    CHECK_BALANCE = 18  # 1: spot account, orders lock funds
    MAX_DAILY_LOSS = 19  # quote units; breaker halts the account
    MAX_DRAWDOWN = 20  # quote units; breaker halts the account
    REJECT_RATE = 21  # rejects per second allowed before the breaker trips
    REJECT_BURST = 22
    PROTECT_ANCHOR = 23  # ProtectAnchor of the account's bracket children
    PROTECT_ON_REJECT = 24  # ProtectOnReject: the policy for a refused protective child
    CLAMP_SINGLE_ENTRY_SELL = 25  # 1: a single-entry sell above the free position is cut to it
    # (0: refused SINGLE_ENTRY)
