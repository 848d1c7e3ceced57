"""The demo's DuckDB summary reads realized P&L the way docs/schema.md defines the
``positions`` rows: the newest row per account x instrument, whatever strategy caused it."""

from __future__ import annotations

from pathlib import Path

from oms_core.demo import realized_pnl
from writer.store import Store


def test_realized_pnl_is_the_newest_row_per_account_and_instrument(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "oms.duckdb"))
    con = store.con
    rows = [  # (seq, account, strategy, instrument, realized_pnl)
        (1, 2, 1, 7, -100),
        (2, 2, 2, 7, -250),   # the same position, updated by a fill of strategy 2
        (3, 2, 1, 7, -400),   # and again by strategy 1: the newest is the position
        (4, 3, 1, 7, 55),
        (5, 2, 1, 8, 9),
    ]
    for seq, account, strategy, instrument, pnl in rows:
        con.execute("insert into positions (seq, account, strategy, instrument, realized_pnl) "
                    "values (?, ?, ?, ?, ?)", [seq, account, strategy, instrument, pnl])
    assert realized_pnl(con) == {(2, 7): -400, (3, 7): 55, (2, 8): 9}
    store.close()
