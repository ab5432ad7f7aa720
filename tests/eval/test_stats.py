"""`stats` against empyrical (an independent reference) on real bundled prices, to 1e-8."""

import os

import empyrical
import numpy as np
import pandas as pd
import pytest

from jaxtrade.eval.stats import stats

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "jaxtrade", "datasets",
                    "sp500_20_stocks_adjclose.csv.gz")


@pytest.fixture(scope="module")
def prices():
    return pd.read_csv(DATA, index_col=0, parse_dates=True).loc["2016-01-01":"2022-12-28"]


@pytest.mark.parametrize("column", ["AMD", "XOM", "equal_weight"])
@pytest.mark.parametrize("risk_free", [0.0, 0.03])
def test_stats_match_empyrical(prices, column, risk_free):
    if column == "equal_weight":   # a rebalanced portfolio: mean daily return of the 20 stocks
        values = 1e6 * (1 + prices.pct_change().fillna(0.0).mean(axis=1)).cumprod()
    else:
        values = prices[column] * 1000.0
    ppy = 252.0
    s = stats(values, periods_per_year=ppy, risk_free=risk_free)
    r = values.pct_change().iloc[1:]
    rf = (1 + risk_free) ** (1 / ppy) - 1
    ref = {
        "cumulative_return": empyrical.cum_returns_final(r),
        "annual_return": empyrical.annual_return(r, annualization=ppy),
        "annual_volatility": empyrical.annual_volatility(r, annualization=ppy),
        "sharpe": empyrical.sharpe_ratio(r, risk_free=rf, annualization=ppy),
        "sortino": empyrical.sortino_ratio(r, required_return=rf, annualization=ppy),
        "calmar": empyrical.calmar_ratio(r, annualization=ppy),
        "max_drawdown": empyrical.max_drawdown(r),
    }
    for key, want in ref.items():
        assert s[key] == pytest.approx(float(want), rel=1e-8, abs=1e-10), key
    # The drawdown's dates, by an independent pandas computation.
    dd = values / values.cummax() - 1
    trough = dd.idxmin()
    assert s["max_drawdown_trough"] == trough
    assert s["max_drawdown_peak"] == values.loc[:trough].idxmax()
    # profit rate: calendar months (>= 5 rows) ending above the value before them, by a groupby.
    prev = values.shift(1).fillna(values.iloc[0])
    months = pd.DataFrame({"v": values, "p": prev}).groupby(values.index.to_period("M"))
    want = np.mean([g["v"].iloc[-1] > g["p"].iloc[0] for _, g in months if len(g) >= 5])
    assert s["profit_rate"] == pytest.approx(want, abs=1e-12) and 0.0 < want < 1.0
    assert s["positive_periods"] == pytest.approx(float((r > 0).mean()), abs=1e-12)


def test_hourly_annualization_matches_empyrical(prices):
    values = prices["MSFT"].iloc[:600]
    ppy = 252 * 6.5
    s = stats(values, periods_per_year=ppy)
    r = values.pct_change().iloc[1:]
    assert s["sharpe"] == pytest.approx(empyrical.sharpe_ratio(r, annualization=ppy), rel=1e-8)
    assert s["annual_return"] == pytest.approx(empyrical.annual_return(r, annualization=ppy), rel=1e-8)


def test_trade_statistics_from_a_backtest_frame(prices):
    values = prices["KO"].iloc[:11].to_numpy() * 100.0
    frame = pd.DataFrame({
        "value": values,
        "trade_closed": [0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 0],
        "trade_pnl": [9.0, 5.0, -3.0, -2.0, 0.0, 7.0, 1.0, 4.0, 8.0, 1.5, -6.0],
        "turnover": [1.0, 0.1, 0, 0, 0.2, 0, 0, 0, 0, 0.1, 0],
        "costs": [10.0, 1.0, 0, 0, 2.0, 0, 0, 0, 0, 1.0, 0],
    }, index=prices.index[:11])
    s = stats(frame, periods_per_year=252.0)
    # Closed trades' PnL: 5, -2, 0, 4, 1.5 -> 3 of 5 strictly positive (a zero-PnL trade is no win).
    assert s["n_closed_trades"] == 5
    assert s["win_rate"] == pytest.approx(3 / 5)
    # 1.4 of the book traded over 10 periods = 10/252 years.
    assert s["turnover"] == pytest.approx(1.4 / (10 / 252))
    assert s["total_costs"] == pytest.approx(14.0 / values[0])
    assert np.isnan(stats(values)["win_rate"])
    # The count form `backtest` writes: closed trades and winners per row.
    counts = frame.drop(columns="trade_pnl").assign(trade_closed=[0, 2, 0, 1, 0, 0, 0, 3, 0, 0, 0],
                                                    trades_won=[0, 1, 0, 1, 0, 0, 0, 2, 0, 0, 0])
    assert stats(counts)["win_rate"] == pytest.approx(4 / 6) and stats(counts)["n_closed_trades"] == 6


def test_sharpe_and_sortino_on_excess_returns_over_a_dated_rate(prices):
    """A frame's `risk_free` column (the rate cash earned from row t to t+1) is subtracted period by
    period; empyrical takes the same excess series as its returns."""
    values = prices["KO"].iloc[:300] * 100.0
    rate = np.where(np.arange(300) < 150, 0.0001, 0.0003)   # a rate that moves: 2.5% then 7.6% a year
    frame = pd.DataFrame({"value": values.to_numpy(), "risk_free": rate}, index=values.index)
    s = stats(frame, periods_per_year=252.0, risk_free=0.5)   # the frame's dated rate wins
    excess = values.pct_change().iloc[1:].to_numpy() - rate[:-1]
    assert s["sharpe"] == pytest.approx(empyrical.sharpe_ratio(excess, annualization=252), rel=1e-8)
    assert s["sortino"] == pytest.approx(empyrical.sortino_ratio(excess, annualization=252), rel=1e-8)
    assert s["sharpe"] < stats(values, periods_per_year=252.0)["sharpe"]
