"""Engine enum values and their Binance names (mirrors ``matching.pxd``; checked by a test)."""

from __future__ import annotations

SCALE = 100_000_000  # every price, quantity and balance is an int64 count of 1e-8

SIDE_BUY, SIDE_SELL = 0, 1
OT_LIMIT, OT_MARKET, OT_LIMIT_MAKER = 0, 1, 2
OT_STOP_LOSS, OT_STOP_LOSS_LIMIT, OT_TAKE_PROFIT, OT_TAKE_PROFIT_LIMIT = 3, 4, 5, 6
TIF_GTC, TIF_IOC, TIF_FOK = 0, 1, 2
STP_NONE, STP_EXPIRE_TAKER, STP_EXPIRE_MAKER, STP_EXPIRE_BOTH = 0, 1, 2, 3
ST_NEW, ST_PARTIALLY_FILLED, ST_FILLED, ST_CANCELED = 0, 1, 2, 3
ST_REJECTED, ST_EXPIRED, ST_EXPIRED_IN_MATCH = 4, 5, 6
EV_NEW, EV_TRADE, EV_CANCELED, EV_EXPIRED, EV_TRIGGERED, EV_STP = 0, 1, 2, 3, 4, 5
REJ_OK, REJ_BAD_PARAM, REJ_INSUFFICIENT_BALANCE, REJ_WOULD_TAKE = 0, 1, 2, 3
REJ_WOULD_TRIGGER, REJ_FULL, REJ_UNKNOWN_ORDER, REJ_NO_LIQUIDITY = 4, 5, 6, 8

SIDES = {"BUY": SIDE_BUY, "SELL": SIDE_SELL}
SIDE_NAMES = {v: k for k, v in SIDES.items()}
ORDER_TYPES = {
    "LIMIT": OT_LIMIT,
    "MARKET": OT_MARKET,
    "LIMIT_MAKER": OT_LIMIT_MAKER,
    "STOP_LOSS": OT_STOP_LOSS,
    "STOP_LOSS_LIMIT": OT_STOP_LOSS_LIMIT,
    "TAKE_PROFIT": OT_TAKE_PROFIT,
    "TAKE_PROFIT_LIMIT": OT_TAKE_PROFIT_LIMIT,
}
ORDER_TYPE_NAMES = {v: k for k, v in ORDER_TYPES.items()}
TIFS = {"GTC": TIF_GTC, "IOC": TIF_IOC, "FOK": TIF_FOK}
TIF_NAMES = {v: k for k, v in TIFS.items()}
STP_MODES = {
    "NONE": STP_NONE,
    "EXPIRE_TAKER": STP_EXPIRE_TAKER,
    "EXPIRE_MAKER": STP_EXPIRE_MAKER,
    "EXPIRE_BOTH": STP_EXPIRE_BOTH,
}
STP_NAMES = {v: k for k, v in STP_MODES.items()}
STATUS_NAMES = {
    ST_NEW: "NEW",
    ST_PARTIALLY_FILLED: "PARTIALLY_FILLED",
    ST_FILLED: "FILLED",
    ST_CANCELED: "CANCELED",
    ST_REJECTED: "REJECTED",
    ST_EXPIRED: "EXPIRED",
    ST_EXPIRED_IN_MATCH: "EXPIRED_IN_MATCH",
}
# executionReport "x"
EXEC_TYPES = {
    EV_NEW: "NEW",
    EV_TRADE: "TRADE",
    EV_CANCELED: "CANCELED",
    EV_EXPIRED: "EXPIRED",
    EV_TRIGGERED: "NEW",
    EV_STP: "TRADE_PREVENTION",
}
TERMINAL = frozenset({ST_FILLED, ST_CANCELED, ST_REJECTED, ST_EXPIRED, ST_EXPIRED_IN_MATCH})


def to_fixed(text: str | float | int) -> int:
    """Convert a decimal string (``"0.001"``) to int64 units of 1e-8; raise ValueError."""
    s = str(text).strip()
    if not s or s.count(".") > 1:
        raise ValueError(f"bad decimal {text!r}")
    neg = s.startswith("-")
    if neg or s.startswith("+"):
        s = s[1:]
    if "e" in s.lower():
        from decimal import Decimal

        s = format(Decimal(s), "f")
    whole, _, frac = s.partition(".")
    if not (whole or frac) or not (whole + frac).isdigit():
        raise ValueError(f"bad decimal {text!r}")
    if len(frac) > 8 and frac[8:].strip("0"):
        raise ValueError(f"too many decimals {text!r}")
    v = int(whole or "0") * SCALE + int((frac[:8] or "0").ljust(8, "0"))
    return -v if neg else v


def fmt(v: int) -> str:
    """Format int64 units of 1e-8 as Binance does: always 8 decimals."""
    sign = "-" if v < 0 else ""
    v = abs(v)
    return f"{sign}{v // SCALE}.{v % SCALE:08d}"
