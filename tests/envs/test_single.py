"""The `single` environment: positions, trade PnL, mark-to-market accounting, costs, gate, resets."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from envs_testlib import (
    LEDGER_BPS,
    LEDGER_COSTS,
    envdata_from_close,
    fill_ledger,
    make_rollout,
    run_actions,
    synthetic_close,
)

from jaxtrade import envs

W = 8
SHORT, FLAT, LONG = 0, 1, 2
COSTS_OFF = dict(spread_bps=0.0, slippage_bps=0.0, impact_model="none", regulatory_fees="none")


@pytest.fixture(scope="module")
def one(tiny_data):
    """Asset 2 of the tiny data; costs on and off; whole-split episodes; jitted once for the module."""
    env, params = envs.make("single", tiny_data, dict(asset=2, window=W, random_start=False))
    _, free = envs.make("single", tiny_data, dict(asset=2, window=W, random_start=False, costs=COSTS_OFF))
    return env, params, free, jax.jit(env.reset), jax.jit(env.step)


def test_make(tiny_data):
    env, params = envs.make("single", tiny_data, dict(asset=2, window=W, episode_length=16))
    assert env.discrete and env.action_dim == 3
    np.testing.assert_array_equal(params.positions, [-1, 0, 1])
    np.testing.assert_array_equal(params.data.close[:, 0], tiny_data.close[:, 2])
    assert params.data.features.shape == (tiny_data.n_rows, 1, 3)
    obs, _ = env.reset(jax.random.key(0), params)
    assert obs["window"].shape == (W, 3 + 2) and obs["state"].shape == (2,)
    env5, p5 = envs.make("single", tiny_data, dict(positions=(-0.5, 0, 0.5, 1.0, 2.0), window=W,
                                                       episode_length=16))
    assert env5.action_dim == 5 and not env5.unwrapped.cash_floor   # |2.0| > 1: leverage allowed
    with pytest.raises(ValueError):
        envs.make("single", tiny_data, dict(asset=4, window=W))


def test_long_round_trip_pnl_pinned(one):
    env, _, free, reset, step = one
    out = run_actions(reset, step, free, [LONG, LONG, FLAT])
    close = np.asarray(free.data.close[:, 0], np.float64)
    t0 = int(out[0][1].t)
    shares = 1e6 / close[t0]
    assert [bool(o[4]["trade_closed"][0]) for o in out[1:]] == [False, False, True]
    np.testing.assert_allclose(out[3][4]["trade_pnl"][0], shares * (close[t0 + 2] - close[t0]), rtol=1e-5)
    # Long 1.0 of equity, marked every bar: V_{t+1} = shares * close[t+1].
    np.testing.assert_allclose(out[1][4]["value"], shares * close[t0 + 1], rtol=1e-6)
    assert float(out[2][4]["costs"]) == 0.0 and float(out[2][4]["turnover"]) == 0.0   # repeat = no trade


def test_flip_closes_trade_and_short_pnl(one):
    env, _, free, reset, step = one
    out = run_actions(reset, step, free, [LONG, SHORT, SHORT, LONG])
    close = np.asarray(free.data.close[:, 0], np.float64)
    t0 = int(out[0][1].t)
    closed = [bool(o[4]["trade_closed"][0]) for o in out[1:]]
    assert closed == [False, True, False, True]   # both flips close the trade before them
    h_long = 1e6 / close[t0]
    np.testing.assert_allclose(out[2][4]["trade_pnl"][0], h_long * (close[t0 + 1] - close[t0]), rtol=1e-5)
    h_short = float(out[2][1].holdings[0])
    assert h_short < 0
    np.testing.assert_allclose(h_short, -float(out[1][4]["value"]) / close[t0 + 1], rtol=1e-5)
    want = h_short * (close[t0 + 3] - close[t0 + 1])
    np.testing.assert_allclose(out[4][4]["trade_pnl"][0], want, rtol=1e-4)


def test_trade_pnl_with_costs_sums_to_value_change(one):
    """Every cost is inside the trades' PnL: from cash back to flat, sum(pnl) == value change."""
    env, params, _, reset, step = one
    out = run_actions(reset, step, params, [LONG, SHORT, FLAT, SHORT, LONG, LONG, FLAT])
    pnl = sum(float(o[4]["trade_pnl"][0]) for o in out[1:])
    np.testing.assert_allclose(pnl, float(out[-1][1].value) - 1e6, rtol=1e-4, atol=1.0)
    assert all(float(o[4]["costs"]) > 0 for i, o in enumerate(out[1:]) if i != 5)
    assert float(out[6][4]["costs"]) == 0.0
    assert float(out[-1][1].holdings[0]) == 0.0


def test_value_path_matches_an_independent_ledger(tiny_data):
    """Half-equity longs and shorts against `fill_ledger` (fills at close[t], spread + commission out
    of cash, the mark at close[t+1]); repeating the position held (FLAT from reset too) trades nothing."""
    config = dict(asset=1, positions=(-0.5, 0.0, 0.5), window=W, random_start=False, initial_cash=1e6,
                  costs=LEDGER_COSTS)
    env, params = envs.make("single", tiny_data, config)
    core = env.unwrapped
    actions = [FLAT, LONG, LONG, SHORT, SHORT, FLAT, LONG]
    out = run_actions(jax.jit(core.reset), jax.jit(core.step), params, actions)
    position = {SHORT: -0.5, FLAT: 0.0, LONG: 0.5}
    held = [0.0] + [position[a] for a in actions]
    targets = [None if p == q else [p] for p, q in zip(held[1:], held[:-1], strict=True)]
    close = np.asarray(tiny_data.close)[:, 1:2]
    want = fill_ledger(close, tiny_data.start, targets, cash=1e6, cost_bps=LEDGER_BPS)
    for (_, _, _, _, info), ref in zip(out[1:], want, strict=True):
        np.testing.assert_allclose(float(info["value_before"]), ref["value_before"], rtol=2e-6)
        np.testing.assert_allclose(float(info["value"]), ref["value"], rtol=2e-6)
        np.testing.assert_allclose(float(info["costs"]), ref["costs"], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(np.asarray(info["weights"]), ref["weights"], atol=2e-6)
    assert [ref["costs"] > 0 for ref in want] == [t is not None for t in targets] == [
        False, True, False, True, False, True, True]


def test_accounting_identity_real_index_data(real_index):
    """Shorts and longs on the S&P 500 index with its real volume (the square-root law on ADV)."""
    env, params = envs.make("single", real_index, dict(episode_length=64))
    assert params.costs.impact_model == "sqrt_adv"
    states, rewards, dones, infos, _ = make_rollout(env, 32, 96)(params, jax.random.key(0))
    close = np.asarray(real_index.close[:, 0], np.float64)
    h = np.asarray(states.holdings[..., 0], np.float64)
    cash = np.asarray(states.cash, np.float64)
    value = np.asarray(states.value, np.float64)
    rel = np.abs(value - (cash + h * close[np.asarray(states.t)])) / np.abs(value)
    assert rel.max() <= 1e-5, rel.max()
    assert (h < 0).any() and (h > 0).any()
    assert (cash >= 0).all()                      # no leverage: even long 1.0 pays its costs from cash
    costs = np.asarray(infos["costs"])
    assert (costs >= 0).all() and (costs > 0).any()
    assert np.asarray(infos["trade_closed"]).any()
    assert np.isfinite(np.asarray(rewards)).all()


def test_gate_moves_to_flat_from_short():
    close = synthetic_close(n=1)
    turb = np.ones(len(close))
    turb[W + 1] = 50.0                       # gates the step at row W + 2
    data = envdata_from_close(close, start=W, turbulence=turb)
    env, params = envs.make("single", data, dict(window=W, random_start=False, turbulence_threshold=10.0))
    out = run_actions(jax.jit(env.reset), jax.jit(env.step), params, [SHORT, SHORT, SHORT, SHORT])
    held = [float(o[1].holdings[0]) for o in out[1:]]
    gate = [bool(o[4]["gate"]) for o in out[1:]]
    assert gate == [False, False, True, False]
    assert held[0] < 0 and held[1] == held[0] and held[2] == 0.0 and held[3] < 0
    assert bool(out[3][4]["trade_closed"][0])


def test_leverage_allows_negative_cash(tiny_data):
    env, params = envs.make("single", tiny_data, dict(positions=(0.0, 2.0), window=W, random_start=False))
    _, s = env.reset(jax.random.key(0), params)
    _, s, *_ = env.step(jax.random.key(1), s, 1, params)
    assert float(s.cash) < -0.9e6           # borrowed about one equity
    # 2x the equity before costs; the ~3% impact of a 2x trade comes out of the equity.
    np.testing.assert_allclose(s.weights[0], 2.0, rtol=0.05)


def test_continuous_exposure_against_the_independent_ledger(tiny_data):
    """env.action_space='exposure': the action [1] is the target exposure, clipped to the positions'
    bounds and rounded to env.exposure_step; the value path is `fill_ledger`'s, and an exposure that
    rounds to the one held trades nothing."""
    # Bounds +-0.8 keep the book inside the cash floor (a buy to 1.0 would be scaled to pay its costs).
    config = dict(asset=1, positions=(-0.8, 0.0, 0.8), window=W, random_start=False, initial_cash=1e6,
                  costs=LEDGER_COSTS, action_space="exposure", exposure_step=0.05)
    env, params = envs.make("single", tiny_data, config)
    assert not env.discrete and env.action_spec == envs.ContinuousSpec((1,), -0.8, 0.8)
    assert env.unwrapped.action_names is None
    core = env.unwrapped
    actions = [[0.3], [0.31], [-0.449], [0.0], [0.72], [1.4], [1.2]]
    out = run_actions(jax.jit(core.reset), jax.jit(core.step), params, actions)
    held = [0.0, 0.3, 0.3, -0.45, 0.0, 0.7, 0.8, 0.8]   # 0.31 -> 0.3; -0.449 -> -0.45; 1.4, 1.2 -> 0.8
    targets = [None if p == q else [p] for p, q in zip(held[1:], held[:-1], strict=True)]
    close = np.asarray(tiny_data.close)[:, 1:2]
    want = fill_ledger(close, tiny_data.start, targets, cash=1e6, cost_bps=LEDGER_BPS)
    for (_, _, _, _, info), ref in zip(out[1:], want, strict=True):
        np.testing.assert_allclose(float(info["value"]), ref["value"], rtol=2e-6)
        np.testing.assert_allclose(float(info["costs"]), ref["costs"], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(np.asarray(info["weights"]), ref["weights"], atol=2e-6)
    assert [float(o[4]["costs"]) > 0 for o in out[1:]] == [t is not None for t in targets]


def test_exposure_baselines_hold_the_same_positions_as_the_discrete_ones(tiny_data):
    """The registration's baselines and constant policies act in the env's own action space: held
    exposure +1, 0 and -1 in "exposure" backtest to the same values as actions LONG, FLAT and SHORT in
    "positions"."""
    from jaxtrade.eval.backtest import backtest

    base = dict(asset=2, window=W, random_start=False, episode_length=20)
    discrete = envs.make("single", tiny_data, base)
    continuous = envs.make("single", tiny_data, dict(base, action_space="exposure"))
    hook = envs.registration("single")
    got = {}
    for label, (env, params) in {"positions": discrete, "exposure": continuous}.items():
        rows = hook.baselines(env, params)
        assert set(rows) == {"long_buy_hold", "flat", "short"}
        assert set(hook.constant_policies(env, params)) == {"position_-1", "position_+0", "position_+1"}
        got[label] = {name: backtest(*row)["value"].to_numpy() for name, row in rows.items()}
    for name in ("long_buy_hold", "flat", "short"):
        np.testing.assert_allclose(got["exposure"][name], got["positions"][name], rtol=1e-6, err_msg=name)
    assert np.ptp(got["positions"]["flat"]) == 0.0 and np.ptp(got["positions"]["short"]) > 0
    with pytest.raises(ValueError, match="majority voting needs discrete"):
        hook.hold_action(dict(action_space="exposure"))
    with pytest.raises(ValueError, match="action_space"):
        envs.make("single", tiny_data, dict(base, action_space="lots"))


def test_exposure_follows_float64_data_under_x64(tiny_data):
    """The book follows the data's float dtype: float64 data under `jax.enable_x64` keep every layout in
    float64 (the exposure action is cast to the data's dtype, not float32; the flat regulatory fee rates
    too), so the continuous exposure matches `fill_ledger` to float64 precision."""
    import jax.numpy as jnp

    from jaxtrade.data.envdata import astype

    config = dict(asset=1, positions=(-0.8, 0.0, 0.8), window=W, random_start=False, initial_cash=1e6,
                  costs=LEDGER_COSTS, action_space="exposure", exposure_step=0.05)
    actions = [[0.3], [0.31], [-0.449], [0.0], [0.72], [1.4], [1.2]]
    held = [0.0, 0.3, 0.3, -0.45, 0.0, 0.7, 0.8, 0.8]
    targets = [None if p == q else [p] for p, q in zip(held[1:], held[:-1], strict=True)]
    want = fill_ledger(np.asarray(tiny_data.close)[:, 1:2], tiny_data.start, targets, cash=1e6,
                       cost_bps=LEDGER_BPS)
    with jax.enable_x64(True):
        env, params = envs.make("single", astype(tiny_data, jnp.float64), config)
        core = env.unwrapped
        out = run_actions(jax.jit(core.reset), jax.jit(core.step), params,
                          [np.asarray(a, np.float64) for a in actions])
        assert out[-1][1].value.dtype == out[-1][1].holdings.dtype == jnp.float64
        for (_, _, _, _, info), ref in zip(out[1:], want, strict=True):
            np.testing.assert_allclose(float(info["value"]), ref["value"], rtol=1e-12)
            np.testing.assert_allclose(float(info["costs"]), ref["costs"], rtol=1e-9, atol=1e-9)
        fees = dict(LEDGER_COSTS, regulatory_fees="flat", sec_fee_rate=2.78e-5)
        _, flat = envs.make("single", astype(tiny_data, jnp.float64), dict(config, costs=fees))
        from jaxtrade.envs.costs import flat_fee_rates

        assert flat_fee_rates(flat.costs).dtype == jnp.float64
        hold = envs.registration("single").baselines(env, params)["flat"][0]
        assert hold.act.args[0].dtype == jnp.float64
