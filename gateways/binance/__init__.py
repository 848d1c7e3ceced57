"""Binance spot gateway."""

from .gateway import BinanceGateway
from .rest import BinanceAPIError, BinanceRest, OutcomeUnknown

__all__ = ["BinanceAPIError", "BinanceGateway", "BinanceRest", "OutcomeUnknown"]
