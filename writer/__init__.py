"""The writer process: engine events over ZeroMQ -> DuckDB, exactly once (docs/schema.md)."""

from writer.drain import Batcher, Writer, run
from writer.store import SPECS, TABLES, Store, StoreError, export_parquet

__all__ = ["SPECS", "TABLES", "Batcher", "Store", "StoreError", "Writer", "export_parquet",
           "run"]
