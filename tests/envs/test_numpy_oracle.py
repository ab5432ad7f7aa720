"""The JAX `portfolio` env against the float64 numpy oracle (`numpy_oracle.py`), step by step.

Both start from the same reset draw and take the same actions with the same slippage draws (the
env's own `step_uniforms(key)`); at every one of 64 steps the observation, reward, value, costs,
turnover, weights, trade PnL, gate and end flags must agree to float32 precision.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from envs_testlib import envdata_from_close, synthetic_close

from jaxtrade import envs
from jaxtrade.envs import market
from tests.envs.numpy_oracle import NumpyPortfolio

N_STEPS = 64
RTOL = 1e-5


def _synthetic_gated():
    """4 assets with volume (the volume impact model) and a turbulence gate that acts on ~1/3 of rows."""
    close = synthetic_close(t=96, n=4, seed=3)
    rng = np.random.default_rng(4)
    turb = rng.gamma(2.0, 1.0, size=96)
    return envdata_from_close(close, start=8, turbulence=turb, threshold=np.quantile(turb, 0.67),
                              volume=rng.uniform(1e4, 1e5, size=close.shape))


def _actions(action_space: str, n_assets: int, seed: int):
    rng = np.random.default_rng(seed)
    if action_space == "regimes":
        return [np.int32(a) for a in rng.integers(0, len(envs.REGIMES), N_STEPS)]
    # Logits; about a third of them at -1e4 (weight exactly 0), so positions also close.
    logits = 2.0 * rng.normal(size=(N_STEPS, n_assets + 1))
    return list(np.where(rng.random(logits.shape) < 0.3, -1e4, logits).astype(np.float32))


CASES = {  # name: (data fixture or builder, make overrides, action space)
    "real_regimes": ("real_train", dict(window=30), "regimes"),
    "real_weights": ("real_train", dict(window=30), "weights"),
    "synthetic_gate_volume": (_synthetic_gated, dict(
        window=8, costs=dict(spread_bps=3.0, commission_bps=1.0, commission_per_share=0.005, adv_window=6),
        reward=dict(cost_penalty=0.5, drawdown_penalty=0.5)), "regimes"),
    "synthetic_assumed_adv_flat_fees": (_synthetic_gated, dict(
        window=8, costs=dict(impact_model="assumed_adv", assumed_adv_value=2e6, regulatory_fees="flat",
                             sec_fee_rate=2e-5)), "weights"),
    "synthetic_seed_impact": (_synthetic_gated, dict(window=8, costs=dict(impact_model="seed")), "regimes"),
}
# Not the differential Sharpe ratio: b - a^2 of the first steps' tiny EMAs loses float32's digits, so
# the JAX reward legitimately differs from float64 by 1e-4 relative there.


def _run_both(data, overrides, action_space, seed=0):
    env, params = envs.make("portfolio", data, dict(overrides, episode_length=N_STEPS,
                                                    action_space=action_space))
    core = env.unwrapped
    reset, step = jax.jit(core.reset), jax.jit(core.step)
    oracle = NumpyPortfolio(data, params, action_space=action_space)
    key = jax.random.key(seed)
    key, reset_key = jax.random.split(key)
    obs, state = reset(reset_key, params)
    want_obs = oracle.reset(u=float(jax.random.uniform(reset_key)))
    n = data.n_assets
    rows = []
    for i, action in enumerate(_actions(action_space, n, seed)):
        key, step_key = jax.random.split(key)
        for k in ("window", "state"):
            np.testing.assert_allclose(obs[k], want_obs[k], rtol=RTOL, atol=1e-6, err_msg=f"obs {k} step {i}")
        u = np.asarray(market.step_uniforms(step_key, n))   # the slippage draws `step` makes from its key
        obs, state, reward, done, info = step(step_key, state, action, params)
        want_obs, want_reward, want_done, want = oracle.step(action, u=u)
        value0 = want["value_before"]
        msg = f"step {i} (row {oracle.t - 1}, action {action})"
        np.testing.assert_allclose(info["value"], want["value"], rtol=RTOL, err_msg="value " + msg)
        np.testing.assert_allclose(reward, want_reward, rtol=RTOL, atol=1e-6, err_msg="reward " + msg)
        # Costs and PnL are differences of float32 amounts of the size of the portfolio: float32 precision
        # is relative to its value (1e-6 of 1e6 is one unit of currency), not to the cost itself.
        np.testing.assert_allclose(info["costs"], want["costs"], rtol=RTOL, atol=1e-6 * value0,
                                   err_msg="costs " + msg)
        np.testing.assert_allclose(info["turnover"], want["turnover"], rtol=RTOL, atol=1e-6,
                                   err_msg="turnover " + msg)
        np.testing.assert_allclose(obs["state"], want["weights"], atol=1e-6, err_msg="weights " + msg)
        for k in ("weights", "value_before"):              # contract keys, where the env emits them
            if k in info:
                np.testing.assert_allclose(info[k], want[k], rtol=RTOL, atol=1e-6, err_msg=f"{k} {msg}")
        np.testing.assert_array_equal(info["trade_closed"], want["trade_closed"], err_msg="closed " + msg)
        np.testing.assert_allclose(info["trade_pnl"], want["trade_pnl"], rtol=1e-4, atol=2e-6 * value0,
                                   err_msg="trade_pnl " + msg)
        for k in ("gate", "terminated", "truncated"):
            assert bool(info[k]) == bool(want[k]), f"{k} {msg}"
        assert bool(done) == want_done, "done " + msg
        np.testing.assert_allclose(info["episode_return"], want["episode_return"], rtol=1e-4, atol=1e-5)
        rows.append(want)
    return rows


@pytest.mark.parametrize("case", sorted(CASES))
def test_jax_portfolio_equals_numpy_oracle_step_by_step(case, request):
    source, overrides, action_space = CASES[case]
    data = request.getfixturevalue(source) if isinstance(source, str) else source()
    rows = _run_both(data, overrides, action_space)
    assert len(rows) == N_STEPS
    # The run must exercise what it pins: trades with costs, closed trades, the episode's end.
    assert sum(r["costs"] > 0 for r in rows) >= N_STEPS // 4
    assert sum(r["trade_closed"].any() for r in rows) >= 1
    assert rows[-1]["truncated"] and not any(r["truncated"] for r in rows[:-1])
    if action_space == "regimes":
        assert any(r["costs"] == 0 for r in rows)          # HOLD (or the gate on cash) trades nothing
    if case == "synthetic_gate_volume":
        assert 5 <= sum(r["gate"] for r in rows) <= N_STEPS - 5
