"""Cost and reward models: pinned numbers, zero at zero trade, >= 0, monotone, each off-able."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

from jaxtrade.envs import costs, rewards
from jaxtrade.envs.costs import CostParams
from jaxtrade.envs.rewards import RewardParams, RewardState

ALL_ON = CostParams(commission_bps=1.0, commission_per_share=0.005, spread_bps=2.0, spread_abs=0.01,
                    slippage_bps=5.0, impact_coef=0.01, impact_k=0.5)
ALL_OFF = CostParams(spread_bps=0.0, slippage_bps=0.0, impact_coef=0.0, impact_k=0.0, sec_fee_rate=0.0,
                     finra_taf_per_share=0.0, finra_taf_cap=0.0)


def _cost(shares, p=ALL_ON, u=0.5, price=100.0, pv=1e6, volume_impact=False):
    p = p.replace(volume_impact=volume_impact)
    shares = jnp.asarray(shares, jnp.float32)
    n = shares.shape[0]
    return np.asarray(costs.total_cost(jnp.full((n,), u), shares, jnp.full((n,), price), jnp.float32(pv), p,
                                       sigma=jnp.full((n,), 0.02), adv=jnp.full((n,), 1e5)))


def test_pinned_numbers():
    # Buy 100 shares at 100 (value 10,000) of a 1,000,000 portfolio, u = 0.5:
    # commission 1 bp + 0.005/share = 1.0 + 0.5; spread 2 bps + 0.01/2 per share = 2.0 + 0.5;
    # slippage 0.5 * 5 bps = 2.5; value impact 0.01 * sqrt(0.01) * 10,000 = 10.0; no fees on a buy.
    np.testing.assert_allclose(_cost([100.0]), [1.5 + 2.5 + 2.5 + 10.0], rtol=1e-5)
    # The same sale adds SEC 27.8e-6 * 10,000 = 0.278 and TAF 0.000166 * 100 = 0.0166.
    np.testing.assert_allclose(_cost([-100.0]), [16.5 + 0.278 + 0.0166], rtol=1e-5)
    # Volume model: 0.5 * 0.02 * sqrt(100 / 1e5) * 10,000 = 3.1623 replaces the value impact.
    np.testing.assert_allclose(_cost([100.0], volume_impact=True), [6.5 + 0.5 * 0.02 * math.sqrt(1e-3) * 1e4],
                               rtol=1e-5)


def test_taf_is_capped_per_trade():
    big = 1e6   # 1e6 shares * 0.000166 = 166 > cap 8.30
    p = ALL_OFF.replace(finra_taf_per_share=0.000166, finra_taf_cap=8.30)
    np.testing.assert_allclose(_cost([-big], p=p), [8.30], rtol=1e-6)
    np.testing.assert_allclose(_cost([big], p=p), [0.0])


@pytest.mark.parametrize("volume_impact", [False, True])
def test_zero_trade_costs_exactly_zero_and_costs_nonnegative_monotone(volume_impact):
    sizes = np.concatenate([-np.geomspace(1e5, 1e-3, 40), [0.0], np.geomspace(1e-3, 1e5, 40)])
    for u in (0.0, 0.37, 0.999):
        c = _cost(sizes, u=u, volume_impact=volume_impact)
        assert c[40] == 0.0
        assert (c >= 0).all()
        # Monotone in |trade| on both sides.
        assert (np.diff(c[41:]) > 0).all()
        assert (np.diff(c[:40][::-1]) > 0).all()


def test_each_model_switches_off():
    assert (_cost([100.0, -100.0], p=ALL_OFF) == 0).all()
    on = {"commission_bps": 1.0, "commission_per_share": 0.01, "spread_bps": 2.0, "spread_abs": 0.02,
          "slippage_bps": 5.0, "impact_coef": 0.01, "sec_fee_rate": 1e-5, "finra_taf_per_share": 1e-4}
    for name, value in on.items():
        p = ALL_OFF.replace(**{name: value}, finra_taf_cap=10.0)
        assert _cost([-100.0], p=p)[0] > 0, name
    assert _cost([100.0], p=ALL_OFF.replace(impact_k=0.5), volume_impact=True)[0] > 0


def test_slippage_uniform_range():
    v = jnp.full((3,), 1e4)
    s = costs.slippage(jnp.array([0.0, 0.5, 0.9999]), v, CostParams())
    np.testing.assert_allclose(s, [0.0, 2.5, 5.0], atol=1e-3)   # 0 .. 5 bps of 10,000


def _dsr_oracle(rs, eta):
    a = b = 0.0
    out = []
    for r in rs:
        da, db = r - a, r * r - b
        var = b - a * a
        out.append((b * da - 0.5 * a * db) / var ** 1.5 if var > 1e-12 else 0.0)
        a, b = a + eta * da, b + eta * db
    return np.array(out)


def test_differential_sharpe_matches_python_loop():
    rs = np.random.default_rng(0).normal(0.001, 0.01, 50)
    a = b = jnp.float32(0)
    got = []
    for r in rs:
        d, a, b = rewards.differential_sharpe(jnp.float32(r), a, b, 0.05)
        got.append(float(d))
    np.testing.assert_allclose(got[1:], _dsr_oracle(rs, 0.05)[1:], rtol=2e-3, atol=1e-3)
    assert got[0] == 0.0   # no variance yet: no blow-up


def test_reward_terms_and_defaults():
    st = rewards.init_reward_state(jnp.float32(100.0))
    # Default: net log return only.
    r, st2 = rewards.reward(jnp.float32(100.0), jnp.float32(101.0), jnp.float32(0.3), st, RewardParams())
    np.testing.assert_allclose(r, math.log(1.01), rtol=1e-6)
    assert float(st2.peak) == 101.0
    # Cost penalty 2x of costs / V_t, drawdown penalty on 1 - 95/101, scale 10.
    st3 = RewardState(dsr_a=jnp.float32(0), dsr_b=jnp.float32(0), peak=jnp.float32(101.0))
    p = RewardParams(cost_penalty=2.0, drawdown_penalty=0.5, reward_scale=10.0)
    r, _ = rewards.reward(jnp.float32(100.0), jnp.float32(95.0), jnp.float32(1.0), st3, p)
    want = 10.0 * (math.log(0.95) - 2.0 * 0.01 - 0.5 * (1 - 95 / 101))
    np.testing.assert_allclose(r, want, rtol=1e-5)
    # Wipe-out stays finite.
    r, _ = rewards.reward(jnp.float32(100.0), jnp.float32(-5.0), jnp.float32(0), st, RewardParams())
    assert np.isfinite(float(r))
