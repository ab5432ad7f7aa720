"""The portfolio env's "shares" action layout (Yang et al. 2020) against an independent pandas ledger.

The ledger below is written from the rule in words (sells first, capped by holdings; then buys,
largest order first, each capped by the whole shares the remaining cash pays for with the 0.1%
commission; the turbulence gate sells everything and buys nothing; value marked at the next close),
not from the env's code. The env runs in float64 (`jax.enable_x64`) for the exact comparison (to
the cent on the first 50 trades, 1e-9 relative on the final value) and in float32, as training runs
it, to float32 round-off.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from envs_testlib import envdata_from_close, synthetic_close
from jax.tree_util import Partial

from jaxtrade import envs
from jaxtrade.data.envdata import astype
from jaxtrade.envs.base import Policy
from jaxtrade.envs.fixed_policies import step_count_init
from jaxtrade.eval.backtest import backtest

FEE = 0.001
CONFIG = dict(action_space="shares", random_start=False, window=1, hmax=100.0, initial_cash=20_000.0,
              costs=dict(commission_bps=10.0, spread_bps=0.0, slippage_bps=0.0, impact_model="none",
                         regulatory_fees="none"))


def _play(actions, key, i, obs):
    del key, obs
    return actions[i], i + 1


def scripted(actions) -> Policy:
    """Plays row i of `actions` [n_steps, N] at step i."""
    return Policy(init=step_count_init, act=Partial(_play, jnp.asarray(actions)))


def pandas_ledger(close: pd.DataFrame, turbulence: pd.Series, threshold: float, actions: np.ndarray, *,
                  start: int, cash: float, hmax: float, fee: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(trades, days): one row per (day, asset) traded (shares, amount, cost), and per day the value
    before the trade and after marking at the next close."""
    holdings = pd.Series(0.0, index=close.columns)
    trades, days = [], []
    for k, t in enumerate(range(start, len(close) - 1)):
        price = close.iloc[t]
        value_before = cash + float((holdings * price).sum())
        order = pd.Series(np.clip(actions[k], -1.0, 1.0) * hmax, index=close.columns)
        gated = turbulence.iloc[t - 1] > threshold
        day_trades = []
        for sym in close.columns:                                   # 1. sells
            q = holdings[sym] if gated else min(max(-order[sym], 0.0), holdings[sym])
            if q > 0:
                amount = q * price[sym]
                cash += amount - fee * amount
                holdings[sym] -= q
                day_trades.append((t, sym, -q, -amount, fee * amount))
        if not gated:                                               # 2. buys, largest order first
            buys = sorted((s for s in close.columns if order[s] > 0),
                          key=lambda s: (-order[s], list(close.columns).index(s)))
            for sym in buys:
                unit = price[sym] * (1.0 + fee)
                q = min(order[sym], max(math.floor(cash / unit), 0))
                if q > 0:
                    cash -= q * unit
                    holdings[sym] += q
                    day_trades.append((t, sym, q, q * price[sym], fee * q * price[sym]))
        trades += day_trades
        value_after = cash + float((holdings * close.iloc[t + 1]).sum())
        days.append((t, value_before, value_after, sum(c for *_, c in day_trades), gated, cash,
                     *(holdings * price)))
    columns = ["t", "value_before", "value", "cost", "gated", "cash", *[f"pos_{s}" for s in close.columns]]
    return (pd.DataFrame(trades, columns=["t", "symbol", "shares", "amount", "cost"]),
            pd.DataFrame(days, columns=columns).set_index("t"))


@pytest.fixture(scope="module")
def world():
    """60 rows of 4 synthetic stocks (2 history rows), a gate that fires on ~1 day in 5, and random
    orders in [-1.3, 1.3] (clipped), sized so that cash binds on many days."""
    data = envdata_from_close(synthetic_close(t=60, n=4, seed=3), start=2, threshold=3.0, seed=5)
    actions = np.random.default_rng(7).uniform(-1.3, 1.3, (data.n_rows - 1 - data.start, 4))
    return data, actions


def _ledger_of(data, actions):
    close = pd.DataFrame(np.asarray(data.close, np.float64))
    turb = pd.Series(np.asarray(data.turbulence, np.float64))
    return pandas_ledger(close, turb, float(data.turbulence_threshold), actions, start=data.start,
                         cash=CONFIG["initial_cash"], hmax=CONFIG["hmax"], fee=FEE)


def test_shares_layout_matches_pandas_ledger_float64(world):
    data, actions = world
    trades, days = _ledger_of(data, actions)
    assert days.gated.sum() >= 5 and (~days.gated).sum() >= 30          # both regimes exercised
    assert (days.cash < CONFIG["hmax"] * 60).sum() >= 10                 # cash binds on many days
    assert len(trades) >= 50
    with jax.enable_x64(True):
        env, params = envs.make("portfolio", astype(data, jnp.float64), CONFIG)
        frame = backtest(scripted(actions), env, params)
    assert params.data.close.dtype == jnp.float64
    ours = frame.iloc[:-1].reset_index(drop=True)
    ours.index = days.index
    traded = ours.turnover * ours.value                                  # |traded value| per day
    ledger_traded = trades.amount.abs().groupby(trades.t).sum().reindex(days.index, fill_value=0)
    first50 = sorted(trades.t.unique())[:50]          # the days of the first 50 trade days (>= 50 trades)
    np.testing.assert_allclose(traded[first50], ledger_traded[first50], atol=0.005)
    np.testing.assert_allclose(ours.costs[first50], days.cost[first50], atol=0.005)
    np.testing.assert_allclose(ours.value[first50], days.value_before[first50], atol=0.005)
    # each asset's position after the trade: its weight x the value after costs at close[t]
    post = ours.value - ours.costs
    for i in range(4):
        np.testing.assert_allclose((ours[f"w_{i}"] * post)[first50], days[f"pos_{i}"][first50], atol=0.005)
    assert (ours.gate == days.gated).all()
    assert frame.value.iloc[-1] == pytest.approx(days.value.iloc[-1], rel=1e-9)


def test_shares_layout_float32_within_roundoff(world):
    data, actions = world
    _, days = _ledger_of(data, actions)
    env, params = envs.make("portfolio", data, CONFIG)
    frame = backtest(scripted(actions), env, params)
    assert frame.value.iloc[-1] == pytest.approx(days.value.iloc[-1], rel=2e-5)


def test_shares_rule_by_hand():
    """Prices 10 and 20, $1,000, 0.1%: [1, 1] buys 99 of the first (tie: lower index first; 99 x 10.01 =
    990.99) and none of the second (9.01 left); [0.5, 1] buys 49 of the second first (980.98), then
    1 of the first (19.02 left: one share at 10.01). A sell of -0.3 x 100 sells only the 10 held."""
    close = np.tile([10.0, 20.0], (6, 1))
    data = envdata_from_close(close, start=1, threshold=np.inf)
    env, params = envs.make("portfolio", data, dict(CONFIG, initial_cash=1000.0))
    core = env.unwrapped

    def first_trade(action, holdings=None):
        _, state = core.reset(jax.random.key(0), params)
        if holdings is not None:
            state = state.replace(holdings=jnp.asarray(holdings, jnp.float32))
        state, *_ = core.transition(jnp.zeros(2), state, jnp.asarray(action, jnp.float32), params)
        return np.asarray(state.holdings), float(state.cash)

    h, cash = first_trade([1.0, 1.0])
    np.testing.assert_allclose(h, [99.0, 0.0])
    assert cash == pytest.approx(1000 - 990.99, abs=1e-3)
    h, cash = first_trade([0.5, 1.0])
    np.testing.assert_allclose(h, [1.0, 49.0])
    assert cash == pytest.approx(1000 - 980.98 - 10.01, abs=1e-3)
    h, cash = first_trade([-0.3, 0.0], holdings=[10.0, 0.0])
    np.testing.assert_allclose(h, [0.0, 0.0])
    assert cash == pytest.approx(1000 + 100 * (1 - FEE), abs=1e-3)


def test_gate_sells_everything_and_buys_nothing():
    close = np.tile([10.0, 20.0], (6, 1))
    data = envdata_from_close(close, start=1, threshold=1.0, turbulence=np.full(6, 2.0))
    env, params = envs.make("portfolio", data, dict(CONFIG, initial_cash=1000.0))
    core = env.unwrapped
    _, state = core.reset(jax.random.key(0), params)
    state = state.replace(holdings=jnp.asarray([5.0, 3.0], jnp.float32))
    state, _, _, info = core.transition(jnp.zeros(2), state, jnp.asarray([1.0, -0.01], jnp.float32), params)
    np.testing.assert_array_equal(np.asarray(state.holdings), [0.0, 0.0])
    assert bool(info["gate"])
    assert float(state.cash) == pytest.approx(1000 + 110 * (1 - FEE), abs=1e-3)
    assert env.action_spec.shape == (2,) and (env.action_spec.low, env.action_spec.high) == (-1.0, 1.0)
