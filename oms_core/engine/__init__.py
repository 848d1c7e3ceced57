"""The engine process: one single-threaded loop owning one OmsCore (see docs/architecture.md).

Run it with ``python -m oms_core.engine --config FILE``.
"""

from .config import EngineConfig, build_core, load_engine_config
from .journal_mem import MemoryJournal
from .kinds import KIND_CONFIG, KIND_MARK_TO_MARKET, KIND_START_OF_DAY, KIND_TIMER
from .server import Engine, orders_for_signal

__all__ = [
    "KIND_CONFIG", "KIND_MARK_TO_MARKET", "KIND_START_OF_DAY", "KIND_TIMER", "Engine",
    "EngineConfig", "MemoryJournal", "build_core", "load_engine_config", "orders_for_signal",
]
