"""Performance, trade and risk metrics: pure functions over numpy arrays.

Money is float in currency units (the store converts the raw fixed-point integers exactly in
SQL first), times are int64 nanoseconds since the epoch. Every function states its formula in
its first docstring line. Undefined results are ``None``, never NaN: a report shows "n/a"
instead of a number that poisons every sum it enters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike

# crypto venues trade every day of the year; pass 252 for an equity calendar
PERIODS_PER_YEAR = 365
# annual risk-free rate, simple; converted per period as rate / periods_per_year
RISK_FREE_RATE = 0.0
CONFIDENCES = (0.95, 0.99)
_NORMAL = NormalDist()


def _floats(values: ArrayLike) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError("expected a one-dimensional series")
    if not np.all(np.isfinite(arr)):
        raise ValueError("series holds NaN or infinite values")
    return arr


# ------------------------------------------------------------------------------ equity series
@dataclass(frozen=True, slots=True)
class Drawdown:
    """The deepest drawdown of an equity series.

    ``fraction`` is (peak - trough) / peak (positive; None when a peak is not positive),
    ``absolute`` the largest peak - equity in currency units (it can sit in another drawdown
    than the deepest fraction). Times are of the deepest fraction's drawdown, or of the largest
    absolute one when fractions are undefined; ``recovery_ns`` is None when equity never got
    back to the peak, and then ``duration_ns`` runs to the last timestamp.
    """

    fraction: float | None
    absolute: float
    peak_ns: int
    trough_ns: int
    recovery_ns: int | None
    duration_ns: int


@dataclass(frozen=True, slots=True)
class EquityMetrics:
    """Return-based metrics of one equity series (see :func:`equity_metrics`)."""

    periods: int
    start_equity: float
    end_equity: float
    total_return: float | None
    sharpe: float | None
    sortino: float | None
    drawdown: Drawdown | None


def period_returns(equity: ArrayLike) -> np.ndarray:
    """r_i = E_i / E_(i-1) - 1 (simple returns); ValueError when an equity is not positive."""
    e = _floats(equity)
    if len(e) and np.any(e[:-1] <= 0):
        raise ValueError("returns need positive equity (add the starting capital)")
    return e[1:] / e[:-1] - 1.0


def total_return(equity: ArrayLike) -> float | None:
    """E_last / E_first - 1; None for fewer than two points or a non-positive first equity."""
    e = _floats(equity)
    if len(e) < 2 or e[0] <= 0:
        return None
    return float(e[-1] / e[0] - 1.0)


def sharpe_ratio(returns: ArrayLike, periods_per_year: float = PERIODS_PER_YEAR,
                 risk_free_rate: float = RISK_FREE_RATE) -> float | None:
    """mean(r - rf/N) / std(r - rf/N, ddof=1) * sqrt(N), N = periods per year.

    None for fewer than two returns or zero variance.
    """
    r = _floats(returns) - risk_free_rate / periods_per_year
    if len(r) < 2:
        return None
    sd = float(np.std(r, ddof=1))
    if sd == 0.0 or sd < 1e-15 * max(1.0, float(np.max(np.abs(r)))):
        return None
    return float(np.mean(r) / sd * math.sqrt(periods_per_year))


def sortino_ratio(returns: ArrayLike, periods_per_year: float = PERIODS_PER_YEAR,
                  risk_free_rate: float = RISK_FREE_RATE) -> float | None:
    """mean(r - rf/N) * sqrt(N) / sqrt(mean(min(r - rf/N, 0)^2)) (downside deviation over
    all periods, target = the per-period risk-free rate).

    None for fewer than two returns or no period below the target.
    """
    r = _floats(returns) - risk_free_rate / periods_per_year
    if len(r) < 2:
        return None
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    if downside == 0.0:
        return None
    return float(np.mean(r) * math.sqrt(periods_per_year) / downside)


def max_drawdown(timestamps_ns: ArrayLike, equity: ArrayLike) -> Drawdown | None:
    """max over t of (peak_t - E_t) / peak_t, peak_t = max(E_0..E_t); duration = peak to the
    first later E >= peak (recovery), or to the last timestamp when not recovered.

    None for an empty series; a series that never falls has a zero drawdown.
    """
    ts = np.asarray(timestamps_ns, dtype=np.int64)
    e = _floats(equity)
    if len(e) != len(ts):
        raise ValueError("timestamps and equity differ in length")
    if len(e) == 0:
        return None
    peak = np.maximum.accumulate(e)
    under = peak - e
    fraction: float | None = None
    if np.all(peak > 0):
        frac = under / peak
        trough = int(np.argmax(frac))
        fraction = float(frac[trough])
    else:
        trough = int(np.argmax(under))
    if under[trough] == 0.0:
        return Drawdown(0.0 if fraction is not None else None, 0.0, int(ts[0]), int(ts[0]),
                        int(ts[0]), 0)
    # the peak is the last point at the running maximum before the trough
    peak_at = int(np.flatnonzero(e[: trough + 1] == peak[trough])[-1])
    after = np.flatnonzero(e[trough:] >= peak[trough])
    recovery = int(ts[trough + after[0]]) if len(after) else None
    end = recovery if recovery is not None else int(ts[-1])
    return Drawdown(fraction, float(np.max(under)), int(ts[peak_at]), int(ts[trough]),
                    recovery, end - int(ts[peak_at]))


def equity_metrics(timestamps_ns: ArrayLike, equity: ArrayLike,
                   periods_per_year: float = PERIODS_PER_YEAR,
                   risk_free_rate: float = RISK_FREE_RATE) -> EquityMetrics:
    """Total return, Sharpe, Sortino and the deepest drawdown of an equity series sampled once
    per period (``periods_per_year`` of them a year: 365 for daily points by default).

    Return-based fields are None when an equity is not positive (pass equity including the
    starting capital, not the cumulative P&L alone); the absolute drawdown is kept.
    """
    e = _floats(equity)
    dd = max_drawdown(timestamps_ns, e)
    if len(e) == 0:
        return EquityMetrics(0, 0.0, 0.0, None, None, None, None)
    sharpe = sortino = None
    if np.all(e > 0):
        r = period_returns(e)
        sharpe = sharpe_ratio(r, periods_per_year, risk_free_rate)
        sortino = sortino_ratio(r, periods_per_year, risk_free_rate)
    return EquityMetrics(len(e) - 1, float(e[0]), float(e[-1]), total_return(e), sharpe,
                         sortino, dd)


# -------------------------------------------------------------------------------- round trips
@dataclass(frozen=True, slots=True)
class TradeMetrics:
    """Round-trip statistics (see :func:`trade_metrics`).

    A win has P&L > 0, a loss P&L < 0; a trade at exactly 0 counts in ``count`` only.
    ``average_loss`` is a P&L, so negative; ``gross_loss`` is its positive magnitude.
    ``profit_factor`` is 0.0 with only losses and None with no loss at all (only wins or no
    trades: undefined rather than infinite, so it survives JSON and sums). Long / short
    fields are None when sides are not known or no trade was on that side.
    """

    count: int
    wins: int
    losses: int
    total_pnl: float
    gross_profit: float
    gross_loss: float
    win_rate: float | None
    long_count: int | None
    long_win_rate: float | None
    short_count: int | None
    short_win_rate: float | None
    average_win: float | None
    average_loss: float | None
    profit_factor: float | None
    expectancy: float | None
    average_duration_ns: float | None


def win_rate(pnl: ArrayLike) -> float | None:
    """count(pnl > 0) / count; None with no trades."""
    p = _floats(pnl)
    return float(np.count_nonzero(p > 0) / len(p)) if len(p) else None


def profit_factor(pnl: ArrayLike) -> float | None:
    """sum(pnl > 0) / |sum(pnl < 0)|; 0.0 with only losses, None with no loss."""
    p = _floats(pnl)
    loss = -float(p[p < 0].sum())
    return float(p[p > 0].sum()) / loss if loss > 0 else None


def expectancy(pnl: ArrayLike) -> float | None:
    """mean(pnl) = win_rate * average_win + loss_rate * average_loss; None with no trades."""
    p = _floats(pnl)
    return float(p.mean()) if len(p) else None


def trade_metrics(pnl: ArrayLike, side: ArrayLike | None = None,
                  entry_ns: ArrayLike | None = None,
                  exit_ns: ArrayLike | None = None) -> TradeMetrics:
    """Count, win rates (overall / long / short), average win and loss, profit factor and
    expectancy of round trips with P&L ``pnl``; ``side`` +1 long / -1 short per trip;
    ``entry_ns`` and ``exit_ns`` give the average holding time."""
    p = _floats(pnl)
    n = len(p)
    wins, losses = p[p > 0], p[p < 0]
    long_count = long_wr = short_count = short_wr = None
    if side is not None:
        s = np.asarray(side)
        if len(s) != n or not np.all(np.isin(s, (1, -1))):
            raise ValueError("side must hold +1 or -1 per trade")
        long_count, short_count = int(np.count_nonzero(s == 1)), int(np.count_nonzero(s == -1))
        long_wr = win_rate(p[s == 1]) if long_count else None
        short_wr = win_rate(p[s == -1]) if short_count else None
    duration = None
    if entry_ns is not None and exit_ns is not None and n:
        held = np.asarray(exit_ns, dtype=np.int64) - np.asarray(entry_ns, dtype=np.int64)
        duration = float(held.mean())
    return TradeMetrics(
        count=n, wins=len(wins), losses=len(losses), total_pnl=float(p.sum()),
        gross_profit=float(wins.sum()), gross_loss=-float(losses.sum()),
        win_rate=win_rate(p), long_count=long_count, long_win_rate=long_wr,
        short_count=short_count, short_win_rate=short_wr,
        average_win=float(wins.mean()) if len(wins) else None,
        average_loss=float(losses.mean()) if len(losses) else None,
        profit_factor=profit_factor(p), expectancy=expectancy(p),
        average_duration_ns=duration)


# ----------------------------------------------------------------------------------------- risk
@dataclass(frozen=True, slots=True)
class TailRisk:
    """Value at risk and expected shortfall at one confidence, as positive losses (a VaR of
    0.02 on returns is a 2% loss; negative when even the tail is a gain)."""

    confidence: float
    historical_var: float | None
    historical_es: float | None
    normal_var: float | None
    normal_es: float | None


@dataclass(frozen=True, slots=True)
class RiskMetrics:
    observations: int
    tails: tuple[TailRisk, ...]

    def at(self, confidence: float) -> TailRisk:
        """The tail at ``confidence`` (0.95, 0.99)."""
        for tail in self.tails:
            if tail.confidence == confidence:
                return tail
        raise KeyError(f"no tail at confidence {confidence}")


def _check_confidence(confidence: float) -> None:
    if not 0.5 <= confidence < 1.0:
        raise ValueError(f"confidence {confidence} outside [0.5, 1)")


def historical_var(values: ArrayLike, confidence: float = 0.95) -> float | None:
    """-quantile(x, 1 - c), linear interpolation between order statistics (numpy's default);
    None for an empty series."""
    _check_confidence(confidence)
    x = _floats(values)
    return -float(np.quantile(x, 1.0 - confidence)) if len(x) else None


def historical_es(values: ArrayLike, confidence: float = 0.95) -> float | None:
    """-mean(x[x <= quantile(x, 1 - c)]): the mean loss of the tail at or beyond the
    historical VaR; None for an empty series."""
    _check_confidence(confidence)
    x = _floats(values)
    if not len(x):
        return None
    q = np.quantile(x, 1.0 - confidence)
    return -float(x[x <= q].mean())


def normal_var(values: ArrayLike, confidence: float = 0.95) -> float | None:
    """z_c * sigma - mu, a normal with the sample mean and std (ddof=1); None below two
    observations."""
    _check_confidence(confidence)
    x = _floats(values)
    if len(x) < 2:
        return None
    return _NORMAL.inv_cdf(confidence) * float(np.std(x, ddof=1)) - float(x.mean())


def normal_es(values: ArrayLike, confidence: float = 0.95) -> float | None:
    """sigma * pdf(z_c) / (1 - c) - mu, the normal's mean loss beyond its VaR; None below two
    observations."""
    _check_confidence(confidence)
    x = _floats(values)
    if len(x) < 2:
        return None
    z = _NORMAL.inv_cdf(confidence)
    return float(np.std(x, ddof=1)) * _NORMAL.pdf(z) / (1.0 - confidence) - float(x.mean())


def risk_metrics(values: ArrayLike, confidences: tuple[float, ...] = CONFIDENCES
                 ) -> RiskMetrics:
    """Historical and normal VaR and expected shortfall of a P&L or return series at each
    confidence (95% and 99% by default), as positive losses."""
    x = _floats(values)
    return RiskMetrics(len(x), tuple(
        TailRisk(c, historical_var(x, c), historical_es(x, c), normal_var(x, c),
                 normal_es(x, c)) for c in confidences))
