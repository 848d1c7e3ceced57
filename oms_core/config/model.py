"""The checked configuration: one frozen dataclass per TOML table, the name <-> id maps and
the decimal -> fixed-point conversion (:func:`to_raw`). Read by :mod:`oms_core.config.parse`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from oms_core.enums import Limit, OrderType, TimeInForce
from oms_core.identity import IdAllocator


class ConfigError(ValueError):
    """A configuration problem: the file, the dotted key and what is wrong."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file = file
        self.key = key
        self.problem = problem
        super().__init__(f"{file}: {key}: {problem}" if key else f"{file}: {problem}")



# ---------------------------------------------------------------------------------- types
@dataclass(frozen=True, slots=True)
class AssetConfig:
    name: str
    id: int
    precision: int  # balances count units of 10**-precision


@dataclass(frozen=True, slots=True)
class InstrumentConfig:
    """An instrument; tick, lot, minima and maxima are raw integers at its precisions."""

    symbol: str
    id: int
    exchange: str
    exchange_symbol: str
    base: str
    quote: str
    price_precision: int
    qty_precision: int
    tick: int
    lot: int
    min_qty: int
    max_qty: int
    min_notional: int  # quote asset units
    tradable: bool = True
    native_stops: bool = False
    # the reference price until the first market data (collars, market-order notional); 0: none
    reference_price: int = 0


@dataclass(frozen=True, slots=True)
class SimProfile:
    """How the simulator of a paper exchange behaves: the latency of each REST request, how
    resting orders fill, and the synthetic market. Paper mode only; a live exchange ignores
    it. ``[exchanges.<name>] sim_profile`` picks one of :data:`SIM_PROFILES`, and
    ``[exchanges.<name>.sim]`` sets any of these fields over it."""

    name: str
    latency: str = "none"  # none | fixed | uniform | normal | lognormal
    latency_ms: float = 0.0  # fixed value; normal mean; lognormal median
    latency_sd_ms: float = 0.0  # normal standard deviation
    latency_sigma: float = 0.5  # lognormal shape
    latency_min_ms: float = 0.0  # uniform low end; floor of normal
    latency_max_ms: float = 0.0  # uniform high end; when > 0, the cap of every distribution
    fill_probability: float = 0.0  # per market tick, per resting order: others hit it
    partial_fill_probability: float = 0.5  # such a hit fills only a part (0: fill ratio 1.0)
    fill_at_touch: bool = False  # only orders at the best price of their side are hit
    reject_probability: float = 0.0  # new orders refused at random (-2010)
    tick_ms: int = 100  # the synthetic market moves this often
    volatility_bps: float = 2.0  # std-dev of one move of the mid
    market_order_probability: float = 0.2  # per tick: others send a market order
    spread_ticks: int = 2  # others' quotes: spread, and base size of each level (slippage
    level_qty: str = "5"  # of a market order that walks the book)


# The named profiles. "ideal": no latency, resting orders fill only when the market's own
# flow reaches them. The seed's two: "local-dev" (50 ms, every order at the touch fills in
# full) and "integration" (normally distributed latency, fill probability 0.95, partials).
SIM_PROFILES: dict[str, SimProfile] = {
    "ideal": SimProfile("ideal"),
    "local-dev": SimProfile("local-dev", latency="fixed", latency_ms=50.0,
                            fill_probability=1.0, partial_fill_probability=0.0,
                            fill_at_touch=True),
    "integration": SimProfile("integration", latency="normal", latency_ms=30.0,
                              latency_sd_ms=10.0, latency_min_ms=1.0, latency_max_ms=150.0,
                              fill_probability=0.95, partial_fill_probability=0.25,
                              fill_at_touch=True),
}


@dataclass(frozen=True, slots=True)
class ExchangeConfig:
    """A venue and how its gateway reaches it; the gateway talks to the engine on
    ``orders`` / ``events`` / ``market_data``."""

    name: str
    id: int
    kind: str  # sim | binance | ccxt
    rest_url: str = ""
    ws_url: str = ""
    ccxt_id: str = ""
    orders: str = ""
    events: str = ""
    market_data: str = ""
    maker_fee_bps: int = 0
    taker_fee_bps: int = 0
    slippage_bps: int = 0
    sim: SimProfile = SIM_PROFILES["ideal"]  # paper mode: how its simulator behaves


@dataclass(frozen=True, slots=True)
class Credentials:
    """Where one credential lives: an environment variable or a file. Never the value."""

    env: str = ""
    file: str = ""

    def load(self) -> str:
        """Return the secret; raise RuntimeError (without the value) when it is missing."""
        if self.file:
            try:
                value = Path(self.file).read_text().strip()
            except OSError as e:
                raise RuntimeError(f"credential file {self.file} unreadable: "
                                   f"{e.strerror}") from None
            if not value:
                raise RuntimeError(f"credential file {self.file} is empty")
            return value
        value = os.environ.get(self.env, "")
        if not value:
            raise RuntimeError(f"credential env var {self.env} is not set")
        return value


@dataclass(frozen=True, slots=True)
class ExchangeAccount:
    """A client's account at one exchange; secrets by reference only."""

    exchange: str
    account: str  # the venue-side account name (not secret)
    api_key: Credentials
    api_secret: Credentials


@dataclass(frozen=True, slots=True)
class OrderParams:
    """How a client turns a signal into orders. Quantities are raw per instrument id."""

    long_only: bool = True
    entry_type: OrderType = OrderType.MARKET
    entry_ref: str = "close"  # "open" of the current bar or "close" of the previous one
    offset_ticks: int = 0  # limit entry: this many ticks better than the reference
    offset_bps: int = 0  # ... or this many basis points (used when offset_ticks is 0)
    sizing: str = "fixed"
    fixed_qty: dict[int, int] = field(default_factory=dict)  # instrument id -> raw qty
    balance_share_ppm: int = 0  # share of the balance in the quote asset, parts per million
    vol_target_ppm: int = 0  # target volatility of the position per bar, ppm of the balance
    max_qty: dict[int, int] = field(default_factory=dict)  # cap on the sized quantity
    vol_window: int = 20  # bars of returns for the volatility estimate
    take_profit: str = "none"  # none | vol | pct
    take_profit_ppm: int = 0  # vol multiple or fraction of the price, in ppm
    stop_loss: str = "none"
    stop_loss_ppm: int = 0
    tif: TimeInForce = TimeInForce.GTC
    expire_after_ns: int = 0  # GTD: expiry = signal time + this
    # bracket children: measured from the entry's fill or from the arrival price (core limit
    # PROTECT_ANCHOR), and what a venue refusal of one does (PROTECT_ON_REJECT)
    protect_anchor: str = "fill"  # fill | arrival_mid
    protect_reject: str = "retry"  # retry | flatten


@dataclass(frozen=True, slots=True)
class ClientConfig:
    name: str
    id: int
    currency: str  # the asset that notional limits and balance sizing are counted in
    strategies: tuple[str, ...]
    cash: dict[str, int]  # asset -> raw amount deposited at start
    limits: dict[Limit, int]  # every limit, raw, defaults filled in
    orders: OrderParams
    exchange_accounts: dict[str, ExchangeAccount]
    enabled: bool = True
    shard: int = 0
    cancel_on_disconnect: bool = False  # cancel its orders when its last HELLO session is silent


@dataclass(frozen=True, slots=True)
class StrategyConfig:
    name: str
    id: int
    instruments: tuple[str, ...]
    single_entry: bool = False
    enabled: bool = True
    bar_interval_s: int = 60  # live bars for signal prices and volatility (oms_core/bars.py)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Endpoints and sizes of the engine process (one shard)."""

    shard: int = 0
    commands: str = "tcp://127.0.0.1:5560"  # client commands (ROUTER)
    signals: str = "tcp://127.0.0.1:5561"  # publishers' signals (SUB connects here)
    events: str = "tcp://127.0.0.1:5562"  # engine events (PUB) for the writer and monitors
    health: str = "tcp://127.0.0.1:5563"  # health / status requests (REP)
    journal_dir: str = "var/journal"
    max_orders: int = 1 << 16
    max_accounts: int = 64
    max_instruments: int = 256
    max_assets: int = 64
    max_strategies: int = 64
    max_exchanges: int = 16
    mark_interval_ms: int = 1000
    writer_delay_us: int = 2000  # longest a writer record waits to share a frame
    journal_durability: str = "group"  # sync | group | os (docs/journal.md)
    journal_group_us: int = 1000  # group: longest a commit stays unsynced
    audit_queries: bool = False  # QUERY commands in the audit trail too (every other is)
    heartbeat_ms: int = 1000  # a client silent for 3 intervals loses its session (HELLO: longer)
    timer_ms: int = 100  # how often the loop runs its timers (expiries, stops, reconnects)
    writer: str = ""  # the engine's PUSH feed to the writer ("" = none: it reads the journal)
    writer_hwm: int = 1000  # frames queued to a slow writer before the feed drops (never blocks)


@dataclass(frozen=True, slots=True)
class WriterConfig:
    database: str = "var/oms.duckdb"
    flush_interval_ms: int = 500


@dataclass(frozen=True, slots=True)
class UserConfig:
    """A person or program that talks to the engine with its own CURVE key."""

    name: str
    role: str  # one of USER_ROLES
    clients: tuple[str, ...] = ()  # trader / viewer: the clients it acts on or reads
    strategies: tuple[str, ...] = ()  # publisher: the strategies it may signal


@dataclass(frozen=True, slots=True)
class SecurityConfig:
    """``[security]``: CURVE on every link, keys in ``keys_dir`` (docs/security.md)."""

    mode: str = "auto"
    keys_dir: str = "keys"
    users: dict[str, UserConfig] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReplayConfig:
    bars: str = ""
    signals: str = ""


@dataclass(slots=True)
class Ids:
    """Name <-> id maps (by the recorded identity table, new names in file order)."""

    assets: dict[str, int] = field(default_factory=dict)
    instruments: dict[str, int] = field(default_factory=dict)
    exchanges: dict[str, int] = field(default_factory=dict)
    accounts: dict[str, int] = field(default_factory=dict)
    strategies: dict[str, int] = field(default_factory=dict)

    def name(self, kind: str, id_: int) -> str:
        """Return the name of ``id_`` in map ``kind`` ("assets", "instruments", ...)."""
        for name, value in getattr(self, kind).items():
            if value == id_:
                return name
        raise KeyError(f"no {kind} id {id_}")


@dataclass(frozen=True, slots=True)
class OmsConfig:
    file: str
    mode: str
    assets: dict[str, AssetConfig]
    instruments: dict[str, InstrumentConfig]
    exchanges: dict[str, ExchangeConfig]
    strategies: dict[str, StrategyConfig]
    clients: dict[str, ClientConfig]
    engine: EngineConfig
    writer: WriterConfig
    replay: ReplayConfig
    ids: Ids
    identity: IdAllocator = field(default_factory=IdAllocator)  # what to record, what's gone
    security: SecurityConfig = field(default_factory=SecurityConfig)

    def followers(self, strategy: str) -> list[ClientConfig]:
        """Clients that follow ``strategy``, in id order (stable by name, so a journaled
        signal replays to the same orders whatever the order of the blocks)."""
        return sorted((c for c in self.clients.values() if strategy in c.strategies),
                      key=lambda c: c.id)

    def instrument_by_id(self, instrument_id: int) -> InstrumentConfig:
        return self.instruments[self.ids.name("instruments", instrument_id)]

    def venue_accounts(self, exchange: str, shard: int) -> list[ClientConfig]:
        """Clients of ``shard`` with an account at ``exchange``, in id order: the venue
        accounts its gateway trades (each on its own credentials)."""
        return [c for c in self.clients.values()
                if c.shard == shard and exchange in c.exchange_accounts]


# ------------------------------------------------------------------------------ conversion
def to_raw(value: Decimal, precision: int) -> int:
    """Return ``value`` as a count of ``10**-precision`` units; ValueError if not exact."""
    scaled = value.scaleb(precision)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"has more than {precision} decimals")
    return int(scaled)


