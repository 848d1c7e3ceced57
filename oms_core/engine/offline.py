"""The engine without sockets: the real EngineLoop behind a null sink, for recovery, tools,
tests and benchmarks that have a journal, a configuration or only a core.

Every input goes through the loop's one apply path (``EngineLoop.apply_input``), so a tool
replays and builds exactly what the engine process does; what the engine would send
(answers to clients, orders to gateways, the writer feed) is dropped. With a journal the
loop journals each input and its events and commits, as live::

    engine = offline_engine(config)            # or offline_engine(core) for a bare core
    res = recover_engine(engine, journal_dir)  # oms_core.engine.startup
    events = apply_live(engine, kind, ts, payload)
"""

from __future__ import annotations

from typing import Any

from bindings.wire.records import decode_header
from oms_core.core import OmsCore
from oms_core.journal import JournalStage

from .config import EngineConfig, build_core, load_engine_config
from .server import Engine


def offline_engine(source: OmsCore | EngineConfig | dict[str, Any],
                   journal: JournalStage | None = None) -> Engine:
    """An :class:`~oms_core.engine.server.Engine` that never binds a socket.

    ``source``: the engine configuration (a dict of full-format tables is loaded like a TOML
    file, :func:`load_engine_config`), whose core is
    built here; or an OmsCore a tool configured itself, served with a configuration that
    names its accounts and no strategies (signals need the strategies: pass the
    configuration). ``journal``: journaled by :func:`apply_live`, as the engine does (None:
    a NullJournal, nothing kept).
    """
    if isinstance(source, OmsCore):
        core = source
        accounts = []
        for a in range(core.risk.n_accounts):
            try:
                core.account_state(a)
            except KeyError:
                continue
            accounts.append({"id": a})
        cfg = EngineConfig(accounts=accounts)
    else:
        cfg = source if isinstance(source, EngineConfig) else load_engine_config(source)
        core = build_core(cfg)
    return Engine(core, journal=journal, config=cfg)


def apply_live(engine: Engine, kind: int, ts: int, payload: bytes) -> list[bytes]:
    """Apply one input as the live engine does (journaled and committed when the engine has a
    journal) and return its event records in order; answers and sends are dropped."""
    from .reconcile import _live_apply

    _live_apply(engine, kind, ts, payload)
    return event_records(engine)


def event_records(engine: Engine) -> list[bytes]:
    """The event records of the loop's last batch (what its commit journaled), in order."""
    out: list[bytes] = []
    for frame in engine.loop.wr.frames():
        off, n = 0, len(frame)
        while off < n:
            length = decode_header(frame, off).length
            out.append(frame[off:off + length])
            off += length
    return out


__all__ = ["apply_live", "event_records", "offline_engine"]
