"""Simulated Binance spot exchange for tests and paper trading on localhost.

``matching`` is the compiled price-time matching engine; ``server`` speaks a subset of
Binance spot's REST and websocket protocol on top of it (see docs/simulator.md).
"""

from gateways.sim.config import SimConfig
from gateways.sim.exchange import Exchange, SimError
from gateways.sim.matching import Book, Ledger
from gateways.sim.server import SimServer

__all__ = ["Book", "Exchange", "Ledger", "SimConfig", "SimError", "SimServer"]
