"""Numeric bounds and per-account limit defaults shared by the compiled core and the reference."""

from __future__ import annotations

from oms_core.enums import Limit

# Largest raw price or quantity a command may carry (10**15 units: 10 million at 8 decimals).
MAX_RAW = 10**15
# Largest notional (quote units) of one order; keeps sums of a few thousand orders in int64.
MAX_NOTIONAL = 1 << 62
# Token buckets count nano-tokens so that refill at `rate` per second is exact per nanosecond.
NANOS_PER_TOKEN = 1_000_000_000

# Most accounts and most strategies an engine is configured for (ids 0 .. MAX_IDS - 1): the
# core's tables and the access sets (oms_core/engine/idset.pyx) are sized from the configured
# counts, so the bound keeps a typo from asking for gigabytes.
MAX_IDS = 1 << 16

# Largest value of any limit, and of a rate or burst (tokens): keeps limit arithmetic in int64.
MAX_LIMIT = 1 << 62
MAX_RATE = 10**9
RATE_LIMITS = frozenset(
    {
        Limit.ORDER_RATE, Limit.ORDER_BURST, Limit.MESSAGE_RATE, Limit.MESSAGE_BURST,
        Limit.EXCHANGE_RATE, Limit.EXCHANGE_BURST, Limit.REJECT_RATE, Limit.REJECT_BURST,
    }
)

# Limits that choose a behaviour (0 or 1) rather than bound a number.
CHOICE_LIMITS = frozenset({Limit.PROTECT_ANCHOR, Limit.PROTECT_ON_REJECT,
                           Limit.CLAMP_SINGLE_ENTRY_SELL})


def check_limit_value(limit: int, value: int) -> None:
    """Raise ValueError for an unknown limit or a value outside its range."""
    if limit not in LIMIT_DEFAULTS:
        raise ValueError(f"unknown limit {limit}")
    top = MAX_RATE if limit in RATE_LIMITS else 1 if limit in CHOICE_LIMITS else MAX_LIMIT
    if not 0 <= value <= top:
        raise ValueError(f"limit {Limit(limit).name}: {value} outside 0..{top}")


# Sane defaults: price collar and an open-order cap on, everything else off (0) until the
# configuration sets it. Every value can be changed per account at run time (set_limit).
LIMIT_DEFAULTS: dict[int, int] = {limit: 0 for limit in Limit}
LIMIT_DEFAULTS[Limit.MAX_OPEN_ORDERS] = 10_000
LIMIT_DEFAULTS[Limit.COLLAR_BPS] = 1_000
