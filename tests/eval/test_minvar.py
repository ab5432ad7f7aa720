"""Minimum variance: the right optimum, and no look-ahead (perturbing rows >= t leaves weights at t)."""

import os

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

from jaxtrade.eval.minvar import ledoit_wolf, min_variance_schedule, min_variance_weights, month_starts

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "jaxtrade", "datasets",
                    "sp500_20_stocks_adjclose.csv.gz")


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
