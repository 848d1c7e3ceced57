"""analytics.store over a database the real engine and writer produced (a short replay of
the small three-client configuration), checked against the raw tables."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from analytics_fixtures import SmallReplay
from replay_fixtures import (
    MIN,
    T0,
    TINY_TOML,
    bars_table,
    signals_table,
)

from analytics.metrics import equity_metrics, trade_metrics
from analytics.store import (
    Filters,
    Reference,
    equity_curves,
    execution_quality,
    open_db,
    reject_counts,
    round_trips,
)
from oms_core.config import parse_config
from oms_core.enums import Reject
from replay import run_replay

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def replayed(small_replay: SmallReplay) -> tuple[str, Reference]:
    return small_replay.db, Reference.from_config(small_replay.cfg)


def test_round_trips_sum_to_the_raw_realized_pnl(replayed: tuple[str, Reference]) -> None:
    db, ref = replayed
    raw = duckdb.connect(db, read_only=True)
    n, raw_sum = raw.execute("SELECT count(*), sum(realized_pnl) FROM trades_closed").fetchone()
    raw.close()
    assert n > 20  # the replay closed trips to measure
    con = open_db(db)
    rt = round_trips(con, ref)
    assert len(rt) == n
    # every instrument quotes in USDT at 8 decimals: the exact sum is the raw sum / 10^8
    assert rt.total_pnl == Decimal(int(raw_sum)).scaleb(-8)
    assert set(rt.side.tolist()) <= {1, -1}  # every trip found its closing fill
    m = trade_metrics(rt.pnl, rt.side)
    assert m.count == n and m.long_count + m.short_count == n
    assert m.total_pnl == pytest.approx(float(rt.total_pnl))
    per_account = sum(round_trips(con, ref, Filters(account=a)).total_pnl for a in (0, 1, 2))
    assert per_account == rt.total_pnl


def test_equity_curves_end_at_the_realized_pnl(replayed: tuple[str, Reference]) -> None:
    db, ref = replayed
    con = open_db(db)
    curves = equity_curves(con, ref, starting_equity=100_000.0)
    assert curves
    for c in curves:
        trips = round_trips(con, ref, Filters(account=c.account, strategy=c.strategy))
        assert c.trades.sum() == len(trips)
        assert c.equity[-1] == pytest.approx(100_000.0 + float(trips.total_pnl), abs=1e-6)
        assert (c.end_ns - c.period_ns == 86_400_000_000_000).all()
        m = equity_metrics(*c.points())
        assert m.periods == len(c.pnl) and m.drawdown is not None


def test_execution_quality_and_rejects_match_the_raw_tables(
        replayed: tuple[str, Reference]) -> None:
    db, ref = replayed
    con = open_db(db)
    quality = execution_quality(con, ref)
    assert {q.exchange for q in quality} == {"sim"}
    assert {q.symbol for q in quality} == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
    raw_orders, raw_filled = con.execute(
        "SELECT count(*), sum(filled) FROM order_states").fetchone()
    assert sum(q.orders for q in quality) == raw_orders
    assert sum(q.filled_quantity for q in quality) == raw_filled
    for q in quality:
        assert 0.0 < q.fill_rate <= 1.0 and q.success_rate is not None
    raw_rejects = dict(con.execute(
        "SELECT code, count(*) FROM risk_rejects GROUP BY code").fetchall())
    assert raw_rejects  # the small configuration refuses repeated single entries
    risk = [r for r in reject_counts(con) if r.source == "risk"]
    assert {r.code: r.count for r in risk} == raw_rejects
    assert all(r.reason == Reject(r.code).name for r in risk)


@pytest.mark.parametrize("usdt_decimals", [8, 6])
def test_pnl_is_scaled_by_the_quote_assets_precision(tmp_path: Path, usdt_decimals: int) -> None:
    """The hand-checked trip of tests/integration/replay/test_replay.py: buy 0.01 BTC at
    100.01, sell at 100.98: 1.0098 - 1.0001 = 0.0097 USDT, stored as 970,000 units of 1e-8
    or 9,700 units of 1e-6, the same 0.0097 either way."""
    toml = TINY_TOML.replace("USDT = { precision = 8 }",
                             f"USDT = {{ precision = {usdt_decimals} }}")
    cfg = parse_config(toml, "tiny.toml")
    bars = bars_table([
        (T0, 0, 10_000, 10_000, 10_000, 10_000, 500),
        (T0 + MIN, 0, 10_000, 10_010, 9_995, 10_005, 500),
        (T0 + 2 * MIN, 0, 10_100, 10_100, 10_100, 10_100, 500),
    ])
    sigs = signals_table([(T0 + MIN, 1, 0, 1, 1), (T0 + 2 * MIN, 1, 0, 1, 0)])
    db = str(tmp_path / "tiny.duckdb")
    run_replay(cfg, bars, sigs, out=db)
    ref = Reference.from_config(cfg)
    assert ref.quote_decimals == {0: usdt_decimals}
    con = open_db(db)
    raw = con.execute("SELECT realized_pnl FROM trades_closed").fetchall()
    assert raw == [(97 * 10 ** (usdt_decimals - 4),)]
    rt = round_trips(con, ref)
    assert rt.total_pnl == Decimal("0.0097") and rt.pnl.tolist() == [0.0097]
    assert rt.side.tolist() == [1] and rt.client == ["alice"] and rt.strategy_name == ["s"]


def test_a_set_of_instruments_filters_like_each_one(replayed: tuple[str, Reference]) -> None:
    """``Filters.instruments`` (an exchange's instruments in ``oms report --exchange``)."""
    db, ref = replayed
    con = open_db(db)
    one = {i: round_trips(con, ref, Filters(instrument=i)).total_pnl for i in (0, 1, 2)}
    assert round_trips(con, ref, Filters(instruments=(0, 2))).total_pnl == one[0] + one[2]
    assert len(round_trips(con, ref, Filters(instruments=()))) == 0
    quality = execution_quality(con, ref, Filters(instruments=(1,)))
    assert [q.instrument for q in quality] == [1]
