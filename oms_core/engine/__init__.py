"""The engine process: one single-threaded loop owning one OmsCore (see docs/architecture.md).

Run it with ``python -m oms_core.engine --config FILE``.

The public names are loaded on first use (PEP 562), so that ``python -m oms_core.engine``
installs its stop-signal handlers before the ~0.5 s of imports behind them.
"""

from __future__ import annotations

import importlib
from typing import Any

_SOURCES = {
    "EngineConfig": ".config", "build_core": ".config", "load_engine_config": ".config",
    "MemoryJournal": ".journal_mem",
    "KIND_AUDIT": ".kinds", "KIND_MARK_TO_MARKET": ".kinds",
    "KIND_START_OF_DAY": ".kinds", "KIND_TIMER": ".kinds",
    "Engine": ".server",
    "apply_live": ".offline", "offline_engine": ".offline",
}

__all__ = [
    "KIND_AUDIT", "KIND_MARK_TO_MARKET", "KIND_START_OF_DAY", "KIND_TIMER",
    "Engine",
    "EngineConfig", "MemoryJournal", "apply_live", "build_core", "load_engine_config",
    "offline_engine",
]


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(source, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
