"""Replay data: deterministic synthetic bars, Parquet round trip, exact CSV decimals, signals."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from replay.data import (
    BAR_SCHEMA,
    NS_PER_MINUTE,
    SIGNAL_SCHEMA,
    DataError,
    generate_minute_bars,
    load_bars,
    load_signals,
    write_bars,
)


def test_generator_is_deterministic_and_well_formed():
    a = generate_minute_bars(3, "2024-01-01", "2024-01-02", seed=42, tick=5)
    b = generate_minute_bars(3, "2024-01-01", "2024-01-02", seed=42, tick=5)
    c = generate_minute_bars(3, "2024-01-01", "2024-01-02", seed=43, tick=5)
    assert a.equals(b) and not a.equals(c)
    assert a.schema.remove_metadata() == BAR_SCHEMA and a.num_rows == 3 * 1440
    ts = a.column("ts").to_numpy()
    inst = a.column("instrument").to_numpy()
    assert ts[0] == 1704067200 * 10**9 and ts[-1] == ts[0] + 1439 * NS_PER_MINUTE
    assert np.all(np.diff(ts) >= 0) and list(inst[:6]) == [0, 1, 2, 0, 1, 2]
    o, h, lo, cl = (a.column(k).to_numpy() for k in ("open", "high", "low", "close"))
    assert np.all(lo > 0) and np.all(lo <= np.minimum(o, cl)) and np.all(h >= np.maximum(o, cl))
    assert all(np.all(x % 5 == 0) for x in (o, h, lo, cl))
    # each bar opens at the previous close of its instrument
    assert np.array_equal(o.reshape(-1, 3)[1:], cl.reshape(-1, 3)[:-1])
    assert list(o[:3]) == [10_000, 20_000, 30_000]


def test_parquet_round_trip(tmp_path):
    bars = generate_minute_bars(2, "2024-03-01T00:00", "2024-03-01T05:00", seed=1)
    path = write_bars(bars, tmp_path / "sub" / "bars.parquet")
    assert load_bars(path).equals(bars.replace_schema_metadata(None))
    assert not (tmp_path / "sub" / "bars.parquet.tmp").exists()


def test_csv_decimals_are_converted_exactly(tmp_path):
    p = tmp_path / "bars.csv"
    p.write_text("ts,symbol,open,high,low,close,volume\n"
                 "2024-01-01T00:01:00,ETHUSDT,2000.10,2001.00,1999.99,2000.5,1.25\n"
                 "2024-01-01T00:00:00,BTCUSDT,40000.01,40010,39990.5,40005.00,0.001\n")
    t = load_bars(p, price_precision=2, qty_precision=4,
                  instruments={"BTCUSDT": 0, "ETHUSDT": 1})
    rows = t.to_pylist()
    assert rows[0] == {"ts": 1704067200 * 10**9, "instrument": 0, "open": 4_000_001,
                       "high": 4_001_000, "low": 3_999_050, "close": 4_000_500, "volume": 10}
    assert rows[1]["instrument"] == 1 and rows[1]["close"] == 200_050
    assert rows[1]["volume"] == 12_500
    with pytest.raises(DataError, match="not exact decimals at precision 1"):
        load_bars(p, price_precision=1, qty_precision=4,
                  instruments={"BTCUSDT": 0, "ETHUSDT": 1})
    with pytest.raises(DataError, match=r"unknown \['ETHUSDT'\]"):
        load_bars(p, price_precision=2, qty_precision=4, instruments={"BTCUSDT": 0})


def test_bad_bar_files_are_refused(tmp_path):
    f = tmp_path / "float.parquet"
    pq.write_table(pa.table({"ts": [1], "instrument": [0], "open": [1.5], "high": [2.0],
                             "low": [1.0], "close": [1.5]}), f)
    with pytest.raises(DataError, match="'open' is float"):
        load_bars(f)
    g = tmp_path / "inverted.parquet"
    pq.write_table(pa.table({"ts": [1], "instrument": [0], "open": [5], "high": [4],
                             "low": [6], "close": [5]}), g)
    with pytest.raises(DataError, match="outside"):
        load_bars(g)
    h = tmp_path / "nocol.parquet"
    pq.write_table(pa.table({"ts": [1], "instrument": [0]}), h)
    with pytest.raises(DataError, match="column 'open' missing"):
        load_bars(h)
    with pytest.raises(DataError, match="no such file"):
        load_bars(tmp_path / "none.parquet")


def test_signals_from_csv_with_names_and_kinds(tmp_path):
    p = tmp_path / "signals.csv"
    p.write_text("ts,strategy,symbol,kind,value\n"
                 "300,trend,BTCUSDT,direction,1\n"
                 "100,breakout,ETHUSDT,target_qty,-2500\n"
                 "300,trend,ETHUSDT,target_weight,250000\n"
                 "200,trend,BTCUSDT,direction,0\n")
    s = load_signals(p, strategies={"trend": 1, "breakout": 2},
                     instruments={"BTCUSDT": 0, "ETHUSDT": 1})
    assert s.schema == SIGNAL_SCHEMA
    assert s.to_pydict() == {"ts": [100, 200, 300, 300], "strategy": [2, 1, 1, 1],
                             "instrument": [1, 0, 0, 1], "kind": [2, 1, 1, 3],
                             "value": [-2500, 0, 1, 250000]}
    q = tmp_path / "bad.csv"
    q.write_text("ts,strategy,instrument,value\n1,1,0,2\n")
    with pytest.raises(DataError, match="direction signals must be -1, 0 or 1"):
        load_signals(q)
