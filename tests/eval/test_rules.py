"""jaxtrade.eval.rules: the moving-average schedules read rows < t only and match pandas' rolling means."""

import numpy as np
import pandas as pd
import pytest

from jaxtrade.eval import rules


def test_moving_averages_are_pandas_rolling_means_of_earlier_rows():
    close = np.random.default_rng(0).lognormal(0, 0.02, 80).cumprod() * 100
    start, n = 30, 49
    m = rules.moving_averages(close, start, n, 29)
    s = pd.Series(close)
    for w in (1, 5, 29):
        want = s.rolling(w).mean().shift(1).to_numpy()[start:start + n]   # rows t-w .. t-1
        np.testing.assert_allclose(m[:, w], want, rtol=1e-12)


def test_the_traded_row_and_later_rows_never_change_the_action():
    close = np.random.default_rng(1).lognormal(0, 0.02, 80).cumprod() * 100
    start, n = 30, 49
    base = rules.ma_actions(rules.moving_averages(close, start, n, 29), 3, 17, "trend")
    for i in (0, 10, 48):
        t = start + i
        bumped = close.copy()
        bumped[t:] *= 1.5
        acts = rules.ma_actions(rules.moving_averages(bumped, start, n, 29), 3, 17, "trend")
        np.testing.assert_array_equal(acts[:i + 1], base[:i + 1])


def test_rules_and_grid():
    m = np.full((2, 4), np.nan)
    m[:, 1], m[:, 3] = [1.0, 2.0], [1.5, 1.5]
    np.testing.assert_array_equal(rules.ma_actions(m, 1, 3, "trend"), [0, 1])
    np.testing.assert_array_equal(rules.ma_actions(m, 1, 3, "mean_reversion"), [1, 0])
    grid = rules.ma_grid(1, 30)
    assert len(grid) == 406 and grid[0] == (1, 2) and grid[-1] == (28, 29)
    with pytest.raises(ValueError, match="need start >= 29"):
        rules.moving_averages(np.ones(40), 10, 5, 29)
