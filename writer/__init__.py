"""The writer process: engine events over ZeroMQ -> DuckDB, exactly once (docs/schema.md).

The public names load on first use (PEP 562), so that ``python -m writer`` installs its stop
signal handlers before the ~0.8 s of imports (duckdb, pyarrow) behind them.
"""

from __future__ import annotations

import importlib
from typing import Any

_SOURCES = {"Batcher": "drain", "Writer": "drain", "run": "drain", "SPECS": "store",
            "TABLES": "store", "Store": "store", "StoreError": "store",
            "export_parquet": "store"}

__all__ = ["SPECS", "TABLES", "Batcher", "Store", "StoreError", "Writer", "export_parquet",
           "run"]


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{source}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
