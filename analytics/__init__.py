"""Performance, risk and execution analytics over the writer's DuckDB database.

``metrics``: pure functions over numpy arrays; ``store``: SQL over the database that feeds
them. See docs/analytics.md.
"""

from analytics.metrics import (
    CONFIDENCES,
    PERIODS_PER_YEAR,
    RISK_FREE_RATE,
    Drawdown,
    EquityMetrics,
    RiskMetrics,
    TailRisk,
    TradeMetrics,
    equity_metrics,
    expectancy,
    historical_es,
    historical_var,
    max_drawdown,
    normal_es,
    normal_var,
    period_returns,
    profit_factor,
    risk_metrics,
    sharpe_ratio,
    sortino_ratio,
    total_return,
    trade_metrics,
    win_rate,
)
from analytics.store import (
    EquityCurve,
    ExchangeQuality,
    ExecutionQuality,
    Filters,
    Reference,
    RejectCount,
    RoundTrips,
    equity_curves,
    exchange_quality,
    execution_quality,
    open_db,
    reject_counts,
    round_trips,
)

__all__ = [
    "CONFIDENCES", "PERIODS_PER_YEAR", "RISK_FREE_RATE", "Drawdown", "EquityCurve",
    "EquityMetrics", "ExchangeQuality", "ExecutionQuality", "Filters", "Reference",
    "RejectCount", "RiskMetrics", "RoundTrips", "TailRisk", "TradeMetrics", "equity_curves",
    "equity_metrics", "exchange_quality", "execution_quality", "expectancy", "historical_es",
    "historical_var", "max_drawdown", "normal_es", "normal_var", "open_db", "period_returns",
    "profit_factor", "reject_counts", "risk_metrics", "round_trips", "sharpe_ratio",
    "sortino_ratio", "total_return", "trade_metrics", "win_rate",
]
