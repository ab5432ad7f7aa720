"""Performance statistics of a value series, in float64 numpy on the host.

The formulas are the usual empyrical ones (checked against `empyrical` in the tests, to 1e-8):
simple per-period returns r_t = V_t / V_{t-1} - 1, sample standard deviation (ddof=1), annualized
with `periods_per_year` (252 for daily data, the bars actually observed per year for intraday data).

Sharpe and Sortino are computed on excess returns r_t - rf_t. rf_t is the per-period rate cash earned
over the same period where the backtest frame carries it (column `risk_free`, from the env's
`info["risk_free"]`, the dated rate of the data), else the constant `risk_free` argument (0 by default).

One profit rate: the share of episodes that end above their start. A whole-split backtest is one run,
so its episodes are its calendar months (of at least `MIN_MONTH_ROWS` rows), as in validation; a series
without dates is cut into blocks of 21 periods.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

# The statistics `stats` returns, in table order; `report` uses this order for its columns.
STAT_NAMES = (
    "cumulative_return", "annual_return", "annual_volatility", "sharpe", "sortino", "calmar",
    "max_drawdown", "max_drawdown_peak", "max_drawdown_trough", "win_rate", "n_closed_trades",
    "profit_rate", "positive_periods", "turnover", "total_costs",
)
MIN_MONTH_ROWS = 5     # a calendar month with fewer rows (a split's partial first or last) is left out


def returns_of(values) -> np.ndarray:
    """Simple per-period returns [T-1] (float64) of a value series [T] (array, Series or backtest frame)."""
    v = _values_array(values)
    return v[1:] / v[:-1] - 1.0


def per_period_rate(annual_rate: float, periods_per_year: float) -> float:
    """The per-period rate that compounds to `annual_rate` over `periods_per_year` periods."""
    return (1.0 + annual_rate) ** (1.0 / periods_per_year) - 1.0


def sharpe_ratio(returns, periods_per_year: float = 252.0, risk_free: float = 0.0) -> float:
    """Annualized Sharpe of per-period simple returns; `risk_free` is per period. NaN if undefined."""
    r = np.asarray(returns, np.float64) - risk_free
    if r.size < 2:
        return math.nan
    sd = r.std(ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(r.mean() / sd * math.sqrt(periods_per_year))


def sortino_ratio(returns, periods_per_year: float = 252.0, required_return: float = 0.0) -> float:
    """Annualized mean excess return over annualized downside deviation (root mean square of min(r-rr, 0))."""
    r = np.asarray(returns, np.float64) - required_return
    if r.size < 2:
        return math.nan
    downside = math.sqrt(np.mean(np.minimum(r, 0.0) ** 2)) * math.sqrt(periods_per_year)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(r.mean() * periods_per_year) / np.float64(downside))


def profit_rate(values, min_rows: int = MIN_MONTH_ROWS) -> float:
    """Share of episodes whose last value exceeds the value before them: with a DatetimeIndex the
    episodes are calendar months (of >= min_rows rows), else blocks of 21 periods. NaN without one."""
    v = pd.Series(_values_array(values))
    index = getattr(values, "index", None)
    if isinstance(index, pd.DatetimeIndex) and len(index) == len(v):
        groups = np.asarray(index.to_period("M").asi8)
    else:
        groups = np.arange(len(v)) // 21
    prev = v.shift(1).fillna(v.iloc[0]).to_numpy()
    wins = [v.iloc[i[-1]] > prev[i[0]] for i in _runs(groups) if len(i) >= min_rows]
    return float(np.mean(wins)) if wins else math.nan


def _runs(groups: np.ndarray) -> list[np.ndarray]:
    """Row indices of each run of equal consecutive values of `groups`."""
    cuts = np.flatnonzero(np.diff(groups)) + 1
    return np.split(np.arange(len(groups)), cuts)


def excess_rate(values, risk_free: float, periods_per_year: float) -> np.ndarray | float:
    """The per-period risk-free rate of each return of `values`: its backtest frame's `risk_free`
    column (rate earned from row t to t+1, [T-1]) where it has one, else the annual constant
    `risk_free` as a per-period rate."""
    if isinstance(values, pd.DataFrame) and "risk_free" in values.columns:
        return values["risk_free"].to_numpy(np.float64)[:-1]
    return per_period_rate(risk_free, periods_per_year)


def drawdown(values) -> np.ndarray:
    """Drawdown [T] of a value series: V_t / max_{s<=t} V_s - 1 (<= 0)."""
    v = _values_array(values)
    return v / np.maximum.accumulate(v) - 1.0


def stats(values, *, periods_per_year: float | None = None, risk_free: float = 0.0, trades=None,
          turnover=None, costs=None) -> dict:
    """Performance statistics of one value series.

    values: [T] portfolio values (array or Series indexed by date), or a `backtest` DataFrame, whose
        `value`, `trade_closed`/`trade_pnl`, `turnover` and `costs` columns are then used (explicit
        arguments win). The first value is the starting value; T-1 returns follow.
    periods_per_year: annualization (252 daily); default: `values.attrs["periods_per_year"]` or 252.
    risk_free: annual risk-free rate (e.g. 0.02); subtracted per period as (1+rf)^(1/ppy)-1 in Sharpe
        and used as the required return in Sortino. A backtest frame's own `risk_free` column (the
        dated rate cash earned) wins over it.
    trades: per-period counts `trade_closed` and `trades_won` (closed trades with net PnL > 0), as
        `backtest` writes them; or boolean `trade_closed` with the closed trade's net PnL `trade_pnl`
        per period; or a 1-d array of closed trades' net PnLs. None: win rate is NaN.
    turnover: per-period turnover as the environment reports it (traded value / portfolio value);
        costs: per-period costs in currency. None: NaN.

    Returns a dict with `STAT_NAMES` keys:
      cumulative_return   V_T / V_0 - 1
      annual_return       CAGR: (V_T / V_0)^(ppy / (T-1)) - 1
      annual_volatility   std(r, ddof=1) * sqrt(ppy)
      sharpe, sortino     annualized (see `sharpe_ratio`, `sortino_ratio`)
      calmar              annual_return / |max_drawdown| (NaN without a drawdown)
      max_drawdown        min_t V_t / max_{s<=t} V_s - 1 (<= 0), with its peak and trough labels
                          (dates when `values` has a date index, else integer positions)
      win_rate            share of closed trades with net PnL > 0; n_closed_trades their count
      profit_rate         share of calendar months ending above their start (`profit_rate`)
      positive_periods    share of periods with a positive return
      turnover            sum of turnover / years (T-1 periods): annual turnover, the initial buy included
      total_costs         sum of costs / V_0 (a fraction of the starting value)
    """
    frame = values if isinstance(values, pd.DataFrame) else None
    if periods_per_year is None:
        periods_per_year = float(getattr(values, "attrs", {}).get("periods_per_year", 252.0))
    if frame is not None:
        if trades is None and {"trade_closed", "trades_won"} <= set(frame.columns):
            trades = frame[["trade_closed", "trades_won"]]
        elif trades is None and {"trade_closed", "trade_pnl"} <= set(frame.columns):
            trades = frame[["trade_closed", "trade_pnl"]]
        if turnover is None and "turnover" in frame.columns:
            turnover = frame["turnover"].to_numpy()
        if costs is None and "costs" in frame.columns:
            costs = frame["costs"].to_numpy()
    v = _values_array(values)
    labels = _labels(values, len(v))
    r = v[1:] / v[:-1] - 1.0
    rf = excess_rate(values, risk_free, periods_per_year)
    cum = v[-1] / v[0] - 1.0
    n_years = r.size / periods_per_year
    annual = (1.0 + cum) ** (1.0 / n_years) - 1.0 if r.size else math.nan
    vol = r.std(ddof=1) * math.sqrt(periods_per_year) if r.size > 1 else math.nan
    dd = drawdown(v)
    trough = int(np.argmin(dd))
    peak = int(np.argmax(v[: trough + 1]))
    mdd = float(dd[trough])
    calmar = annual / abs(mdd) if mdd < 0 else math.nan
    n_closed, n_won = _closed_trades(trades)
    out = {
        "cumulative_return": float(cum),
        "annual_return": float(annual),
        "annual_volatility": float(vol),
        "sharpe": sharpe_ratio(r, periods_per_year, rf),
        "sortino": sortino_ratio(r, periods_per_year, rf),
        "calmar": float(calmar),
        "max_drawdown": mdd,
        "max_drawdown_peak": labels[peak],
        "max_drawdown_trough": labels[trough],
        "win_rate": n_won / n_closed if n_closed else math.nan,
        "n_closed_trades": n_closed,
        "profit_rate": profit_rate(values if frame is None else frame["value"]),
        "positive_periods": float(np.mean(r > 0)) if r.size else math.nan,
        "turnover": (float(np.sum(np.asarray(turnover, np.float64)) / n_years)
                     if turnover is not None and r.size else math.nan),
        "total_costs": float(np.sum(np.asarray(costs, np.float64)) / v[0]) if costs is not None else math.nan,
    }
    return out


def _values_array(values) -> np.ndarray:
    if isinstance(values, pd.DataFrame):
        values = values["value"]
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size < 1 or not np.all(np.isfinite(v)):
        raise ValueError(f"values must be a non-empty finite series, got {v.size} values")
    return v


def _labels(values, n):
    index = getattr(values, "index", None)
    if index is not None and len(index) == n:
        return list(index)
    return list(range(n))


def _closed_trades(trades) -> tuple[int, int]:
    """(closed trades, of them with net PnL > 0)."""
    if trades is None:
        return 0, 0
    if isinstance(trades, pd.DataFrame | Mapping) and "trades_won" in trades:
        return int(np.sum(trades["trade_closed"])), int(np.sum(trades["trades_won"]))
    if isinstance(trades, pd.DataFrame | Mapping):
        pnl = np.asarray(trades["trade_pnl"], np.float64)[np.asarray(trades["trade_closed"], bool)]
    else:
        pnl = np.asarray(trades, np.float64).reshape(-1)
    return int(pnl.size), int(np.sum(pnl > 0))
