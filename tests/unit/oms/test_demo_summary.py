"""The demo's DuckDB summary reads realized P&L the way docs/schema.md defines the
``positions`` rows: the newest row per account x instrument, whatever strategy caused it."""

from __future__ import annotations

from decimal import Decimal
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


def test_summary_fee_column_sums_fees_in_several_assets_at_their_quote_value(
        tmp_path: Path) -> None:
    """A buy pays its fee in the base asset, a sell in the quote asset: the column is the
    position's valued ``fees`` in the quote asset (it read "mixed")."""
    from rich.console import Console

    from oms_core.config import load_config
    from oms_core.demo import summary, write_demo_config

    cfg = load_config(write_demo_config(tmp_path / "cfg"), identity=False)
    inst = next(iter(cfg.instruments.values()))
    client = next(iter(cfg.clients.values()))
    base, quote = cfg.assets[inst.base], cfg.assets[inst.quote]
    db = str(tmp_path / "oms.duckdb")
    store = Store(db)
    con = store.con
    for seq, side, fee, asset in ((1, 1, 5, base.id), (3, 2, 7, quote.id)):
        con.execute("insert into orders (seq, order_id, account, instrument, side) "
                    "values (?, ?, ?, ?, ?)", [seq, seq, client.id, inst.id, side])
        con.execute("insert into executions (seq, order_id, quantity, fee, fee_asset) "
                    "values (?, ?, ?, ?, ?)", [seq + 1, seq, 10, fee, asset])
    valued = 123_456  # both fees in quote units, as the core books them
    con.execute("insert into positions (seq, account, strategy, instrument, realized_pnl, fees) "
                "values (5, ?, 1, ?, 0, ?)", [client.id, inst.id, valued])
    store.close()
    console = Console(record=True, width=200)
    summary(db, cfg, console)
    text = console.export_text()
    assert "mixed" not in text
    expected = f"{Decimal(valued).scaleb(-quote.precision):.4f} {inst.quote}"
    assert expected in text, text
