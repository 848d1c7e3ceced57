"""The engine's minimal configuration: endpoints, instruments, accounts, limits, strategies.

Kept in one function, :func:`load_engine_config`, so the full TOML configuration of issue 6
(``oms_core/config.py``) can replace it. Prices and quantities are raw integers here; the
full configuration converts decimal strings at its edge.

Example (TOML)::

    [engine]
    client = "ipc:///tmp/oms-client"      # ROUTER for clients
    public = "ipc:///tmp/oms-pub"         # PUB: market data summaries, engine status
    writer = "ipc:///tmp/oms-writer"      # PUSH to the writer (never blocks)
    gateway_events = "ipc:///tmp/oms-gw-events"   # PULL: exec reports, gateway status
    gateway_md = "ipc:///tmp/oms-gw-md"           # SUB: market data (or a list: one per exchange)
    security = false                      # default: on when the client endpoint is tcp://
                                          # (the full configuration: its [security] table)
    server_secret_file = "keys/engine.key_secret"
    keys_file = "keys/clients.json"       # bindings.security.KeyRegistry.from_file
    heartbeat_ms = 1000

    [[assets]]
    id = 1
    name = "BTC"
    precision = 8

    [[instruments]]
    id = 1
    symbol = "BTCUSDT"
    exchange = 1
    base = 1
    quote = 2
    price_precision = 2
    qty_precision = 5
    tick = 1
    lot = 1
    min_qty = 1
    max_qty = 100000000
    last = 5000000                        # optional starting reference price, raw

    [[accounts]]
    id = 1
    cancel_on_disconnect = true
    limits = { MAX_OPEN_ORDERS = 1000 }
    deposits = { 2 = 100000000000 }

    [[strategies]]
    id = 1
    accounts = [1]
    size = 100                            # raw quantity per unit of a DIRECTION signal

    [[gateways]]
    exchange = 1
    orders = "ipc:///tmp/oms-gw-orders-1"  # the engine binds a PUSH here
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oms_core.core import OmsCore
from oms_core.enums import Limit
from oms_core.limits import MAX_IDS


@dataclass
class GatewayEndpoint:
    exchange: int
    orders: str


@dataclass
class StrategyConfig:
    id: int
    accounts: list[int] = field(default_factory=list)
    size: int = 0
    single_entry: bool = False


@dataclass
class EngineConfig:
    """Everything the engine process needs; build with :func:`load_engine_config`."""

    client: str = "ipc:///tmp/oms-client"
    public: str | None = None
    writer: str | None = None
    # one endpoint or several (one per exchange): a socket binds them all
    gateway_events: str | list[str] | None = None
    gateway_md: str | list[str] | None = None
    gateways: list[GatewayEndpoint] = field(default_factory=list)
    # exchange id -> the engine accounts its gateway trades (reconciled one by one);
    # empty: whatever account each gateway answers for
    venue_accounts: dict[int, list[int]] = field(default_factory=dict)
    security: bool | None = None
    server_secret_file: str | None = None
    keys_file: str | None = None
    heartbeat_ms: int = 1000
    timer_ms: int = 100
    mark_to_market_ms: int = 1000
    max_orders: int = 1 << 16
    max_accounts: int = 64
    max_strategies: int = 64
    max_instruments: int = 256
    max_exchanges: int = 16
    writer_hwm: int = 1_000
    writer_delay_us: int = 2_000
    audit_queries: bool = False  # QUERY commands in the audit trail too
    journal_durability: str = "group"
    journal_group_us: int = 1_000
    journal_dir: str | None = None
    assets: list[dict[str, Any]] = field(default_factory=list)
    instruments: list[dict[str, Any]] = field(default_factory=list)
    accounts: list[dict[str, Any]] = field(default_factory=list)
    strategies: list[StrategyConfig] = field(default_factory=list)
    base_dir: str = "."
    oms: Any = None  # the issue-6 OmsConfig when loaded from the full TOML
    shard: int = 0

    @property
    def security_on(self) -> bool:
        if self.security is not None:
            return self.security
        return self.client.startswith("tcp://")

    def cancel_on_disconnect(self) -> set[int]:
        return {int(a["id"]) for a in self.accounts if a.get("cancel_on_disconnect")}

    def resolve(self, path: str) -> str:
        return path if os.path.isabs(path) else str(Path(self.base_dir) / path)


def shard_endpoint(endpoint: str, shard: int) -> str:
    """The endpoint of ``shard`` derived from the configured one (shard 0 uses it as is):
    ``tcp://host:port`` -> port + 100 x shard, ``ipc://path`` -> ``path-s<shard>``."""
    if shard == 0 or not endpoint:
        return endpoint
    if endpoint.startswith("tcp://"):
        host, _, port = endpoint[6:].rpartition(":")
        if port.isdigit():
            return f"tcp://{host}:{int(port) + 100 * shard}"
        return endpoint
    return f"{endpoint}-s{shard}"


def from_oms_config(oms: Any, shard: int = 0) -> EngineConfig:
    """The engine of ``shard`` from the full configuration (:func:`oms_core.config.load_config`):
    its clients only, every instrument and strategy, the endpoints of ``[engine]`` and the
    gateway links of every exchange where one of its clients has an account (events and
    market data of all of them bound, each exchange's venue accounts listed for
    reconciliation). The core itself is built by ``oms_core.config.build_core``."""
    from oms_core.security import security_on

    e = oms.engine
    clients = [c for c in oms.clients.values() if c.shard == shard]
    exchanges = [x for x in oms.exchanges.values() if oms.venue_accounts(x.name, shard)]

    def endpoints(names: list[str]) -> list[str] | None:
        return list(dict.fromkeys(shard_endpoint(n, shard) for n in names if n)) or None

    cfg = EngineConfig(
        client=shard_endpoint(e.commands, shard), public=shard_endpoint(e.events, shard),
        gateway_events=endpoints([x.events for x in exchanges]),
        gateway_md=endpoints([x.market_data for x in exchanges]),
        gateways=[GatewayEndpoint(x.id, shard_endpoint(x.orders, shard))
                  for x in exchanges if x.orders],
        venue_accounts={x.id: [c.id for c in oms.venue_accounts(x.name, shard)]
                        for x in exchanges},
        security=security_on(oms), mark_to_market_ms=e.mark_interval_ms,
        max_orders=e.max_orders,
        max_accounts=e.max_accounts, max_strategies=e.max_strategies,
        max_instruments=e.max_instruments,
        max_exchanges=e.max_exchanges, writer_delay_us=e.writer_delay_us,
        audit_queries=e.audit_queries,
        journal_durability=e.journal_durability, journal_group_us=e.journal_group_us,
        journal_dir=str(Path(e.journal_dir) / f"shard-{shard}") if e.journal_dir else None,
        base_dir=str(Path(oms.file).parent), oms=oms, shard=shard,
    )
    cfg.accounts = [{"id": c.id, "cancel_on_disconnect": c.cancel_on_disconnect}
                    for c in clients]
    cfg.strategies = [StrategyConfig(s.id, [c.id for c in clients if name in c.strategies],
                                     0, s.single_entry) for name, s in oms.strategies.items()]
    return cfg


def load_engine_config(source: str | os.PathLike[str] | Mapping[str, Any],
                       shard: int = 0) -> EngineConfig:
    """Read a TOML file or a dict (same shape) into an :class:`EngineConfig`.

    A file in the full format of ``oms_core/config.py`` (it has a ``[clients]`` table) is
    loaded through :func:`oms_core.config.load_config` (errors name the file and the key) and
    gives the engine of ``shard``.
    """
    base = "."
    if isinstance(source, Mapping):
        raw: Mapping[str, Any] = source
    else:
        p = Path(source)
        raw = tomllib.loads(p.read_text())
        base = str(p.parent)
        if "clients" in raw:
            from oms_core.config import load_config

            return from_oms_config(load_config(p), shard)
    eng = dict(raw.get("engine", {}))
    known = {f for f in EngineConfig.__dataclass_fields__}
    unknown = set(eng) - known
    if unknown:
        raise ValueError(f"unknown [engine] keys: {sorted(unknown)}")
    cfg = EngineConfig(**eng)
    cfg.base_dir = base
    cfg.assets = [dict(a) for a in raw.get("assets", [])]
    cfg.instruments = [dict(i) for i in raw.get("instruments", [])]
    cfg.accounts = [dict(a) for a in raw.get("accounts", [])]
    cfg.strategies = [StrategyConfig(int(s["id"]), [int(a) for a in s.get("accounts", [])],
                                     int(s.get("size", 0)), bool(s.get("single_entry", False)))
                      for s in raw.get("strategies", [])]
    cfg.gateways = [GatewayEndpoint(int(g["exchange"]), str(g["orders"]))
                    for g in raw.get("gateways", [])]
    for key in ("max_accounts", "max_strategies"):
        if not 1 <= getattr(cfg, key) <= MAX_IDS:
            raise ValueError(f"[engine] {key} = {getattr(cfg, key)}: must be 1..{MAX_IDS}")
    for kind, ids, top in (("account", [a["id"] for a in cfg.accounts], cfg.max_accounts),
                           ("strategy", [s.id for s in cfg.strategies], cfg.max_strategies)):
        for i in ids:
            if not 0 <= int(i) < top:
                raise ValueError(f"{kind} id {i} outside 0..{top - 1} (raise [engine] "
                                 f"max_{'accounts' if kind == 'account' else 'strategies'})")
    return cfg


def build_core(cfg: EngineConfig, ts: int = 0) -> OmsCore:
    """Create the core and load the configured state into it (the same on every start)."""
    if cfg.oms is not None:
        from oms_core.config import build_core as build_from_oms

        core = build_from_oms(cfg.oms, shard=cfg.shard)
        core.drain_events()
        return core
    core = OmsCore(max_orders=cfg.max_orders, max_accounts=cfg.max_accounts,
                   max_strategies=cfg.max_strategies, max_instruments=cfg.max_instruments,
                   max_exchanges=cfg.max_exchanges)
    for a in cfg.assets:
        core.add_asset(int(a["id"]), str(a["name"]), int(a["precision"]))
    for i in cfg.instruments:
        core.add_instrument(
            int(i["id"]), str(i["symbol"]), int(i.get("exchange", 0)), int(i["base"]),
            int(i["quote"]), int(i["price_precision"]), int(i["qty_precision"]),
            int(i.get("tick", 1)), int(i.get("lot", 1)), int(i.get("min_qty", 0)),
            int(i.get("max_qty", 10**15)), int(i.get("min_notional", 0)),
            bool(i.get("tradable", True)), bool(i.get("native_stops", False)))
        if i.get("last"):
            last = int(i["last"])
            core.set_price(int(i["id"]), last, int(i.get("bid", last)), int(i.get("ask", last)),
                           ts)
    for s in cfg.strategies:
        core.add_strategy(s.id, s.single_entry)
    for a in cfg.accounts:
        aid = int(a["id"])
        core.add_account(aid)
        for name, value in dict(a.get("limits", {})).items():
            limit = Limit[name] if isinstance(name, str) and not name.isdigit() else Limit(
                int(name))
            core.set_limit(aid, int(limit), int(value))
        for asset, amount in dict(a.get("deposits", {})).items():
            core.deposit(aid, int(asset), int(amount))
    core.drain_events()
    return core


__all__ = ["EngineConfig", "GatewayEndpoint", "StrategyConfig", "build_core",
           "from_oms_config", "load_engine_config", "shard_endpoint"]
