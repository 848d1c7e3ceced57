"""Read the writer's DuckDB file: round trips, equity per period, execution quality.

The connection is read-only (DuckDB allows one writer per file: read a stopped writer's file
or a copy). Aggregation happens in SQL; Python receives one row per trade, per period or per
group. Raw fixed-point P&L becomes an exact DECIMAL in SQL: ``realized_pnl`` counts units of
10^-d of the instrument's quote asset, d = that asset's ``precision`` in the configuration
(the ledger values a fill at price x quantity x 10^(d - price_precision - qty_precision),
oms_core/core.pyx ``add_instrument``). The database holds no precisions yet, so they come
from a :class:`Reference` (``Reference.from_config``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import duckdb
import numpy as np
import pyarrow as pa

from oms_core.config import OmsConfig
from oms_core.enums import ExitReason, OrderStatus, Side
from writer.store import connect

# DECIMAL(38, 18) holds any int64 count at up to 18 decimals exactly (19 integer digits)
_SCALE = 18
_DECIMAL = f"DECIMAL(38, {_SCALE})"
PERIODS = ("day", "week", "month")


@dataclass(frozen=True, slots=True)
class Reference:
    """What the database does not hold yet: per instrument id its symbol, exchange and the
    decimals of its quote asset; names of accounts and strategies by id."""

    quote_decimals: Mapping[int, int]
    symbols: Mapping[int, str] = field(default_factory=dict)
    exchanges: Mapping[int, str] = field(default_factory=dict)
    accounts: Mapping[int, str] = field(default_factory=dict)
    strategies: Mapping[int, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: OmsConfig) -> Reference:
        """The reference of the configuration the engine ran with (same ids)."""
        insts = cfg.instruments.values()
        return cls(
            quote_decimals={i.id: cfg.assets[i.quote].precision for i in insts},
            symbols={i.id: i.symbol for i in insts},
            exchanges={i.id: i.exchange for i in insts},
            accounts={v: k for k, v in cfg.ids.accounts.items()},
            strategies={v: k for k, v in cfg.ids.strategies.items()})

    def arrow(self) -> pa.Table:
        """One row per instrument: id, symbol, exchange, unit (10^-decimals, exact)."""
        ids = sorted(self.quote_decimals)
        for i in ids:
            if not 0 <= self.quote_decimals[i] <= _SCALE:
                raise ValueError(f"instrument {i}: quote decimals outside 0..{_SCALE}")
        return pa.table({
            "instrument": pa.array(ids, pa.uint32()),
            "symbol": pa.array([self.symbols.get(i, str(i)) for i in ids], pa.string()),
            "exchange": pa.array([self.exchanges.get(i, "") for i in ids], pa.string()),
            "unit": pa.array([Decimal(1).scaleb(-self.quote_decimals[i]) for i in ids],
                             pa.decimal128(38, _SCALE)),
        })


@dataclass(frozen=True, slots=True)
class Filters:
    """Rows of one client (account id), strategy, instrument and time range [start, end).
    ``instruments`` narrows to a set of ids (e.g. every instrument of one exchange)."""

    account: int | None = None
    strategy: int | None = None
    instrument: int | None = None
    start_ns: int | None = None
    end_ns: int | None = None
    instruments: tuple[int, ...] | None = None

    def where(self, alias: str, time_column: str = "event_ns",
              columns: tuple[str, ...] = ("account", "strategy", "instrument")
              ) -> tuple[str, list[int]]:
        """A SQL condition on ``alias`` and its parameters (only the ``columns`` it has)."""
        terms, params = ["TRUE"], []
        for name in columns:
            value = getattr(self, name)
            if value is not None:
                terms.append(f"{alias}.{name} = ?")
                params.append(value)
        if self.instruments is not None and "instrument" in columns:
            if not self.instruments:
                terms.append("FALSE")
            else:
                terms.append(f"{alias}.instrument IN ({', '.join('?' * len(self.instruments))})")
                params.extend(self.instruments)
        if self.start_ns is not None:
            terms.append(f"{alias}.{time_column} >= ?")
            params.append(self.start_ns)
        if self.end_ns is not None:
            terms.append(f"{alias}.{time_column} < ?")
            params.append(self.end_ns)
        return " AND ".join(terms), params


def open_db(path: str) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the writer's database (StoreError when it cannot open)."""
    return connect(path, read_only=True)


def _with_reference(con: duckdb.DuckDBPyConnection, ref: Reference) -> None:
    """The reference as views of this connection (Arrow, nothing written to the file)."""
    con.register("_instruments", ref.arrow())
    for view, names in (("_accounts", ref.accounts), ("_strategies", ref.strategies)):
        ids = sorted(names)
        con.register(view, pa.table({"id": pa.array(ids, pa.uint32()),
                                     "name": pa.array([names[i] for i in ids], pa.string())}))


# ---------------------------------------------------------------------------------- round trips
@dataclass(frozen=True, slots=True)
class RoundTrips:
    """One row per closed round trip, in event order. ``pnl`` is float for the metrics;
    ``total_pnl`` the exact sum. ``side`` is +1 long / -1 short, derived from the closing fill:
    the engine publishes a fill's FILL record, then the TRADE_CLOSED it caused, both stamped
    with the fill's engine time, so the closing fill is the last execution of the account and
    instrument with the same ``event_ns`` and a smaller ``seq``. A trip is long when it closes
    with a sell; 0 when no such fill is stored."""

    seq: np.ndarray
    exit_ns: np.ndarray
    account: np.ndarray
    strategy: np.ndarray
    instrument: np.ndarray
    client: list[str]
    strategy_name: list[str]
    symbol: list[str]
    side: np.ndarray
    exit_reason: list[str]
    pnl: np.ndarray
    total_pnl: Decimal

    def __len__(self) -> int:
        return len(self.seq)


def _exit_reasons_sql() -> str:
    rows = ", ".join(f"({int(r)}::UTINYINT, '{r.name}')" for r in ExitReason)
    return f"(VALUES {rows}) AS x(code, name)"


def round_trips(con: duckdb.DuckDBPyConnection, ref: Reference,
                filters: Filters = Filters()) -> RoundTrips:
    """Closed round trips from ``trades_closed`` with P&L in quote currency units."""
    _with_reference(con, ref)
    _check_known_instruments(con, filters, "trades_closed")
    cond, params = filters.where("t")
    rows = con.sql(f"""
        SELECT t.seq, t.event_ns, t.account, t.strategy, t.instrument,
               coalesce(a.name, t.account::VARCHAR) AS client,
               coalesce(s.name, t.strategy::VARCHAR) AS strategy_name, i.symbol,
               CASE e.side WHEN {int(Side.SELL)} THEN 1 WHEN {int(Side.BUY)} THEN -1
                           ELSE 0 END AS side,
               coalesce(x.name, t.exit_reason::VARCHAR) AS exit_reason,
               t.realized_pnl::DECIMAL(38, 0) * i.unit AS pnl
        FROM trades_closed t
        JOIN _instruments i ON i.instrument = t.instrument
        ASOF LEFT JOIN executions e ON e.account = t.account
             AND e.instrument = t.instrument AND e.event_ns = t.event_ns AND e.seq < t.seq
        LEFT JOIN {_exit_reasons_sql()} ON x.code = t.exit_reason
        LEFT JOIN _accounts a ON a.id = t.account
        LEFT JOIN _strategies s ON s.id = t.strategy
        WHERE {cond} ORDER BY t.seq""", params=params).to_arrow_table()
    total = con.execute(f"""
        SELECT coalesce(sum(t.realized_pnl::DECIMAL(38, 0) * i.unit), 0)
        FROM trades_closed t JOIN _instruments i ON i.instrument = t.instrument
        WHERE {cond}""", params).fetchall()[0][0]  # fetchall: a fetchone leaves the result open
    return RoundTrips(
        seq=rows["seq"].to_numpy(), exit_ns=rows["event_ns"].to_numpy(),
        account=rows["account"].to_numpy(), strategy=rows["strategy"].to_numpy(),
        instrument=rows["instrument"].to_numpy(), client=rows["client"].to_pylist(),
        strategy_name=rows["strategy_name"].to_pylist(), symbol=rows["symbol"].to_pylist(),
        side=rows["side"].to_numpy().astype(np.int8), exit_reason=rows["exit_reason"].to_pylist(),
        pnl=rows["pnl"].cast(pa.float64()).to_numpy(), total_pnl=Decimal(total))


def _check_known_instruments(con: duckdb.DuckDBPyConnection, filters: Filters,
                             table: str) -> None:
    """A row of an instrument the reference lacks would drop out of every sum silently."""
    cond, params = filters.where("t")
    missing = con.execute(
        f"SELECT DISTINCT t.instrument FROM {table} t WHERE {cond} AND t.instrument NOT IN "
        "(SELECT instrument FROM _instruments)", params).fetchall()
    if missing:
        raise ValueError(f"instruments {sorted(r[0] for r in missing)} of {table} are not in "
                         "the reference (wrong configuration for this database?)")


# --------------------------------------------------------------------------------- equity curve
@dataclass(frozen=True, slots=True)
class EquityCurve:
    """Realized P&L per period of one account and strategy: ``period_ns`` is the start of each
    period (UTC) from its first closed trip to its last (a period without one at 0 P&L),
    ``end_ns`` its end, ``equity`` = starting equity + cumulative P&L at that end."""

    account: int
    strategy: int
    client: str
    strategy_name: str
    starting_equity: float
    period_ns: np.ndarray
    end_ns: np.ndarray
    pnl: np.ndarray
    equity: np.ndarray
    trades: np.ndarray

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """(timestamps, equity) with the starting equity at the start of the first period:
        the series :func:`analytics.metrics.equity_metrics` takes."""
        ts = np.concatenate([self.period_ns[:1], self.end_ns])
        return ts, np.concatenate([[self.starting_equity], self.equity])


def equity_curves(con: duckdb.DuckDBPyConnection, ref: Reference, filters: Filters = Filters(),
                  period: str = "day", starting_equity: float = 0.0) -> list[EquityCurve]:
    """Equity curves per (account, strategy) from the cumulative realized P&L of
    ``trades_closed``, summed per ``period`` (day, week, month) in SQL.

    Instruments of different quote assets add up as numbers: filter one quote asset (or one
    instrument) when they differ.
    """
    if period not in PERIODS:
        raise ValueError(f"period must be one of {PERIODS}")
    _with_reference(con, ref)
    _check_known_instruments(con, filters, "trades_closed")
    cond, params = filters.where("t")
    rows = con.sql(f"""
        WITH per AS (
            SELECT t.account, t.strategy,
                   date_trunc('{period}', make_timestamp(t.event_ns // 1000)) AS period,
                   sum(t.realized_pnl::DECIMAL(38, 0) * i.unit) AS pnl, count(*) AS trades
            FROM trades_closed t JOIN _instruments i ON i.instrument = t.instrument
            WHERE {cond} GROUP BY ALL),
        -- every period from the first to the last, those without a closed trip at 0 P&L
        span AS (
            SELECT account, strategy, min(period) AS lo, max(period) AS hi
            FROM per GROUP BY ALL),
        grid AS (
            SELECT account, strategy,
                   unnest(range(lo, hi + INTERVAL 1 {period}, INTERVAL 1 {period})) AS period
            FROM span),
        filled AS (
            SELECT g.account, g.strategy, g.period, coalesce(p.pnl, 0) AS pnl,
                   coalesce(p.trades, 0) AS trades
            FROM grid g LEFT JOIN per p USING (account, strategy, period))
        SELECT account, strategy, epoch_ns(period) AS period_ns,
               epoch_ns(period + INTERVAL 1 {period}) AS end_ns, pnl::DOUBLE AS pnl,
               sum(pnl) OVER (PARTITION BY account, strategy ORDER BY period)::DOUBLE AS cum,
               trades
        FROM filled ORDER BY account, strategy, period""", params=params).to_arrow_table()
    curves = []
    acc, strat = rows["account"].to_numpy(), rows["strategy"].to_numpy()
    for a, s in sorted(set(zip(acc.tolist(), strat.tolist(), strict=True))):
        m = (acc == a) & (strat == s)
        curves.append(EquityCurve(
            a, s, ref.accounts.get(a, str(a)), ref.strategies.get(s, str(s)), starting_equity,
            rows["period_ns"].to_numpy()[m],
            rows["end_ns"].to_numpy()[m], rows["pnl"].to_numpy()[m],
            starting_equity + rows["cum"].to_numpy()[m], rows["trades"].to_numpy()[m]))
    return curves


# ----------------------------------------------------------------------------- execution quality
@dataclass(frozen=True, slots=True)
class ExecutionQuality:
    """Orders of one instrument (and its exchange), each at its latest state.

    ``fill_rate`` = filled quantity / ordered quantity (raw counts, so exact in one
    instrument); ``orders_filled_rate`` = orders with any fill / orders; ``success_rate`` =
    orders not rejected / orders; ``cancel_ratio`` = orders canceled / orders placed (every
    order the engine created). Rates are None with no orders.
    """

    exchange: str
    instrument: int
    symbol: str
    orders: int
    filled_orders: int
    fully_filled_orders: int
    canceled_orders: int
    rejected_orders: int
    expired_orders: int
    ordered_quantity: int
    filled_quantity: int
    fill_rate: float | None
    orders_filled_rate: float | None
    success_rate: float | None
    cancel_ratio: float | None


def execution_quality(con: duckdb.DuckDBPyConnection, ref: Reference,
                      filters: Filters = Filters()) -> list[ExecutionQuality]:
    """Fill rate, order success rate and cancel ratio per instrument from ``orders`` (each
    order at its latest row within the filters: with a time range, its state at the end of
    the range), with the exchange name of the reference."""
    _with_reference(con, ref)
    cond, params = filters.where("o")
    rows = con.execute(f"""
        WITH last AS (
            SELECT * FROM orders o WHERE {cond}
            QUALIFY row_number() OVER (PARTITION BY order_id ORDER BY seq DESC) = 1)
        SELECT coalesce(i.exchange, '') AS exchange, o.instrument,
               coalesce(i.symbol, o.instrument::VARCHAR) AS symbol, count(*) AS orders,
               count(*) FILTER (o.filled > 0) AS filled_orders,
               count(*) FILTER (o.status = {int(OrderStatus.FILLED)}) AS fully_filled,
               count(*) FILTER (o.status = {int(OrderStatus.CANCELED)}) AS canceled,
               count(*) FILTER (o.status = {int(OrderStatus.REJECTED)}) AS rejected,
               count(*) FILTER (o.status = {int(OrderStatus.EXPIRED)}) AS expired,
               sum(o.quantity)::HUGEINT AS ordered, sum(o.filled)::HUGEINT AS filled
        FROM last o LEFT JOIN _instruments i ON i.instrument = o.instrument
        GROUP BY ALL ORDER BY exchange, o.instrument""", params).fetchall()
    out = []
    for (exch, inst, sym, n, n_filled, n_full, n_cancel, n_reject, n_expired, ordered,
         filled) in rows:
        out.append(ExecutionQuality(
            exch, inst, sym, n, n_filled, n_full, n_cancel, n_reject, n_expired, int(ordered),
            int(filled), int(filled) / int(ordered) if ordered else None,
            n_filled / n if n else None, (n - n_reject) / n if n else None,
            n_cancel / n if n else None))
    return out


@dataclass(frozen=True, slots=True)
class ExchangeQuality:
    """The count-based rates of :class:`ExecutionQuality` over every instrument of one
    exchange, so venues can be compared (quantities of different instruments are counted in
    different lots, so a quantity fill rate is per instrument only)."""

    exchange: str
    orders: int
    filled_orders: int
    canceled_orders: int
    rejected_orders: int
    orders_filled_rate: float | None
    success_rate: float | None
    cancel_ratio: float | None


def exchange_quality(quality: list[ExecutionQuality]) -> list[ExchangeQuality]:
    """Roll :func:`execution_quality` rows up per exchange (sums of their counts)."""
    out = []
    for exch in sorted({q.exchange for q in quality}):
        rows = [q for q in quality if q.exchange == exch]
        n = sum(q.orders for q in rows)
        filled = sum(q.filled_orders for q in rows)
        canceled = sum(q.canceled_orders for q in rows)
        rejected = sum(q.rejected_orders for q in rows)
        out.append(ExchangeQuality(
            exch, n, filled, canceled, rejected, filled / n if n else None,
            (n - rejected) / n if n else None, canceled / n if n else None))
    return out


@dataclass(frozen=True, slots=True)
class RejectCount:
    """Rejects of one reason: ``source`` is ``risk`` (a command refused by the engine,
    ``risk_rejects``) or ``venue`` (an order the venue refused: ``orders`` rows in status
    REJECTED with their ``reason`` and the venue's own error code, e.g. -2010; 0 for risk)."""

    source: str
    code: int
    reason: str
    venue_code: int
    count: int


def reject_counts(con: duckdb.DuckDBPyConnection, filters: Filters = Filters()
                  ) -> list[RejectCount]:
    """Reject counts by reason, with the reason's name from the ``reject_reasons`` view.

    ``risk_rejects`` has no strategy or instrument: those filters apply to venue rejects only.
    """
    rcond, rparams = filters.where("r", "reject_ns", ("account",))
    ocond, oparams = filters.where("o")
    rows = con.execute(f"""
        SELECT 'risk' AS source, r.code, coalesce(n.name, r.code::VARCHAR), 0, count(*)
        FROM risk_rejects r LEFT JOIN reject_reasons n ON n.code = r.code
        WHERE {rcond} GROUP BY ALL
        UNION ALL
        SELECT 'venue', o.reason, coalesce(n.name, o.reason::VARCHAR), o.venue_code,
               count(*)
        FROM orders o LEFT JOIN reject_reasons n ON n.code = o.reason
        WHERE o.status = {int(OrderStatus.REJECTED)} AND {ocond} GROUP BY ALL
        ORDER BY 5 DESC, 1, 2, 4""", rparams + oparams).fetchall()
    return [RejectCount(s, int(c), name, int(v), int(k)) for s, c, name, v, k in rows]
