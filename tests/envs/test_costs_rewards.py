"""Cost and reward models: pinned numbers, zero at zero trade, >= 0, monotone, each off-able."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

from jaxtrade.envs import costs, lots, rewards
from jaxtrade.envs.costs import CostParams
from jaxtrade.envs.lots import LotParams
from jaxtrade.envs.rewards import RewardParams, RewardState

ALL_ON = CostParams(commission_bps=1.0, commission_per_share=0.005, spread_bps=2.0, spread_abs=0.01,
                    slippage_bps=5.0, impact_coef=0.01, impact_y=0.5, sec_fee_rate=27.8e-6,
                    regulatory_fees="flat")
ALL_OFF = CostParams(spread_bps=0.0, slippage_bps=0.0, impact_coef=0.0, impact_y=0.0, sec_fee_rate=0.0,
                     finra_taf_per_share=0.0, finra_taf_cap=0.0, regulatory_fees="flat")


def _cost(shares, p=ALL_ON, u=0.5, price=100.0, pv=1e6, impact_model="seed", sigma=0.02, adv=1e5,
          fee_rates=None):
    p = p.replace(impact_model=impact_model)
    shares = jnp.asarray(shares, jnp.float32)
    n = shares.shape[0]
    return np.asarray(costs.total_cost(jnp.full((n,), u), shares, jnp.full((n,), price), jnp.float32(pv), p,
                                       sigma=jnp.full((n,), sigma), adv=jnp.full((n,), adv),
                                       fee_rates=fee_rates))


def test_pinned_numbers():
    # Buy 100 shares at 100 (value 10,000) of a 1,000,000 portfolio, u = 0.5:
    # commission 1 bp + 0.005/share = 1.0 + 0.5; half of the quoted spreads, 2 bps / 2 + 0.01 / 2 per
    # share = 1.0 + 0.5; slippage 0.5 * 5 bps = 2.5; seed impact 0.01 * sqrt(0.01) * 10,000 = 10.0; no
    # fees on a buy.
    np.testing.assert_allclose(_cost([100.0]), [1.5 + 1.5 + 2.5 + 10.0], rtol=1e-5)
    # The same sale adds SEC 27.8e-6 * 10,000 = 0.278 and TAF 0.000166 * 100 = 0.0166.
    np.testing.assert_allclose(_cost([-100.0]), [15.5 + 0.278 + 0.0166], rtol=1e-5)
    # Square-root law: 0.5 * 0.02 * sqrt(100 / 1e5) * 10,000 = 3.1623 replaces the seed impact.
    np.testing.assert_allclose(_cost([100.0], impact_model="sqrt_adv"),
                               [5.5 + 0.5 * 0.02 * math.sqrt(1e-3) * 1e4], rtol=1e-5)
    np.testing.assert_allclose(_cost([100.0], impact_model="none"), [5.5], rtol=1e-6)


def test_a_round_trip_pays_the_quoted_spread_once_half_each_way():
    # Every spread parameter is the full quoted bid-ask spread. 100 shares at $50 (V = $5,000) with a
    # 4 bps quote = $0.02 a share = 2 pips of 0.01: each fill pays $1.00, the round trip
    # 4e-4 x 5,000 = $2.00, in bps of value, in price units and (FX lots) in pips alike.
    for p in (ALL_OFF.replace(spread_bps=4.0), ALL_OFF.replace(spread_abs=0.02)):
        buy, sell = (_cost([q], p=p, price=50.0, impact_model="none")[0] for q in (100.0, -100.0))
        assert buy == pytest.approx(1.0, rel=1e-6) and sell == pytest.approx(1.0, rel=1e-6)
        assert buy + sell == pytest.approx(4.0 * 1e-4 * 5_000.0, rel=1e-6)
    fx = LotParams(enabled=True, pip_size=0.01, spread_pips=2.0)
    np.testing.assert_allclose(lots.trade_cost(jnp.asarray([100.0, -100.0]), fx), [1.0, 1.0], rtol=1e-6)


def test_worked_example_equal_weight_entry_of_1m_into_20_large_caps():
    # The example: $1M split equally into 20 large US stocks = $50k orders. A stock at $100
    # trading 20M shares ($2B) a day at 1.5% daily volatility: impact = 0.5 * 0.015 * sqrt(500 / 2e7)
    # = 0.375 bps of the order (the seed model charged 0.01 * sqrt(0.05) = 22.4 bps).
    p = CostParams(spread_bps=0.0, slippage_bps=0.0, regulatory_fees="none")
    order = [500.0] * 20
    sq = _cost(order, p=p, impact_model="sqrt_adv", sigma=0.015, adv=2e7)
    np.testing.assert_allclose(sq / 5e4, 0.5 * 0.015 * math.sqrt(500 / 2e7), rtol=1e-5)
    assert sq.sum() / 1e6 < 1e-4                                   # well under 0.01% of the book
    seed = _cost(order, p=p, impact_model="seed")
    np.testing.assert_allclose(seed.sum() / 1e6, 0.01 * math.sqrt(0.05), rtol=1e-5)   # 0.22%
    # The defaults (half of a 2 bps quoted spread, mean 2.5 bps slippage, no commission) on top:
    # 1 + 2.5 = 3.5 bps + impact.
    full = _cost(order, p=CostParams(regulatory_fees="none"), impact_model="sqrt_adv", sigma=0.015, adv=2e7)
    np.testing.assert_allclose(full.sum() / 1e6, 3.5e-4 + sq.sum() / 1e6, rtol=1e-5)


def test_assumed_adv_is_the_square_root_law_on_an_assumed_traded_value():
    p = ALL_OFF.replace(impact_y=0.5, assumed_adv_value=1e9)
    # $100 stock: ADV 1e9 / 100 = 1e7 shares; 1,000 shares: 0.5 * 0.02 * sqrt(1e-4) * 1e5 = 10.0
    np.testing.assert_allclose(_cost([1000.0], p=p, impact_model="assumed_adv", adv=1e9 / 100.0), [10.0],
                               rtol=1e-5)


def test_taf_is_capped_per_trade():
    big = 1e6   # 1e6 shares * 0.000166 = 166 > cap 8.30
    p = ALL_OFF.replace(finra_taf_per_share=0.000166, finra_taf_cap=8.30)
    np.testing.assert_allclose(_cost([-big], p=p), [8.30], rtol=1e-6)
    np.testing.assert_allclose(_cost([big], p=p), [0.0])


def test_dated_fee_rates_come_from_the_row_passed_in():
    # regulatory_fees="us_schedule" reads the date's row (EnvData.fees[t]), not the flat fields.
    p = ALL_OFF.replace(regulatory_fees="us_schedule", sec_fee_rate=1.0)
    row = jnp.asarray([8.0e-6, 0.000166, 8.30, 0.00279], jnp.float32)
    np.testing.assert_allclose(_cost([-100.0], p=p, fee_rates=row), [8.0e-6 * 1e4 + 0.0166], rtol=1e-5)
    np.testing.assert_allclose(_cost([100.0], p=p, fee_rates=row), [0.0])
    assert _cost([-100.0], p=p.replace(regulatory_fees="none"))[0] == 0.0


@pytest.mark.parametrize("impact_model", ["seed", "sqrt_adv"])
def test_zero_trade_costs_exactly_zero_and_costs_nonnegative_monotone(impact_model):
    sizes = np.concatenate([-np.geomspace(1e5, 1e-3, 40), [0.0], np.geomspace(1e-3, 1e5, 40)])
    for u in (0.0, 0.37, 0.999):
        c = _cost(sizes, u=u, impact_model=impact_model)
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
    assert _cost([100.0], p=ALL_OFF.replace(impact_y=0.5), impact_model="sqrt_adv")[0] > 0


def test_unknown_modes_are_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="impact_model='sqrt'.*sqrt_adv"):
        _cost([1.0], impact_model="sqrt")
    with pytest.raises(ValueError, match="regulatory_fees='sec'"):
        _cost([1.0], p=ALL_ON.replace(regulatory_fees="sec"))


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
