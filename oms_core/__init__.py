"""Low-latency order management core: order table, position ledger and pre-trade risk checks
on fixed-layout C structs (compiled), with a pure-Python reference model of the same semantics.

Prices and quantities are raw int64 counts at each instrument's precision; convert decimal
strings at the edges (``bindings.decimals``, ``oms_core.config``).
"""

from oms_core.core import ANY, OmsCore
from oms_core.enums import (
    REJECT_REASONS,
    Alert,
    Contingency,
    EventType,
    ExitReason,
    Hold,
    KillMode,
    Limit,
    Liquidity,
    OrderFlag,
    OrderStatus,
    OrderType,
    Reject,
    Side,
    TimeInForce,
)
from oms_core.limits import LIMIT_DEFAULTS, MAX_NOTIONAL, MAX_RAW
from oms_core.reference import ReferenceModel

__all__ = [
    "ANY",
    "Alert",
    "Contingency",
    "EventType",
    "ExitReason",
    "Hold",
    "KillMode",
    "LIMIT_DEFAULTS",
    "Limit",
    "Liquidity",
    "MAX_NOTIONAL",
    "MAX_RAW",
    "OmsCore",
    "OrderFlag",
    "OrderStatus",
    "OrderType",
    "REJECT_REASONS",
    "ReferenceModel",
    "Reject",
    "Side",
    "TimeInForce",
]
