"""Minimum variance: the right optimum, and no look-ahead (perturbing rows >= t leaves weights at t; the
schedule equals a plain-numpy causal oracle, also as the `baselines` backtest trades it)."""

import os

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

import jaxtrade.envs as envs
from jaxtrade.envs.minvar import ledoit_wolf, min_variance_schedule, min_variance_weights, month_starts
from jaxtrade.eval.baselines import baselines
from tests.eval.conftest import envdata_from_close

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "jaxtrade", "datasets",
                    "sp500_20_stocks_adjclose.csv.gz")
COSTS_OFF = dict(spread_bps=0.0, slippage_bps=0.0, impact_coef=0.0, sec_fee_rate=0.0, finra_taf_per_share=0.0)


@pytest.fixture(scope="module")
def prices():
    return pd.read_csv(DATA, index_col=0, parse_dates=True).loc["2015-06-01":"2016-12-31"]


def test_min_variance_matches_scipy(prices):
    cov = ledoit_wolf(np.diff(np.log(prices.to_numpy()), axis=0)[-252:])
    w = min_variance_weights(cov)
    n = cov.shape[0]
    ref = minimize(lambda x: x @ cov @ x, np.full(n, 1 / n), jac=lambda x: 2 * cov @ x, method="SLSQP",
                   bounds=[(0, 1)] * n, constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1}],
                   options={"ftol": 1e-15, "maxiter": 1000})
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0, abs=1e-12)
    assert w @ cov @ w <= ref.fun * (1 + 1e-6)
    np.testing.assert_allclose(w, ref.x, atol=1e-4)
    assert (w < 1e-9).sum() >= 1          # long-only binds on this data: some assets get zero weight


def test_no_look_ahead(prices):
    close = prices.to_numpy()
    rows = month_starts(prices.index, 150)
    base = min_variance_schedule(close, rows, window=126)
    rng = np.random.default_rng(0)
    for k in (1, len(rows) // 2, len(rows) - 1):
        t = rows[k]
        bumped = close.copy()
        bumped[t:] *= np.exp(rng.normal(0, 0.2, bumped[t:].shape))      # rewrite row t and everything after
        new = min_variance_schedule(bumped, rows, window=126)
        np.testing.assert_array_equal(new[: k + 1], base[: k + 1])       # rebalances <= t: unchanged
        assert not np.allclose(new[k + 1:], base[k + 1:]) or k == len(rows) - 1
    # Row t-1 does matter: the weights at t are not just stale.
    t = rows[1]
    bumped = close.copy()
    bumped[t - 1] *= 1.3
    assert not np.allclose(min_variance_schedule(bumped, rows, window=126)[1], base[1])


def test_month_starts(prices):
    rows = month_starts(prices.index, 3)
    assert rows[0] == 3
    assert all(prices.index[r].month != prices.index[r - 1].month for r in rows[1:])
    assert len(rows) == 19    # 2015-06 (from row 3) .. 2016-12


def _causal_oracle(close, rows, window, min_rows=20):
    """Plain numpy: the weights at row t from the closes of rows t-window-1 .. t-1 only (window log
    returns, the last one into row t-1); fewer than min_rows returns -> equal weights."""
    out = []
    for t in rows:
        logp = np.log(np.asarray(close[max(0, t - window - 1):t], np.float64))     # rows < t only
        ret = logp[1:] - logp[:-1]
        n = close.shape[1]
        out.append(np.full(n, 1.0 / n) if len(ret) < min_rows else min_variance_weights(ledoit_wolf(ret)))
    return np.asarray(out)


def test_schedule_equals_a_causal_oracle(prices):
    close = prices.to_numpy()[:, :6]
    rows = month_starts(prices.index, 3)
    got = min_variance_schedule(close, rows, window=60)
    np.testing.assert_allclose(got, _causal_oracle(close, rows, 60), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(got[0], 1 / 6)               # row 3: two returns, equal weights
    ahead = _causal_oracle(close, rows + 1, 60)                 # one day ahead: measurably different
    assert np.abs(ahead[2:] - got[2:]).max() > 1e-2


def test_min_variance_baseline_trades_the_causal_schedule(prices):
    """Through `baselines` (history rows, split offset, holding between rebalances, the env's trade at
    close[t]): the weights right after each monthly trade are the plain-numpy causal schedule of the
    closes before that day, and rewriting every close from a rebalance day on leaves them unchanged."""
    w, h, window = 5, 100, 60
    px = prices[["JNJ", "PG", "WMT", "XOM"]].loc["2015-06-01":"2016-06-30"]
    full = px.to_numpy()                    # h history rows (before the split), then the split's rows

    def run(full):
        class Split:
            dates = px.index[h:]
            symbols = tuple(px.columns)
            close = full[h:]
            benchmark = None

        env, params = envs.make("portfolio", envdata_from_close(full[h:], start=w),
                                dict(window=w, random_start=False, costs=COSTS_OFF))
        return baselines(env, params, Split, history=full[:h], cov_window=window,
                         include=["min_variance"])["min_variance"][0]

    wcols = [f"w_{s}" for s in px.columns]
    frame = run(full)
    traded = np.flatnonzero(frame["turnover"].to_numpy() > 0)
    rows_full = traded + h + w                                   # frame row i is split row w + i
    assert traded[0] == 0 and len(traded) == 9                  # the first day, then 8 month starts
    assert (px.index[rows_full[1:]].month != px.index[rows_full[1:] - 1].month).all()
    want = _causal_oracle(full, rows_full, window)
    assert np.abs(want - 0.25).max() > 0.05                       # not equal weight
    np.testing.assert_allclose(frame[wcols].to_numpy()[traded], want, atol=1e-5)   # float32, cash margin

    k = 3                                                          # the 4th rebalance
    bumped = full.copy()
    bumped[rows_full[k]:] *= np.exp(np.random.default_rng(0).normal(0, 0.05, bumped[rows_full[k]:].shape))
    before, after = frame[wcols].to_numpy()[traded], run(bumped)[wcols].to_numpy()[traded]
    np.testing.assert_allclose(after[:k + 1], before[:k + 1], atol=1e-5)        # rebalances <= that day
    assert not np.allclose(after[k + 1:], before[k + 1:], atol=1e-3)
