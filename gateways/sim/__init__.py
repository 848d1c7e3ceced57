"""Simulated Binance spot exchange for tests and paper trading on localhost.

``matching`` is the compiled price-time matching engine; ``server`` speaks a subset of
Binance spot's REST and websocket protocol on top of it (see docs/simulator.md). Nothing is
imported here, so that reading a configuration (``config``) needs no server dependencies.
"""
