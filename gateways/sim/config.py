"""Simulator configuration: symbols, accounts (API keys/secrets), market, limits, faults.

Load from a dict or a TOML file. Secrets are kept out of ``repr`` so they are never logged.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateways.sim.constants import STP_MODES, to_fixed


@dataclass(slots=True)
class SymbolConfig:
    symbol: str
    base: str
    quote: str
    tick_size: int  # fixed-point 1e-8
    step_size: int
    min_qty: int
    max_qty: int
    min_notional: int
    initial_price: int
    maker_bps: int = 10
    taker_bps: int = 10

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SymbolConfig:
        return cls(
            symbol=d["symbol"].upper(),
            base=d["base"].upper(),
            quote=d["quote"].upper(),
            tick_size=to_fixed(d.get("tick_size", "0.01")),
            step_size=to_fixed(d.get("step_size", "0.00001")),
            min_qty=to_fixed(d.get("min_qty", d.get("step_size", "0.00001"))),
            max_qty=to_fixed(d.get("max_qty", "9000")),
            min_notional=to_fixed(d.get("min_notional", "5")),
            initial_price=to_fixed(d.get("initial_price", "50000")),
            maker_bps=int(d.get("maker_bps", 10)),
            taker_bps=int(d.get("taker_bps", 10)),
        )


@dataclass(slots=True)
class AccountConfig:
    name: str
    api_key: str
    secret: str = field(repr=False)
    balances: dict[str, int] = field(default_factory=dict)
    stp: str = "EXPIRE_MAKER"  # Binance's default selfTradePreventionMode

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AccountConfig:
        secret = d.get("secret")
        if secret is None and d.get("secret_env"):
            import os

            secret = os.environ[d["secret_env"]]
        if secret is None and d.get("secret_file"):
            secret = Path(d["secret_file"]).read_text().strip()
        if not secret:
            raise ValueError(f"account {d.get('name')!r} has no secret")
        stp = d.get("stp", "EXPIRE_MAKER")
        if stp not in STP_MODES:
            raise ValueError(f"unknown stp mode {stp!r}")
        return cls(
            name=d["name"],
            api_key=d["api_key"],
            secret=secret,
            balances={k.upper(): to_fixed(v) for k, v in d.get("balances", {}).items()},
            stp=stp,
        )


@dataclass(slots=True)
class MarketConfig:
    enabled: bool = True
    mode: str = "random_walk"  # or "csv": rows of timestamp_ms,price
    csv_path: str | None = None
    tick_ms: int = 50
    volatility_bps: float = 0.5  # std-dev of one step of the mid, in bps
    levels: int = 10  # resting orders of other participants per side
    level_qty: str = "0.5"
    spread_ticks: int = 2
    level_spacing_ticks: int = 1
    market_order_prob: float = 0.1  # per tick: other participants send a market order
    market_order_qty: str = "0.2"
    fill_probability: float = 0.0  # per tick, per resting user order (see fill_at_touch): hit it
    partial_fill_prob: float = 0.5  # when hitting a user order, only a part of it fills
    # hit only user orders at the best price of their side, as a queue at the touch is; false:
    # any resting user order, however far from the market
    fill_at_touch: bool = False


@dataclass(slots=True)
class LimitsConfig:
    weight_per_minute: int = 6000
    orders_per_10s: int = 100
    ban_after: int = 3  # 429s answered before the IP gets a 418
    ban_seconds: int = 60


LATENCY_DISTS = ("none", "fixed", "uniform", "normal", "lognormal")


@dataclass(slots=True)
class LatencyConfig:
    dist: str = "none"  # none | fixed | uniform | normal | lognormal
    ms: float = 0.0  # fixed; normal mean; lognormal median
    min_ms: float = 0.0  # uniform; floor for normal
    max_ms: float = 0.0  # uniform; cap for normal and lognormal when > 0
    sigma: float = 0.5  # lognormal shape
    sd_ms: float = 0.0  # normal standard deviation


@dataclass(slots=True)
class SimConfig:
    symbols: list[SymbolConfig]
    accounts: list[AccountConfig]
    market: MarketConfig = field(default_factory=MarketConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    seed: int = 1
    reject_probability: float = 0.0  # random -2010 rejects of new orders
    depth_interval_ms: int = 100
    depth_include_pu: bool = False  # spot has no "pu"; futures-style clients may want it
    max_orders: int = 65536
    # the first order and trade id of every book: a venue never hands out an id twice, so a
    # simulator restarted under the same engine starts above the ids its last run used
    first_id: int = 1

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SimConfig:
        d = dict(d)
        syms = [SymbolConfig.from_dict(s) for s in d.pop("symbols", DEFAULT_SYMBOLS)]
        accts = [AccountConfig.from_dict(a) for a in d.pop("accounts", DEFAULT_ACCOUNTS)]
        market = MarketConfig(**d.pop("market", {}))
        limits = LimitsConfig(**d.pop("limits", {}))
        latency = LatencyConfig(**d.pop("latency", {}))
        if latency.dist not in LATENCY_DISTS:
            raise ValueError(f"unknown latency dist {latency.dist!r}")
        return cls(symbols=syms, accounts=accts, market=market, limits=limits, latency=latency,
                   **d)

    @classmethod
    def load(cls, path: str | Path) -> SimConfig:
        with open(path, "rb") as f:
            return cls.from_dict(tomllib.load(f))


DEFAULT_SYMBOLS: list[dict[str, Any]] = [
    {"symbol": "BTCUSDT", "base": "BTC", "quote": "USDT", "tick_size": "0.01",
     "step_size": "0.00001", "min_qty": "0.00001", "max_qty": "9000", "min_notional": "5",
     "initial_price": "50000"},
    {"symbol": "ETHUSDT", "base": "ETH", "quote": "USDT", "tick_size": "0.01",
     "step_size": "0.0001", "min_qty": "0.0001", "max_qty": "9000", "min_notional": "5",
     "initial_price": "3000"},
]
# test credentials only: the simulator is for loopback use
DEFAULT_ACCOUNTS: list[dict[str, Any]] = [
    {"name": "alice", "api_key": "sim-alice-key", "secret": "sim-alice-secret",
     "balances": {"BTC": "10", "ETH": "100", "USDT": "1000000"}},
    {"name": "bob", "api_key": "sim-bob-key", "secret": "sim-bob-secret",
     "balances": {"BTC": "10", "ETH": "100", "USDT": "1000000"}},
]
