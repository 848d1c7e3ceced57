"""The smallest engine configuration the in-process tests build an Engine or an EngineLoop
from: BTC / USDT, one instrument, accounts 1 and 2, strategy 1 on both (raw integers, as
``oms_core.engine.load_engine_config`` reads them)."""

from __future__ import annotations

from typing import Any

CFG: dict[str, Any] = {
    "engine": {"client": "ipc:///tmp/unused", "security": False},
    "assets": [{"id": 1, "name": "BTC", "precision": 8}, {"id": 2, "name": "USDT",
                                                            "precision": 8}],
    "instruments": [{"id": 1, "symbol": "BTCUSDT", "exchange": 1, "base": 1, "quote": 2,
                     "price_precision": 2, "qty_precision": 5, "max_qty": 10**12,
                     "last": 5_000_000}],
    "accounts": [{"id": 1, "limits": {"MAX_OPEN_ORDERS": 100_000}}, {"id": 2}],
    "strategies": [{"id": 1, "accounts": [1, 2], "size": 100}],
}
