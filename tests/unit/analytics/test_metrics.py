"""Every metric of analytics.metrics against a hand-computed fixture, the return-based ones
also against empyrical (a test-only dependency), and the edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analytics.metrics import (
    equity_metrics,
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
)

DAY = 86_400_000_000_000
T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z

# returns +10%, -10%, +5%, +15%, -5% from 100
EQUITY = [100.0, 110.0, 99.0, 103.95, 119.5425, 113.565375]
TS = [T0 + k * DAY for k in range(6)]


def test_returns_and_total_return():
    assert period_returns(EQUITY) == pytest.approx([0.1, -0.1, 0.05, 0.15, -0.05], rel=1e-12)
    assert total_return(EQUITY) == pytest.approx(0.13565375, rel=1e-12)  # 113.565375 / 100 - 1


def test_sharpe_and_sortino_by_hand():
    r = period_returns(EQUITY)
    # mean 0.15 / 5 = 0.03; deviations 0.07 -0.13 0.02 0.12 -0.08, squares sum 0.043,
    # sample variance 0.043 / 4 = 0.01075; annualised by sqrt(365)
    assert sharpe_ratio(r) == pytest.approx(5.527941708708923, rel=1e-12)
    # downside: min(r, 0) = 0 -0.1 0 0 -0.05, mean square 0.0125 / 5 = 0.0025, root 0.05;
    # 0.03 * sqrt(365) / 0.05
    assert sortino_ratio(r) == pytest.approx(11.462983904725679, rel=1e-12)
    # 252 periods a year: 0.03 / sqrt(0.01075) * sqrt(252)
    assert sharpe_ratio(r, periods_per_year=252) == pytest.approx(
        0.03 / math.sqrt(0.01075) * math.sqrt(252), rel=1e-12)
    # a risk-free rate of 3.65% a year is 0.0001 a day, taken off every return
    assert sharpe_ratio(r, risk_free_rate=0.0365) == pytest.approx(
        0.0299 / math.sqrt(0.01075) * math.sqrt(365), rel=1e-12)


def test_max_drawdown_by_hand():
    dd = max_drawdown(TS, EQUITY)
    # peak 110 on day 1, trough 99 on day 2: 11 / 110 = 10%; back to >= 110 on day 4
    # (119.5425); the later 119.5425 -> 113.565375 is only 5%
    assert dd.fraction == pytest.approx(0.1, rel=1e-12)
    assert dd.absolute == pytest.approx(11.0, rel=1e-12)
    assert (dd.peak_ns, dd.trough_ns, dd.recovery_ns) == (TS[1], TS[2], TS[4])
    assert dd.duration_ns == 3 * DAY


def test_drawdown_not_recovered_runs_to_the_end():
    dd = max_drawdown(TS[:4], [100.0, 120.0, 90.0, 100.0])
    # 30 / 120 = 25% from day 1, never back to 120: duration to the last point, day 3
    assert dd.fraction == pytest.approx(0.25)
    assert dd.absolute == 30.0
    assert dd.recovery_ns is None and dd.duration_ns == 2 * DAY


def test_drawdown_of_cumulative_pnl_has_no_fraction():
    dd = max_drawdown(TS[:4], [0.0, 5.0, -3.0, 1.0])
    assert dd.fraction is None  # peaks at 0 or below: no fraction of them
    assert dd.absolute == 8.0 and (dd.peak_ns, dd.trough_ns) == (TS[1], TS[2])
    m = equity_metrics(TS[:4], [0.0, 5.0, -3.0, 1.0])
    assert m.sharpe is None and m.sortino is None and m.drawdown.absolute == 8.0


def test_equity_metrics_bundles_them():
    m = equity_metrics(TS, EQUITY)
    assert m.periods == 5 and m.start_equity == 100.0
    assert m.total_return == pytest.approx(0.13565375)
    assert m.sharpe == pytest.approx(5.527941708708923)
    assert m.sortino == pytest.approx(11.462983904725679)
    assert m.drawdown.fraction == pytest.approx(0.1)


def test_trade_metrics_by_hand():
    pnl = [10.0, -5.0, 20.0, -15.0, 0.0]
    side = [1, 1, -1, -1, 1]
    m = trade_metrics(pnl, side, entry_ns=[0, 0, 0, 0, 0], exit_ns=[10, 20, 30, 40, 50])
    assert (m.count, m.wins, m.losses) == (5, 2, 2)  # the 0 trade is neither
    assert m.win_rate == 0.4  # 2 / 5
    assert (m.long_count, m.short_count) == (3, 2)
    assert m.long_win_rate == pytest.approx(1 / 3)  # 10 of [10, -5, 0]
    assert m.short_win_rate == 0.5  # 20 of [20, -15]
    assert (m.average_win, m.average_loss) == (15.0, -10.0)  # 30 / 2, -20 / 2
    assert (m.gross_profit, m.gross_loss) == (30.0, 20.0)
    assert m.profit_factor == 1.5  # 30 / 20
    assert m.expectancy == 2.0  # 10 / 5 = 0.4 * 15 + 0.4 * -10
    assert m.total_pnl == 10.0
    assert m.average_duration_ns == 30.0  # (10 + 20 + 30 + 40 + 50) / 5


def test_var_and_es_by_hand():
    x = np.arange(20) * 2.0 - 9.0  # -9, -7, ..., 29
    # 5% quantile at position 19 * 0.05 = 0.95 between -9 and -7: -9 + 0.95 * 2 = -7.1
    assert historical_var(x, 0.95) == pytest.approx(7.1, rel=1e-12)
    assert historical_es(x, 0.95) == 9.0  # the tail at or below -7.1 is [-9]
    # 1%: position 0.19: -9 + 0.38 = -8.62
    assert historical_var(x, 0.99) == pytest.approx(8.62, rel=1e-12)
    assert historical_es(x, 0.99) == 9.0
    # mean 10, sample variance 2^2 * 20 * 21 / 12 = 140; z95 = 1.6448536269514715,
    # z99 = 2.3263478740408408, pdf(z95) = 0.10313564037537153, pdf(z99) = 0.02665214220345808
    sd = math.sqrt(140)
    assert normal_var(x, 0.95) == pytest.approx(1.6448536269514715 * sd - 10, rel=1e-12)
    assert normal_var(x, 0.99) == pytest.approx(2.3263478740408408 * sd - 10, rel=1e-12)
    assert normal_es(x, 0.95) == pytest.approx(0.10313564037537153 / 0.05 * sd - 10, rel=1e-12)
    assert normal_es(x, 0.99) == pytest.approx(0.02665214220345808 / 0.01 * sd - 10, rel=1e-12)
    r = risk_metrics(x)
    assert r.observations == 20 and [t.confidence for t in r.tails] == [0.95, 0.99]
    assert r.at(0.99).historical_var == pytest.approx(8.62)
    assert r.at(0.95).normal_es == pytest.approx(14.406347077670716)


# ------------------------------------------------------------------------------ edge cases
def test_no_trades():
    m = trade_metrics([])
    assert (m.count, m.wins, m.losses, m.total_pnl) == (0, 0, 0, 0.0)
    assert m.win_rate is None and m.average_win is None and m.average_loss is None
    assert m.profit_factor is None and m.expectancy is None and m.long_win_rate is None
    r = risk_metrics([])
    assert r.observations == 0
    assert all(v is None for t in r.tails for v in
               (t.historical_var, t.historical_es, t.normal_var, t.normal_es))


def test_one_trade():
    m = trade_metrics([7.5], [-1])
    assert (m.count, m.win_rate, m.short_win_rate, m.long_win_rate) == (1, 1.0, 1.0, None)
    assert m.profit_factor is None  # no loss: undefined, not inf
    assert m.expectancy == 7.5 and m.average_win == 7.5 and m.average_loss is None
    t = risk_metrics([7.5]).at(0.95)
    assert t.historical_var == -7.5 and t.historical_es == -7.5  # the one outcome is a gain
    assert t.normal_var is None and t.normal_es is None  # no std of one value


def test_only_losses_and_only_wins():
    m = trade_metrics([-1.0, -2.0, -3.0])
    assert m.profit_factor == 0.0 and m.win_rate == 0.0 and m.average_win is None
    assert m.average_loss == -2.0 and m.expectancy == -2.0
    assert profit_factor([1.0, 2.0]) is None


def test_zero_variance_equity():
    flat = [100.0] * 5
    m = equity_metrics(TS[:5], flat)
    assert m.sharpe is None and m.sortino is None and m.total_return == 0.0
    assert m.drawdown.fraction == 0.0 and m.drawdown.duration_ns == 0
    steady = [100.0 * 1.01 ** k for k in range(6)]  # +1% every period: no variance either
    assert sharpe_ratio(period_returns(steady)) is None
    assert sortino_ratio(period_returns(steady)) is None  # no period below the target
    assert equity_metrics([], []).drawdown is None


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        sharpe_ratio([0.1, float("nan")])
    with pytest.raises(ValueError):
        period_returns([100.0, 0.0, 10.0])
    with pytest.raises(ValueError):
        trade_metrics([1.0], side=[0])
    with pytest.raises(ValueError):
        historical_var([1.0], confidence=1.0)


# ------------------------------------------------------------------------ library cross-check
def _returns() -> np.ndarray:
    # 101 returns: (101 - 1) * 5% and * 1% are whole, where empyrical's CVaR (mean of the
    # lowest int((n - 1) * cutoff) + 1) and the quantile tail here are the same set
    return np.random.default_rng(13).normal(0.0005, 0.02, 101)


def test_return_metrics_agree_with_empyrical():
    import empyrical  # the dev extra's test-only dependency
    r = _returns()
    assert sharpe_ratio(r, 365) == pytest.approx(
        empyrical.sharpe_ratio(r, annualization=365), rel=1e-12)
    assert sharpe_ratio(r, 252, risk_free_rate=0.04) == pytest.approx(
        empyrical.sharpe_ratio(r, risk_free=0.04 / 252, annualization=252), rel=1e-12)
    assert sortino_ratio(r, 365) == pytest.approx(
        empyrical.sortino_ratio(r, annualization=365), rel=1e-12)
    assert sortino_ratio(r, 252, risk_free_rate=0.04) == pytest.approx(
        empyrical.sortino_ratio(r, required_return=0.04 / 252, annualization=252), rel=1e-12)
    equity = 100.0 * np.concatenate([[1.0], np.cumprod(1.0 + r)])
    ts = T0 + np.arange(len(equity)) * DAY
    dd = max_drawdown(ts, equity)
    assert dd.fraction == pytest.approx(-empyrical.max_drawdown(r), rel=1e-12)
    assert total_return(equity) == pytest.approx(empyrical.cum_returns_final(r), rel=1e-12)
    for c in (0.95, 0.99):
        assert historical_var(r, c) == pytest.approx(
            -empyrical.value_at_risk(r, cutoff=1 - c), rel=1e-12)
        assert historical_es(r, c) == pytest.approx(
            -empyrical.conditional_value_at_risk(r, cutoff=1 - c), rel=1e-12)


def test_normal_var_agrees_with_scipy():
    from scipy import stats  # installed with empyrical
    r = _returns()
    mu, sd = r.mean(), r.std(ddof=1)
    for c in (0.95, 0.99):
        assert normal_var(r, c) == pytest.approx(-stats.norm.ppf(1 - c, mu, sd), rel=1e-9)
        # E[X | X <= q] of a normal: mu - sd * pdf(z) / (1 - c)
        tail = stats.norm.expect(lambda v: v, loc=mu, scale=sd,
                                 ub=stats.norm.ppf(1 - c, mu, sd), conditional=True)
        assert normal_es(r, c) == pytest.approx(-tail, rel=1e-6)
