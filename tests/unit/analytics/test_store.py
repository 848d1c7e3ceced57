"""analytics.store over a small database written by the writer's own Store from hand-made
records: every number below is derived from the records in the comments."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from analytics.metrics import equity_metrics
from analytics.store import (
    Filters,
    Reference,
    equity_curves,
    exchange_quality,
    execution_quality,
    open_db,
    reject_counts,
    round_trips,
)
from bindings.wire import records as wire
from bindings.wire.spec import MsgType
from oms_core.enums import ExitReason, OrderStatus, Reject, Side
from writer.store import Store

DAY = 86_400_000_000_000
T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z
# instrument 0 quotes in an asset of 8 decimals, instrument 1 in one of 2
REF = Reference(quote_decimals={0: 8, 1: 2}, symbols={0: "BTCUSDT", 1: "ETHEUR"},
                exchanges={0: "binance", 1: "kraken"}, accounts={0: "alice", 1: "bob"},
                strategies={1: "trend"})


def _rows(msg_type: int, rows: list[dict[str, int]]) -> np.ndarray:
    arr = np.zeros(len(rows), dtype=wire.CODECS_BY_TYPE[msg_type].dtype)
    for k, row in enumerate(rows):
        for name, value in row.items():
            arr[name][k] = value
    return arr


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "hand.duckdb")
    # each trip's closing fill: the FILL record just before it, at the same engine time
    fills = _rows(MsgType.FILL, [
        dict(seq=1, account=0, strategy=1, instrument=0, side=Side.SELL, event_ns=T0 + 10),
        dict(seq=3, account=0, strategy=1, instrument=0, side=Side.BUY,
             event_ns=T0 + 2 * DAY + 10),
        dict(seq=5, account=1, strategy=2, instrument=1, side=Side.SELL, event_ns=T0 + 20),
        # a later fill of account 1 that closes nothing
        dict(seq=16, account=1, strategy=2, instrument=1, side=Side.BUY, event_ns=T0 + 30),
    ])
    trips = _rows(MsgType.TRADE_CLOSED, [
        # 150,000,000 units of 1e-8 = 1.5, closed by a sell: long
        dict(seq=2, account=0, strategy=1, instrument=0, realized_pnl=150_000_000,
             event_ns=T0 + 10, exit_reason=ExitReason.TAKE_PROFIT),
        # -0.5 two days later (nothing on day 1), closed by a buy: short
        dict(seq=4, account=0, strategy=1, instrument=0, realized_pnl=-50_000_000,
             event_ns=T0 + 2 * DAY + 10, exit_reason=ExitReason.STOP_LOSS),
        # 1,234 units of 1e-2 = 12.34
        dict(seq=6, account=1, strategy=2, instrument=1, realized_pnl=1234,
             event_ns=T0 + 20, exit_reason=ExitReason.ORDER),
        # closed by reconciliation, no fill of its own: the fill of seq 16 is not its side
        dict(seq=17, account=1, strategy=2, instrument=1, realized_pnl=-34,
             event_ns=T0 + 40, exit_reason=ExitReason.RECONCILIATION),
    ])
    st = OrderStatus
    orders = _rows(MsgType.ORDER_UPDATE, [
        # order 1 (instrument 0): 10 ordered, 10 filled
        dict(seq=7, order_id=1, instrument=0, quantity=10, status=st.NEW, event_ns=T0),
        dict(seq=8, order_id=1, instrument=0, quantity=10, filled=10, status=st.FILLED,
             event_ns=T0),
        # order 2 (instrument 0): 10 ordered, 4 filled, the rest canceled
        dict(seq=9, order_id=2, instrument=0, quantity=10, status=st.NEW, event_ns=T0),
        dict(seq=10, order_id=2, instrument=0, quantity=10, filled=4,
             status=st.PARTIALLY_FILLED, event_ns=T0),
        dict(seq=11, order_id=2, instrument=0, quantity=10, filled=4, status=st.CANCELED,
             event_ns=T0),
        # order 3 (instrument 1, account 1): refused by the venue
        dict(seq=12, order_id=3, account=1, instrument=1, quantity=5, status=st.REJECTED,
             reason=Reject.VENUE_REJECTED, venue_code=-2010, event_ns=T0),
    ])
    rejects = _rows(MsgType.REJECT, [
        dict(seq=13, account=0, code=Reject.MAX_POSITION, reject_ns=T0),
        dict(seq=14, account=0, code=Reject.MAX_POSITION, reject_ns=T0),
        dict(seq=15, account=1, code=Reject.SINGLE_ENTRY, reject_ns=T0),
    ])
    store = Store(path)
    try:
        store.commit_batch({MsgType.FILL: fills, MsgType.TRADE_CLOSED: trips,
                            MsgType.ORDER_UPDATE: orders, MsgType.REJECT: rejects}, 17)
    finally:
        store.close()
    return path


def test_round_trips_in_exact_decimals_with_side_and_reason(db: str) -> None:
    con = open_db(db)
    rt = round_trips(con, REF)
    assert rt.pnl.tolist() == [1.5, -0.5, 12.34, -0.34]
    assert rt.total_pnl == Decimal("13.00")  # exact: 1.5 - 0.5 + 12.34 - 0.34
    assert rt.side.tolist() == [1, -1, 1, 0]
    assert rt.exit_reason == ["TAKE_PROFIT", "STOP_LOSS", "ORDER", "RECONCILIATION"]
    assert rt.symbol == ["BTCUSDT", "BTCUSDT", "ETHEUR", "ETHEUR"]
    assert rt.client == ["alice", "alice", "bob", "bob"]
    assert rt.strategy_name == ["trend", "trend", "2", "2"]  # no name given: the id
    one = round_trips(con, REF, Filters(account=0, start_ns=T0 + DAY))
    assert one.seq.tolist() == [4] and one.total_pnl == Decimal("-0.5")
    assert len(round_trips(con, REF, Filters(strategy=9))) == 0


def test_a_database_instrument_missing_from_the_reference_is_an_error(db: str) -> None:
    with pytest.raises(ValueError, match=r"instruments \[1\]"):
        round_trips(open_db(db), Reference(quote_decimals={0: 8}))


def test_equity_curve_per_day_with_the_empty_day(db: str) -> None:
    curves = equity_curves(open_db(db), REF, starting_equity=100.0)
    assert [(c.client, c.strategy_name) for c in curves] == [("alice", "trend"), ("bob", "2")]
    c = curves[0]
    # day 0: +1.5, day 1: no trip, day 2: -0.5
    assert c.period_ns.tolist() == [T0, T0 + DAY, T0 + 2 * DAY]
    assert c.end_ns.tolist() == [T0 + DAY, T0 + 2 * DAY, T0 + 3 * DAY]
    assert c.pnl.tolist() == [1.5, 0.0, -0.5] and c.trades.tolist() == [1, 0, 1]
    assert c.equity.tolist() == [101.5, 101.5, 101.0]
    ts, eq = c.points()
    assert ts.tolist() == [T0, T0 + DAY, T0 + 2 * DAY, T0 + 3 * DAY]
    assert eq.tolist() == [100.0, 101.5, 101.5, 101.0]
    m = equity_metrics(ts, eq)
    assert m.total_return == pytest.approx(0.01)
    assert m.drawdown.absolute == pytest.approx(0.5) and m.drawdown.recovery_ns is None
    week = equity_curves(open_db(db), REF, Filters(account=0), period="week")
    assert len(week) == 1 and week[0].pnl.tolist() == [1.0]  # 2024-01-01 is a Monday


def test_execution_quality_per_instrument_and_exchange(db: str) -> None:
    q = {e.symbol: e for e in execution_quality(open_db(db), REF)}
    btc, eth = q["BTCUSDT"], q["ETHEUR"]
    assert (btc.exchange, btc.orders, btc.canceled_orders) == ("binance", 2, 1)
    assert (btc.ordered_quantity, btc.filled_quantity) == (20, 14)
    assert btc.fill_rate == 0.7  # 14 / 20
    assert btc.orders_filled_rate == 1.0  # both had a fill
    assert btc.success_rate == 1.0 and btc.cancel_ratio == 0.5
    assert (eth.exchange, eth.orders, eth.rejected_orders) == ("kraken", 1, 1)
    assert eth.fill_rate == 0.0 and eth.success_rate == 0.0 and eth.cancel_ratio == 0.0
    assert [e.symbol for e in execution_quality(open_db(db), REF, Filters(account=1))] == [
        "ETHEUR"]
    both = REF.exchanges | {1: "binance"}  # both instruments on one venue
    ref = Reference(REF.quote_decimals, REF.symbols, both)
    (venue,) = exchange_quality(execution_quality(open_db(db), ref))
    # 3 orders: 2 with a fill, 1 canceled, 1 rejected
    assert (venue.exchange, venue.orders, venue.filled_orders) == ("binance", 3, 2)
    assert venue.orders_filled_rate == pytest.approx(2 / 3)
    assert venue.success_rate == pytest.approx(2 / 3)
    assert venue.cancel_ratio == pytest.approx(1 / 3)
    assert [v.exchange for v in exchange_quality(execution_quality(open_db(db), REF))] == [
        "binance", "kraken"]


def test_reject_counts_carry_the_reason_text(db: str) -> None:
    got = [(r.source, r.code, r.reason, r.venue_code, r.count)
           for r in reject_counts(open_db(db))]
    assert got == [("risk", 47, "MAX_POSITION", 0, 2), ("risk", 46, "SINGLE_ENTRY", 0, 1),
                   ("venue", 74, "VENUE_REJECTED", -2010, 1)]
    assert [(r.reason, r.count) for r in reject_counts(open_db(db), Filters(account=1))] == [
        ("SINGLE_ENTRY", 1), ("VENUE_REJECTED", 1)]


def test_the_connection_is_read_only(db: str) -> None:
    import duckdb

    with pytest.raises(duckdb.Error):
        open_db(db).execute("DELETE FROM trades_closed")
