"""Gateway configuration: one JSON or TOML file per gateway process (cold code)."""

from __future__ import annotations

import importlib.util
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# ccxt (and its crypto stack) is an extra, needed only by the ccxt gateway
CCXT_EXTRA_HINT = "needs ccxt, which is not installed: pip install 'oms[ccxt]'"


def ccxt_installed() -> bool:
    """Whether the ``ccxt`` extra is importable (checked without importing it)."""
    return importlib.util.find_spec("ccxt") is not None


@dataclass(frozen=True)
class Instrument:
    """An instrument the gateway trades: engine id <-> exchange symbol, fixed-point precision."""

    id: int
    symbol: str
    price_decimals: int
    qty_decimals: int


@dataclass(frozen=True)
class EngineEndpoints:
    """ZeroMQ endpoints of the engine link; ``bind`` says whether the gateway binds them."""

    orders: str = "ipc:///tmp/oms-gw-orders"
    events: str = "ipc:///tmp/oms-gw-events"
    market_data: str = "ipc:///tmp/oms-gw-md"
    bind: bool = False
    # CURVE (engine security on): this gateway's key file and the engine's public key file
    curve_secret_file: str = ""
    server_public_file: str = ""


@dataclass(frozen=True)
class VenueAccount:
    """One venue account the gateway trades for one engine account: its own credentials
    (by reference: env var or file, never the value)."""

    account_id: int
    name: str = ""
    api_key_env: str = ""
    api_secret_env: str = ""
    api_key_file: str | None = None
    api_secret_file: str | None = None

    def credentials(self) -> tuple[str, str]:
        """Return (api_key, api_secret); never log the result."""
        return (_secret(self.api_key_file, self.api_key_env),
                _secret(self.api_secret_file, self.api_secret_env))


@dataclass
class GatewayConfig:
    """Everything one gateway process needs."""

    kind: str  # "binance" or "ccxt"
    gateway_id: int = 1
    account_id: int = 1
    instruments: list[Instrument] = field(default_factory=list)
    engine: EngineEndpoints = field(default_factory=EngineEndpoints)
    rest_url: str = "https://api.binance.com"
    ws_url: str = "wss://stream.binance.com:9443"
    api_key_env: str = "BINANCE_API_KEY"
    api_secret_env: str = "BINANCE_API_SECRET"
    api_key_file: str | None = None
    api_secret_file: str | None = None
    exchange: str = "binance"  # ccxt exchange id
    ccxt_options: dict[str, Any] = field(default_factory=dict)
    ccxt_urls: dict[str, Any] = field(default_factory=dict)  # merged into ccxt's urls["api"]
    ccxt_websocket: bool = True  # False: poll books and trades over REST
    stale_after_s: float = 5.0
    # republish every synced book's top this often: ZeroMQ PUB drops what was sent before a
    # subscriber joined, so a (re)started engine would not learn the price of a quiet market
    md_refresh_s: float = 1.0
    request_timeout_s: float = 5.0
    recv_window_ms: int = 5000
    snapshot_limit: int = 1000
    book_capacity: int = 1000
    weight_limit_1m: int = 6000
    reconnect_base_s: float = 0.5
    reconnect_max_s: float = 30.0
    ping_idle_s: float = 10.0
    client_order_prefix: str = "oms-"
    user_stream: bool = True
    # venue asset name -> [engine asset id, decimals]: balances and fee assets in
    # reconciliation answers (assets not listed are not reported)
    assets: dict[str, list[int]] = field(default_factory=dict)
    # one session per engine account (own keys, REST client, rate limits, user stream);
    # empty: the one account ``account_id`` with the credentials above
    accounts: list[VenueAccount] = field(default_factory=list)

    def venue_accounts(self) -> list[VenueAccount]:
        """The accounts this gateway trades: ``accounts``, else ``account_id`` alone."""
        if self.accounts:
            return list(self.accounts)
        return [VenueAccount(self.account_id, "", self.api_key_env, self.api_secret_env,
                             self.api_key_file, self.api_secret_file)]

    def instrument_by_symbol(self) -> dict[str, Instrument]:
        return {i.symbol.upper(): i for i in self.instruments}

    def credentials(self) -> tuple[str, str]:
        """Return (api_key, api_secret) from files or env vars; never log the result."""
        key = _secret(self.api_key_file, self.api_key_env)
        secret = _secret(self.api_secret_file, self.api_secret_env)
        return key, secret


def _secret(path: str | None, env: str) -> str:
    if path:
        return Path(path).read_text().strip()
    value = os.environ.get(env, "") if env else ""
    if not value:
        raise RuntimeError(f"credential missing: set env var {env} or a key file in the config")
    return value


def load_config(path: str | Path) -> GatewayConfig:
    """Load a gateway config from a .json or .toml file."""
    p = Path(path)
    raw = tomllib.loads(p.read_text()) if p.suffix == ".toml" else json.loads(p.read_text())
    return config_from_dict(raw)


def config_from_dict(raw: dict[str, Any]) -> GatewayConfig:
    raw = dict(raw)
    instruments = [Instrument(**i) for i in raw.pop("instruments", [])]
    engine = EngineEndpoints(**raw.pop("engine", {}))
    accounts = [VenueAccount(**a) for a in raw.pop("accounts", [])]
    ids = [a.account_id for a in accounts]
    if len(set(ids)) != len(ids):
        raise ValueError(f"gateway accounts: an engine account twice in {ids}")
    return GatewayConfig(instruments=instruments, engine=engine, accounts=accounts, **raw)
