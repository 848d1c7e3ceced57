"""The engine's settings (endpoints, sizes, journal, the accounts and strategies it serves),
derived once from the full configuration (:mod:`oms_core.config`, an :class:`OmsConfig`) by
:func:`from_oms_config`; the engine's core and its signal sizing come from that OmsConfig,
which every :class:`EngineConfig` carries (``oms``). :func:`load_engine_config` reads the full
format for an engine run alone (``python -m oms_core.engine --config FILE``); ``oms run``
derives one per shard from the same file. Its ``[engine]`` table (examples/oms.toml)::

    [engine]
    commands = "ipc:///tmp/oms-client"    # ROUTER for clients
    events = "ipc:///tmp/oms-pub"         # PUB: market data summaries, engine status
    signals = ""                          # no signal subscription (signals as commands)
    writer = "ipc:///tmp/oms-writer"      # PUSH to the writer (never blocks); "": none
    heartbeat_ms = 1000
    journal_dir = ""                      # or --journal DIR

The gateway links are each exchange's ``orders`` / ``events`` / ``market_data``; security is
the ``[security]`` table (``mode``, ``keys_dir`` as ``oms keys`` writes it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from oms_core.config import OmsConfig
from oms_core.core import OmsCore


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
    security: bool | None = None  # None: on when the client endpoint is tcp://
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
        oms=oms, shard=shard,
    )
    cfg.accounts = [{"id": c.id, "cancel_on_disconnect": c.cancel_on_disconnect}
                    for c in clients]
    cfg.strategies = [StrategyConfig(s.id, [c.id for c in clients if name in c.strategies],
                                     s.single_entry) for name, s in oms.strategies.items()]
    return cfg


def load_engine_config(source: str | os.PathLike[str] | Mapping[str, Any], shard: int = 0,
                       ids: Mapping[str, Mapping[str, int]] | None = None) -> EngineConfig:
    """The engine of ``shard`` from the full configuration (:mod:`oms_core.config`): a file
    (a :class:`~pathlib.Path`; its ids from the identity table beside its journal, as
    :func:`oms_core.config.load_config`), TOML text, or a mapping of the same tables. ``ids``
    (kind -> name -> id) keeps given ids by name, as if an identity table had recorded
    them (an engine run alone without a journal: tests, benchmarks)."""
    from oms_core.config import ConfigError, parse_config

    if isinstance(source, Mapping):
        oms = parse_config(tomli_w.dumps(dict(source)), file="engine configuration", ids=ids)
    elif isinstance(source, os.PathLike):
        p = Path(source)
        try:
            text = p.read_text()
        except OSError as e:
            raise ConfigError(str(p), "", f"cannot read: {e.strerror}") from None
        oms = parse_config(text, file=str(p), base_dir=p.parent, identity=True, ids=ids)
    else:
        oms = parse_config(source, file="engine configuration", ids=ids)
    return from_oms_config(oms, shard)


def build_core(cfg: EngineConfig) -> OmsCore:
    """Create the core of ``cfg``'s shard from its full configuration
    (:func:`oms_core.config.build_core`), its start-up events drained."""
    from oms_core.config import build_core as build_from_oms

    core = build_from_oms(cfg.oms, shard=cfg.shard)
    core.drain_events()
    return core


__all__ = ["EngineConfig", "GatewayEndpoint", "StrategyConfig", "build_core", "from_oms_config",
           "load_engine_config", "no_configuration", "shard_endpoint"]
