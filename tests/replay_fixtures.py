"""Small configurations and data for the replay tests (tests/integration/replay/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from oms_core.config import OmsConfig, parse_config
from replay.data import BAR_SCHEMA, SIGNAL_SCHEMA, generate_minute_bars

T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z
MIN = 60_000_000_000

# one instrument, one client: numbers small enough to check by hand
TINY_TOML = """
[assets]
USDT = { precision = 8 }
BTC = { precision = 8 }

[exchanges.sim]
kind = "sim"
maker_fee_bps = 2
taker_fee_bps = 5
slippage_bps = 1

[instruments.BTCUSDT]
exchange = "sim"
base = "BTC"
quote = "USDT"
tick = "0.01"
lot = "0.001"
min_qty = "0.001"
max_qty = "100"
min_notional = "1"

[strategies.s]
instruments = ["BTCUSDT"]

[clients.alice]
strategies = ["s"]
cash = { USDT = "100000" }

[clients.alice.exchange_accounts.sim]
api_key_env = "X_UNUSED_KEY"
api_secret_env = "X_UNUSED_SECRET"

[clients.alice.orders]
direction = "long_short"
sizing = "fixed"
fixed_qty = { BTCUSDT = "0.01" }
"""

# three instruments, two strategies, three clients (the example configuration's shape)
SMALL_TOML = """
[assets]
USDT = { precision = 8 }
BTC = { precision = 8 }
ETH = { precision = 8 }
SOL = { precision = 8 }

[exchanges.sim]
kind = "sim"
maker_fee_bps = 2
taker_fee_bps = 5
slippage_bps = 1

[instruments.BTCUSDT]
exchange = "sim"
base = "BTC"
quote = "USDT"
tick = "0.01"
lot = "0.0001"
min_qty = "0.0001"
max_qty = "100"
min_notional = "5"

[instruments.ETHUSDT]
exchange = "sim"
base = "ETH"
quote = "USDT"
tick = "0.01"
lot = "0.001"
qty_precision = 4
min_qty = "0.001"
max_qty = "1000"
min_notional = "5"

[instruments.SOLUSDT]
exchange = "sim"
base = "SOL"
quote = "USDT"
tick = "0.01"
lot = "0.1"
qty_precision = 4
min_qty = "0.1"
max_qty = "10000"
min_notional = "5"

[strategies.trend]
instruments = ["BTCUSDT", "ETHUSDT"]

[strategies.breakout]
instruments = ["ETHUSDT", "SOLUSDT"]
single_entry = true

[defaults.limits]
max_open_orders = 200
collar_bps = 500

[clients.alice]
strategies = ["trend", "breakout"]
cash = { USDT = "100000" }
[clients.alice.exchange_accounts.sim]
api_key_env = "X_UNUSED_KEY"
api_secret_env = "X_UNUSED_SECRET"
[clients.alice.orders]
direction = "long_short"
sizing = "fixed"
fixed_qty = { BTCUSDT = "0.1", ETHUSDT = "0.1", SOLUSDT = "1" }

[clients.bob]
strategies = ["trend"]
cash = { USDT = "50000" }
[clients.bob.exchange_accounts.sim]
api_key_env = "X_UNUSED_KEY"
api_secret_env = "X_UNUSED_SECRET"
[clients.bob.limits]
max_position = "20"
[clients.bob.orders]
direction = "long_short"
entry = "limit"
limit_offset_ticks = 2
sizing = "fixed"
fixed_qty = { BTCUSDT = "0.2", ETHUSDT = "0.5" }

[clients.carol]
strategies = ["breakout"]
cash = { USDT = "250000" }
[clients.carol.exchange_accounts.sim]
api_key_env = "X_UNUSED_KEY"
api_secret_env = "X_UNUSED_SECRET"
[clients.carol.limits]
long_only = true
[clients.carol.orders]
sizing = "fixed"
fixed_qty = { ETHUSDT = "1", SOLUSDT = "5" }
"""


def tiny_config() -> OmsConfig:
    return parse_config(TINY_TOML, "tiny.toml")


def small_config() -> OmsConfig:
    return parse_config(SMALL_TOML, "small.toml")


def bars_table(rows: list[tuple[int, int, int, int, int, int, int]]) -> pa.Table:
    """Bars from (ts, instrument, open, high, low, close, volume) rows."""
    cols = list(zip(*rows, strict=True))
    return pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(cols, BAR_SCHEMA,
                                                                          strict=True)],
                                schema=BAR_SCHEMA)


def signals_table(rows: list[tuple[int, int, int, int, int]]) -> pa.Table:
    """Signals from (ts, strategy, instrument, kind, value) rows."""
    if not rows:
        return SIGNAL_SCHEMA.empty_table()
    cols = list(zip(*rows, strict=True))
    return pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(cols, SIGNAL_SCHEMA,
                                                                          strict=True)],
                                schema=SIGNAL_SCHEMA)


def small_market(hours: float = 6, seed: int = 7, every: int = 17) -> tuple[pa.Table, pa.Table]:
    """Seeded minute bars for the three instruments and direction signals every ``every``
    bars for both strategies (deterministic)."""
    end = np.datetime64("2024-01-01T00:00") + np.timedelta64(int(hours * 60), "m")
    bars = generate_minute_bars(3, "2024-01-01", str(end), seed=seed,
                                start_prices=[5_000_000, 300_000, 15_000], vol_bps=8.0,
                                lot_volume=20_000)
    uts = np.unique(bars.column("ts").to_numpy())
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(3, len(uts), every):
        t = int(uts[k])
        rows.append((t, 1, int(rng.integers(0, 2)), 1, int(rng.choice([-1, 0, 1, 1]))))
        rows.append((t, 2, int(rng.integers(1, 3)), 1, int(rng.choice([-1, 0, 1, 1]))))
    return bars, signals_table(rows)


def write_csv(path: Path, table: pa.Table) -> Path:
    import pyarrow.csv as pacsv

    pacsv.write_csv(table, path)
    return path
