"""A database made before a record gained a field (ORDER_UPDATE.hold) takes the new rows."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np

from bindings.wire import records as wire
from bindings.wire.spec import MsgType
from oms_core.enums import Hold
from writer.store import SPECS, Store, _col_sql


def test_an_orders_table_without_hold_gets_the_column_and_the_rows(tmp_path: Path) -> None:
    """Made before ``venue_code`` (a field in the middle of the record) and ``hold`` (one at
    its end): the added columns come last, and each value lands in its own column."""
    path = str(tmp_path / "old.duckdb")
    spec = SPECS[MsgType.ORDER_UPDATE]
    old_cols = [c for c in spec.columns if c not in ("hold", "venue_code")]
    con = duckdb.connect(path)
    con.execute(f'CREATE TABLE orders ({", ".join(_col_sql(spec.dtype, c) for c in old_cols)})')
    con.close()
    store = Store(path)
    try:
        rec = np.zeros(1, dtype=wire.CODECS_BY_TYPE[MsgType.ORDER_UPDATE].dtype)
        rec["order_id"], rec["status"], rec["hold"] = 7, 1, Hold.FIRED
        rec["venue_code"], rec["reason"] = -2010, 74
        assert store.commit_batch({MsgType.ORDER_UPDATE: rec}, 1) == 1
        assert store.con.execute(
            "SELECT order_id, status, hold, venue_code, reason FROM orders").fetchall() == [
            (7, 1, int(Hold.FIRED), -2010, 74)]
    finally:
        store.close()
