"""The engine's settings (endpoints, sizes, journal, the accounts and strategies it serves),
derived once from the full configuration (:mod:`oms_core.config`, an :class:`OmsConfig`) by
:func:`from_oms_config`; the engine's core and its signal sizing come from that OmsConfig,
which every :class:`EngineConfig` carries (``oms``).

:func:`load_engine_config` also reads the small form that tests and benchmarks write: its
``[engine]`` table holds :class:`EngineConfig` fields as they stand; its reference data (raw
integers and ids) are written into the full format by :func:`full_format` and parsed by
:func:`oms_core.config.parse_config`, so they reach the core through the one path.

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
    size = 100                            # raw quantity per unit of a signal: each
                                          # account's fixed size (full_format)

    [[gateways]]
    exchange = 1
    orders = "ipc:///tmp/oms-gw-orders-1"  # the engine binds a PUSH here
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import tomli_w

from oms_core.config import OmsConfig
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
    accounts: list[dict[str, Any]] = field(default_factory=list)
    strategies: list[StrategyConfig] = field(default_factory=list)
    base_dir: str = "."
    # the configuration the core is built from and signals are sized by; an engine given only
    # endpoints or a bare core serves one with no strategies (:func:`no_configuration`)
    oms: OmsConfig = field(default_factory=lambda: no_configuration())
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


def no_configuration() -> OmsConfig:
    """The OmsConfig of an engine given only endpoints or a core a tool configured itself: no
    assets, strategies or clients (a signal is answered UNKNOWN_STRATEGY), no signal
    subscription, no journal directory."""
    from dataclasses import replace

    from oms_core.config import EngineConfig as OmsEngine
    from oms_core.config import Ids, ReplayConfig, WriterConfig

    return OmsConfig("", "paper", {}, {}, {}, {}, {},
                     replace(OmsEngine(), signals="", journal_dir=""), WriterConfig(),
                     ReplayConfig(), Ids())


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
        audit_queries=e.audit_queries, heartbeat_ms=e.heartbeat_ms, timer_ms=e.timer_ms,
        writer=shard_endpoint(e.writer, shard) or None, writer_hwm=e.writer_hwm,
        journal_durability=e.journal_durability, journal_group_us=e.journal_group_us,
        journal_dir=str(Path(e.journal_dir) / f"shard-{shard}") if e.journal_dir else None,
        base_dir=str(Path(oms.file).parent), oms=oms, shard=shard,
    )
    cfg.accounts = [{"id": c.id, "cancel_on_disconnect": c.cancel_on_disconnect}
                    for c in clients]
    cfg.strategies = [StrategyConfig(s.id, [c.id for c in clients if name in c.strategies],
                                     s.single_entry) for name, s in oms.strategies.items()]
    return cfg


def load_engine_config(source: str | os.PathLike[str] | Mapping[str, Any],
                       shard: int = 0) -> EngineConfig:
    """The engine of ``shard`` from a TOML file or a dict of the same shape.

    A file of the full format (it has a ``[clients]`` table) is loaded through
    :func:`oms_core.config.load_config` (errors name the file and the key). The small form the
    tests and benchmarks write (``[engine]`` as :class:`EngineConfig` fields, and
    ``[[assets]]`` / ``[[instruments]]`` / ``[[accounts]]`` / ``[[strategies]]`` with raw
    integers and ids) is written into the full format by :func:`full_format` and parsed by
    :func:`oms_core.config.parse_config` with those ids, so its core and its signal sizing are
    the full configuration's; only its ``[engine]`` table is taken as it stands.
    """
    from oms_core.config import parse_config

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
    known = set(EngineConfig.__dataclass_fields__) - {"oms", "accounts", "strategies",
                                                      "base_dir", "shard"}
    unknown = set(eng) - known
    if unknown:
        raise ValueError(f"unknown [engine] keys: {sorted(unknown)}")
    cfg = EngineConfig(**eng)
    cfg.base_dir = base
    cfg.gateways = [GatewayEndpoint(int(g["exchange"]), str(g["orders"]))
                    for g in raw.get("gateways", [])]
    for key in ("max_accounts", "max_strategies"):
        if not 1 <= getattr(cfg, key) <= MAX_IDS:
            raise ValueError(f"[engine] {key} = {getattr(cfg, key)}: must be 1..{MAX_IDS}")
    for kind, ids, top in (("account", [a["id"] for a in raw.get("accounts", [])],
                            cfg.max_accounts),
                           ("strategy", [s["id"] for s in raw.get("strategies", [])],
                            cfg.max_strategies)):
        for i in ids:
            if not 0 <= int(i) < top:
                raise ValueError(f"{kind} id {i} outside 0..{top - 1} (raise [engine] "
                                 f"max_{'accounts' if kind == 'account' else 'strategies'})")
    table, ids = full_format(raw)
    cfg.oms = parse_config(tomli_w.dumps(table), file="engine configuration", base_dir=base,
                           ids=ids)
    clients = sorted(cfg.oms.clients.values(), key=lambda c: c.id)
    cfg.accounts = [{"id": c.id, "cancel_on_disconnect": c.cancel_on_disconnect}
                    for c in clients]
    cfg.strategies = [StrategyConfig(s.id, [c.id for c in clients if name in c.strategies],
                                     s.single_entry)
                      for name, s in cfg.oms.strategies.items()]
    return cfg


# the core's table sizes, which the small form sets in [engine] like the full one
_CORE_SIZES = ("max_orders", "max_accounts", "max_strategies", "max_instruments", "max_exchanges")


def _decimal(raw: int, precision: int) -> str:
    return format(Decimal(int(raw)).scaleb(-precision), "f")


def full_format(raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, int]]]:
    """The full-format tables (``oms_core/config``) of the small form, and the ids to keep by
    name: asset ``name``, exchange ``exchange<id>``, instrument ``symbol`` (a symbol listed
    on two exchanges: ``symbol.exchange<id>``, with the symbol as its ``exchange_symbol``),
    client ``account<id>``, strategy ``strategy<id>``.

    A strategy trades every instrument quoted in the first instrument's quote asset; each
    account that follows it sizes a signal with the strategy's ``size`` (raw, at each
    instrument's quantity precision; the lot where it is 0) as its fixed quantity, enters
    with a limit order at the signal's price (else the last), and has an account at every
    exchange. Raw limits and deposits become the same amounts in decimals.
    """
    from oms_core.config.parse import LIMIT_KEYS, LIMIT_KINDS

    engine = dict(raw.get("engine", {}))
    assets = {int(a["id"]): (str(a["name"]), int(a["precision"])) for a in raw.get("assets", [])}
    instruments = [dict(i) for i in raw.get("instruments", [])]
    symbols = [str(i["symbol"]) for i in instruments]
    for i in instruments:  # a name per instrument: a symbol listed on two exchanges gets both
        if symbols.count(str(i["symbol"])) > 1:
            i["name"] = f"{i['symbol']}.exchange{int(i.get('exchange', 0))}"
        else:
            i["name"] = str(i["symbol"])
    exchanges = sorted({int(i.get("exchange", 0)) for i in instruments}
                       | {int(g["exchange"]) for g in raw.get("gateways", [])})
    ids: dict[str, dict[str, int]] = {
        "assets": {n: i for i, (n, _) in assets.items()},
        "exchanges": {f"exchange{x}": x for x in exchanges},
        "instruments": {i["name"]: int(i["id"]) for i in instruments},
        "strategies": {f"strategy{int(s['id'])}": int(s["id"])
                       for s in raw.get("strategies", [])},
        "accounts": {f"account{int(a['id'])}": int(a["id"]) for a in raw.get("accounts", [])},
    }
    table: dict[str, Any] = {
        "engine": {"signals": "", "journal_dir": "",
                   **{k: int(engine.get(k, getattr(EngineConfig, k))) for k in _CORE_SIZES}},
        "assets": {n: {"precision": p} for n, p in assets.values()},
        "exchanges": {f"exchange{x}": {"kind": "sim"} for x in exchanges},
        "instruments": {}, "strategies": {}, "clients": {},
    }
    for i in instruments:
        pp, qp = int(i["price_precision"]), int(i["qty_precision"])
        quote = assets[int(i["quote"])]
        row = {
            "exchange": f"exchange{int(i.get('exchange', 0))}",
            "base": assets[int(i["base"])][0], "quote": quote[0],
            "price_precision": pp, "qty_precision": qp,
            "tick": _decimal(i.get("tick", 1), pp), "lot": _decimal(i.get("lot", 1), qp),
            "min_qty": _decimal(i.get("min_qty", 0), qp),
            "max_qty": _decimal(i.get("max_qty", 10**15), qp),
            "min_notional": _decimal(i.get("min_notional", 0), quote[1]),
            "tradable": bool(i.get("tradable", True)),
            "native_stops": bool(i.get("native_stops", False)),
        }
        if i.get("last"):
            row["reference_price"] = _decimal(i["last"], pp)
        if i["name"] != i["symbol"]:
            row["exchange_symbol"] = str(i["symbol"])
        table["instruments"][i["name"]] = row
    quote_of_first = int(instruments[0]["quote"]) if instruments else None
    traded = [i for i in instruments if int(i["quote"]) == quote_of_first]
    sizes: dict[int, int] = {}
    for s in raw.get("strategies", []):
        table["strategies"][f"strategy{int(s['id'])}"] = {
            "instruments": [i["name"] for i in traded],
            "single_entry": bool(s.get("single_entry", False))}
        for a in s.get("accounts", []):
            size = int(s.get("size", 0))
            if sizes.setdefault(int(a), size) != size:
                raise ValueError(f"account {a} follows strategies of different sizes")
    protect = {Limit.PROTECT_ANCHOR: ("protect_anchor", ("fill", "arrival_mid")),
               Limit.PROTECT_ON_REJECT: ("protect_reject", ("retry", "flatten"))}
    for a in raw.get("accounts", []):
        aid = int(a["id"])
        name = f"account{aid}"
        size = sizes.get(aid, 0)
        orders: dict[str, Any] = {"entry": "limit", "fixed_qty": {
            i["name"]: _decimal(size or int(i.get("lot", 1)), int(i["qty_precision"]))
            for i in instruments}}
        limits: dict[str, Any] = {}
        money = assets[quote_of_first][1] if quote_of_first is not None else 0
        qps = {int(i["qty_precision"]) for i in traded}
        for key, value in dict(a.get("limits", {})).items():
            lim = Limit[key] if isinstance(key, str) and not key.isdigit() else Limit(int(key))
            if lim in protect:
                okey, choices = protect[lim]
                orders[okey] = choices[int(value)]
                continue
            kind = LIMIT_KINDS[lim]
            limits[LIMIT_KEYS[lim]] = (bool(value) if kind == "flag" else
                            int(value) if kind in ("count", "rate") else
                            _decimal(value, 9) if kind == "seconds" else
                            _decimal(value, money) if kind == "money" else
                            _decimal(value, next(iter(qps))))
        table["clients"][name] = {
            "strategies": [f"strategy{int(s['id'])}" for s in raw.get("strategies", [])
                           if aid in [int(x) for x in s.get("accounts", [])]],
            "cash": {assets[int(k)][0]: _decimal(v, assets[int(k)][1])
                     for k, v in dict(a.get("deposits", {})).items()},
            "limits": limits, "orders": orders,
            "exchange_accounts": {f"exchange{x}": {} for x in exchanges},
            "cancel_on_disconnect": bool(a.get("cancel_on_disconnect", False)),
        }
    return table, ids


def build_core(cfg: EngineConfig) -> OmsCore:
    """Create the core of ``cfg``'s shard from its full configuration
    (:func:`oms_core.config.build_core`), its start-up events drained."""
    from oms_core.config import build_core as build_from_oms

    core = build_from_oms(cfg.oms, shard=cfg.shard)
    core.drain_events()
    return core


__all__ = ["EngineConfig", "GatewayEndpoint", "StrategyConfig", "build_core", "from_oms_config",
           "full_format", "load_engine_config", "no_configuration", "shard_endpoint"]
