"""The smallest engine configuration the in-process tests build an Engine or an EngineLoop
from: BTC / USDT, one instrument BTCUSDT (id 1, last 50,000.00), accounts 1 and 2, strategy 1
on both with a fixed size of 0.001 BTC (100 raw).

:data:`TOML` is it in the full format (``oms_core/config``), with :data:`IDS` the ids the
tests use; :func:`engine_config` derives the engine's settings from it."""

from __future__ import annotations

from oms_core.config import OmsConfig, parse_config
from oms_core.engine.config import EngineConfig, from_oms_config

TOML = """
[engine]
commands = "ipc:///tmp/unused"
events = "ipc:///tmp/unused-events"
health = "ipc:///tmp/unused-health"
signals = ""
journal_dir = ""

[security]
mode = "off"

[assets]
BTC = { precision = 8 }
USDT = { precision = 8 }

[exchanges.sim]
kind = "sim"

[instruments.BTCUSDT]
base = "BTC"
quote = "USDT"
price_precision = 2
qty_precision = 5
tick = "0.01"
lot = "0.00001"
min_qty = "0"
max_qty = "10000000"
reference_price = "50000.00"

[strategies.trend]
instruments = ["BTCUSDT"]

[clients.one]
strategies = ["trend"]
limits = { max_open_orders = 100_000 }
orders = { entry = "limit", fixed_qty = "0.001" }
exchange_accounts.sim = {}

[clients.two]
strategies = ["trend"]
orders = { entry = "limit", fixed_qty = "0.001" }
exchange_accounts.sim = {}
"""

IDS = {"assets": {"BTC": 1, "USDT": 2}, "exchanges": {"sim": 1}, "instruments": {"BTCUSDT": 1},
       "accounts": {"one": 1, "two": 2}, "strategies": {"trend": 1}}


def oms_config() -> OmsConfig:
    return parse_config(TOML, file="minimal_engine.TOML", ids=IDS)


def engine_config() -> EngineConfig:
    """The engine of :data:`TOML` (derived once, as ``oms run`` derives it)."""
    return from_oms_config(oms_config())
