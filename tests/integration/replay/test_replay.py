"""Replay mode: a hand-checked scenario, the venue's fills, determinism (bit for bit)."""

from __future__ import annotations

import duckdb
import pyarrow.parquet as pq
import pytest
from replay_fixtures import (
    MIN,
    T0,
    bars_table,
    signals_table,
    small_config,
    small_market,
    tiny_config,
    write_csv,
)

from bindings.wire import records as wire
from bindings.wire.spec import ExecType
from oms_core.enums import OrderType, Side, TimeInForce
from replay import BarVenue, run_replay
from replay.cli import main

pytestmark = pytest.mark.timeout(60)


def _tiny_data():
    bars = bars_table([
        (T0, 0, 10_000, 10_000, 10_000, 10_000, 500),
        (T0 + MIN, 0, 10_000, 10_010, 9_995, 10_005, 500),
        (T0 + 2 * MIN, 0, 10_100, 10_100, 10_100, 10_100, 500),
    ])
    sigs = signals_table([(T0 + MIN, 1, 0, 1, 1), (T0 + 2 * MIN, 1, 0, 1, 0)])
    return bars, sigs


def test_hand_checked_round_trip(tmp_path):
    """Buy 0.01 BTC at the open of bar 1, flatten at the open of bar 2.

    The venue quotes a half spread of 1 bp rounded up to the tick: at 100.00 the ask is
    100.01, at 101.00 the bid is 101.00 - 0.02 = 100.98. Taker fee 5 bp in the asset
    received: the buy pays 0.01 BTC x 5 bp = 0.000005 BTC (500 units of 1e-8), the sell pays
    1.0098 USDT x 5 bp = 0.0005049 USDT (50,490 units). Realized: 1.0098 - 1.0001 = 0.0097
    USDT = 970,000 units. Fees count at their quote value: the buy's 0.000005 BTC at its fill
    price 100.01 is 0.00050005 USDT (50,005 units), so fees are 50,490 + 50,005 = 100,495.
    """
    cfg = tiny_config()
    bars, sigs = _tiny_data()
    db = tmp_path / "r.duckdb"
    res = run_replay(cfg, bars, sigs, out=str(db), record_fills=True)
    assert res.signals == 2 and res.rejects == 0
    # (account, strategy, instrument, side, qty, price, fee, fee asset, liquidity)
    assert res.fills_list == [
        (0, 1, 0, int(Side.BUY), 10, 10_001, 500, 1, 2),
        (0, 1, 0, int(Side.SELL), 10, 10_098, 50_490, 0, 2),
    ]
    assert res.positions == [{"account": 0, "instrument": 0, "qty": 0, "cost": 0,
                              "realized": 970_000, "fees": 100_495, "unrealized": 0}]
    con = duckdb.connect(str(db), read_only=True)
    try:
        fills = con.execute("SELECT side, quantity, price, fee, fee_asset, event_ns FROM "
                            "executions ORDER BY seq").fetchall()
        assert fills == [(1, 10, 10_001, 500, 1, T0 + MIN), (2, 10, 10_098, 50_490, 0,
                                                             T0 + 2 * MIN)]
        # the clock is the data: no wall-clock time anywhere in what was stored
        for table in ("orders", "executions", "positions", "acks"):
            lo, hi = con.execute(f"SELECT min(send_ns), max(send_ns) FROM {table}").fetchone()
            assert T0 <= lo <= hi < T0 + 3 * MIN, table
        assert con.execute("SELECT qty, realized, fees FROM replay_summary").fetchall() == [
            (0, 970_000, 100_495)]
        last = con.execute("SELECT quantity, realized_pnl FROM positions ORDER BY seq DESC "
                           "LIMIT 1").fetchone()
        assert last == (0, 970_000)
    finally:
        con.close()


def test_venue_fills_a_resting_limit_when_the_path_crosses_it():
    cfg = tiny_config()
    v = BarVenue(cfg)
    v.quote(0, 10_000, 100)
    v.on_engine(wire.decode(wire.encode(
        "GW_NEW_ORDER", order_id=77, price=9_990, quantity=50, account=0, instrument=0,
        side=int(Side.BUY), order_type=int(OrderType.LIMIT), tif=int(TimeInForce.GTC))))
    first = wire.decode_frame(v.take_reports())
    assert [r.exec_type for r in first] == [int(ExecType.ACK)]
    assert v.user_open[0] == 1
    v.quote(0, 9_995, 100)  # ask 99.96: above the bid at 99.90, nothing trades
    assert v.take_reports() == b""
    v.quote(0, 9_995, 30)  # smaller levels: still nothing
    assert v.take_reports() == b""
    v.quote(0, 9_989, 30)  # asks 99.90, 99.91, ...: the first crosses, 30 of 50 trade
    fills = wire.decode_frame(v.take_reports())
    assert [(f.exec_type, f.last_qty, f.last_price, f.liquidity) for f in fills] == [
        (int(ExecType.FILL), 30, 9_990, 1)]
    # at the bid's price, as maker: fee 2 bp of 0.03 BTC in BTC = 0.000006 BTC = 600 units
    assert fills[0].fee == 600 and fills[0].fee_asset == 1 and fills[0].leaves_qty == 20
    v.quote(0, 9_980, 30)  # asks from 99.81: the rest trades, still at 99.90
    rest = wire.decode_frame(v.take_reports())
    assert [(f.last_qty, f.last_price, f.cum_qty, f.leaves_qty) for f in rest] == [
        (20, 9_990, 50, 0)]
    assert v.user_open[0] == 0


def _tables(db: str) -> dict[str, list[tuple]]:
    con = duckdb.connect(db, read_only=True)
    try:
        names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                           "ORDER BY 1").fetchall()]
        out = {}
        for n in names:
            cols = [r[0] for r in con.execute(f"DESCRIBE {n}").fetchall()]
            if n == "writer_state":
                out[n] = con.execute("SELECT last_seq FROM writer_state").fetchall()
                continue
            order = "seq" if "seq" in cols else ", ".join(cols)
            out[n] = con.execute(f"SELECT * FROM {n} ORDER BY {order}").fetchall()
        return out
    finally:
        con.close()


def test_determinism_bit_for_bit(tmp_path):
    """Two runs of the command on the same files give the same database, row for row, and the
    same digest of every event record; an in-process run gives the same digest."""
    cfg_path = tmp_path / "small.toml"
    from replay_fixtures import SMALL_TOML
    cfg_path.write_text(SMALL_TOML)
    bars, sigs = small_market(hours=4)
    pq.write_table(bars, tmp_path / "bars.parquet")
    write_csv(tmp_path / "signals.csv", sigs)
    dbs = []
    for k in range(2):
        db = str(tmp_path / f"run{k}.duckdb")
        assert main(["--config", str(cfg_path), "--bars", str(tmp_path / "bars.parquet"),
                     "--signals", str(tmp_path / "signals.csv"), "--out", db,
                     "--quiet"]) == 0
        dbs.append(_tables(db))
    a, b = dbs
    assert a == b
    assert len(a["executions"]) > 20 and len(a["orders"]) > 20 and len(a["positions"]) > 20
    digest = a["replay_run"][0][-1]
    res = run_replay(small_config(), bars, sigs)
    assert res.digest == digest
    assert res.fills == len(a["executions"])


def test_refuses_to_overwrite_and_bad_input(tmp_path, capsys):
    cfg_path = tmp_path / "tiny.toml"
    from replay_fixtures import TINY_TOML
    cfg_path.write_text(TINY_TOML)
    bars, sigs = _tiny_data()
    pq.write_table(bars, tmp_path / "bars.parquet")
    db = tmp_path / "x.duckdb"
    db.write_bytes(b"")
    assert main(["--config", str(cfg_path), "--bars", str(tmp_path / "bars.parquet"),
                 "--out", str(db), "--quiet"]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["--config", str(cfg_path), "--bars", str(tmp_path / "none.parquet"),
                 "--quiet"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_csv_with_symbols_and_decimal_prices_at_each_instruments_precision(tmp_path, capsys):
    """What a user exports from elsewhere: a CSV of bars by symbol with decimal prices (BTC at
    2 decimals, SOL at 3), signals by names with a decimal target quantity; `oms replay` on
    the example configuration reads them without being told any precision."""
    from pathlib import Path

    import duckdb

    example = Path(__file__).resolve().parents[3] / "examples" / "oms.toml"
    cfg_path = tmp_path / "oms.toml"
    cfg_path.write_text(example.read_text())
    rows = ["ts,symbol,open,high,low,close,volume"]
    for k in range(30):
        t = f"2026-01-05T00:{k:02d}:00"
        btc = f"{50000 + 10 * (k % 3)}.{k % 100:02d}"
        sol = f"150.{100 + k:03d}"
        rows.append(f"{t},BTCUSDT,{btc},{btc},{btc},{btc},1.5")
        rows.append(f"{t},SOLUSDT,{sol},{sol},{sol},{sol},12.25")
    (tmp_path / "bars.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "signals.csv").write_text(
        "ts,strategy,symbol,kind,value\n"
        "2026-01-05T00:05:00,trend,BTCUSDT,target_qty,0.0125\n"
        "2026-01-05T00:10:00,breakout,SOLUSDT,direction,1\n")
    db = str(tmp_path / "out.duckdb")
    assert main(["--config", str(cfg_path), "--bars", str(tmp_path / "bars.csv"),
                 "--signals", str(tmp_path / "signals.csv"), "--out", db, "--quiet"]) == 0, (
        capsys.readouterr().err)
    con = duckdb.connect(db, read_only=True)
    bars, signals = con.execute("SELECT bars, signals FROM replay_run").fetchone()
    assert (bars, signals) == (60, 2)
    # bob's target quantity arrived exactly: 0.0125 BTC at qty precision 4 = 125 raw
    qtys = [r[0] for r in con.execute("SELECT quantity FROM orders").fetchall()]
    assert 125 in qtys
    # a decimal with more places than the instrument's precision is refused, not rounded
    (tmp_path / "bad.csv").write_text(rows[0] + "\n2026-01-05T00:00:00,SOLUSDT,150.1234,"
                                      "150.1234,150.1234,150.1234,1\n")
    assert main(["--config", str(cfg_path), "--bars", str(tmp_path / "bad.csv"),
                 "--quiet"]) == 2
    assert "not exact decimals at precision 3" in capsys.readouterr().err
