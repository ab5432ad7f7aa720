"""The `portfolio` environment: accounting, costs, regimes, timing, gate, determinism, batching, resets."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from envs_testlib import (
    LEDGER_BPS,
    LEDGER_COSTS,
    envdata_from_close,
    fill_ledger,
    make_rollout,
    perturb_rows,
    run_actions,
    synthetic_close,
)

from jaxtrade import envs
from jaxtrade.envs import market
from jaxtrade.envs.portfolio import (
    Regime,
    factor_rank_table,
    factor_ranks,
    rank,
    regime_target_weights,
    size_scores,
    weights_from_action,
    weights_to_action,
)

W, L = 8, 16


@pytest.fixture(scope="module")
def tiny(tiny_data):
    """(env, params, reset, step): tiny data, whole-split episodes, jitted once for the module."""
    env, params = envs.make("portfolio", tiny_data, dict(window=W, episode_length=L, random_start=False))
    return env, params, jax.jit(env.reset), jax.jit(env.step)


# ------------------------------------------------------------------------------------------ regimes


def test_regime_weights_pinned():
    mom = jnp.array([0.1, -0.2, 0.3, 0.0])
    vol = jnp.array([0.01, 0.03, 0.02, 0.005])
    sharpe = jnp.array([1.0, 2.0, -1.0, 0.0])
    size = jnp.array([5.0, 1.0, 3.0, 2.0])
    current = jnp.array([0.1, 0.2, 0.3, 0.1, 0.3])
    want = {
        Regime.HOLD: current,
        Regime.FULL_CASH: [0, 0, 0, 0, 1],
        Regime.DEFENSIVE: [0.125] * 4 + [0.5],
        Regime.LIGHT_CASH: [0.1875] * 4 + [0.25],
        Regime.EQUAL_WEIGHT: [0.25] * 4 + [0],
        Regime.MOMENTUM: [0.5, 0, 0.5, 0, 0],          # top half by momentum: assets 2, 0
        Regime.LOW_VOL: [0.5, 0, 0, 0.5, 0],           # lowest volatility: 3, 0
        Regime.QUALITY: [0.5, 0.5, 0, 0, 0],           # top Sharpe: 1, 0
        Regime.SIZE_SMALL: [0, 0.5, 0, 0.5, 0],        # smallest size: 1, 3
        Regime.SAFE_MOMENTUM: [0.35, 0, 0.35, 0, 0.3],
        Regime.SAFE_QUALITY: [0.35, 0.35, 0, 0, 0.3],
        Regime.RISK_ON: [0, 0, 1, 0, 0],               # top 30% of 4 = 1 asset
    }
    for regime, w in want.items():
        got = regime_target_weights(jnp.int32(regime), mom, vol, sharpe, size, current)
        np.testing.assert_allclose(got, w, atol=1e-7, err_msg=regime.name)
    tilted = regime_target_weights(jnp.int32(Regime.MOMENTUM), mom, vol, sharpe, size, current, tilt=0.8)
    np.testing.assert_allclose(tilted, [0.4, 0.1, 0.4, 0.1, 0.0], atol=1e-7)


def test_regime_weights_nonnegative_sum_to_one():
    rng = np.random.default_rng(0)
    n = 20
    scores = [jnp.asarray(rng.normal(size=(64, n)), jnp.float32) for _ in range(4)]
    current = jax.nn.softmax(jnp.asarray(rng.normal(size=(64, n + 1)), jnp.float32))
    fn = jax.jit(jax.vmap(jax.vmap(regime_target_weights, (0, None, None, None, None, None)),
                          (None, 0, 0, 0, 0, 0)))
    w = np.asarray(fn(jnp.arange(12), *scores, current))          # [64, 12, N + 1]
    assert (w >= 0).all()
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-6)
    assert ((w[:, Regime.RISK_ON, :n] > 0).sum(-1) == 6).all()   # top 30% of 20
    assert ((w[:, Regime.MOMENTUM, :n] > 0).sum(-1) == 10).all()


def test_rank_pinned_ties_to_lower_index():
    np.testing.assert_array_equal(rank(jnp.array([1.0, 3.0, 1.0, 2.0, 3.0])), [3, 0, 4, 2, 1])
    np.testing.assert_array_equal(rank(jnp.zeros(4)), [0, 1, 2, 3])


@pytest.mark.parametrize("n_assets", [4, 300])   # 300: the table is built in row chunks with a remainder
def test_factor_rank_table_equals_on_the_fly_ranking(n_assets):
    data = envdata_from_close(synthetic_close(t=40, n=n_assets, seed=n_assets), start=0)
    table = np.asarray(factor_rank_table(data))
    assert table.shape == (40, 5, n_assets) and table.dtype == np.int32
    want = np.stack([np.asarray(factor_ranks(data.momentum[t], data.volatility[t], data.sharpe[t],
                                             data.size[t])) for t in range(40)])
    np.testing.assert_array_equal(table, want)
    # Each row is a permutation: a ranking, not a score.
    np.testing.assert_array_equal(np.sort(table, axis=-1), np.broadcast_to(np.arange(n_assets), table.shape))
    np.testing.assert_array_equal(table[:, 0], np.broadcast_to(np.arange(n_assets), (40, n_assets)))


def test_env_targets_from_table_equal_regime_target_weights(real_train):
    """The env's targets (gathered from `factor_rank_table`) are exactly `regime_target_weights` of
    row t-1's factor scores, for every regime, many rows, two tilts and out-of-range actions."""
    env, params = envs.make("portfolio", real_train, {"factor_tilt": 0.7})
    core, data = env.unwrapped, params.data
    _, state = env.reset(jax.random.key(0), params)
    rows = jnp.arange(data.start, data.n_rows - 1, 37)
    current = jax.nn.softmax(jax.random.normal(jax.random.key(1), (len(rows), data.n_assets + 1)))
    actions = jnp.arange(-1, 13)

    def env_target(action, t, w, params):
        target, keep = core.target(action, state.replace(t=t, weights=w), params)
        return target, keep

    def oracle(action, t, w, tilt):
        p = t - 1
        return regime_target_weights(action, data.momentum[p], data.volatility[p], data.sharpe[p],
                                     size_scores(data)[p], w, tilt)[:-1]

    for tilt_params in (params, params.replace(factor_tilt=jnp.float32(1.0))):
        got, keep = jax.jit(jax.vmap(jax.vmap(env_target, (0, None, None, None)), (None, 0, 0, None)))(
            actions, rows, current, tilt_params)
        want = jax.jit(jax.vmap(jax.vmap(oracle, (0, None, None, None)), (None, 0, 0, None)))(
            actions, rows, current, tilt_params.factor_tilt)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
        np.testing.assert_array_equal(np.asarray(keep), np.broadcast_to(np.asarray(actions) == 0, keep.shape))


# ------------------------------------------------------------------------------------ exact costs


def test_hold_and_full_cash_from_cash_cost_exactly_zero(tiny):
    env, params, reset, step = tiny
    out = run_actions(reset, step, params, [Regime.FULL_CASH, Regime.HOLD, Regime.EQUAL_WEIGHT, Regime.HOLD,
                                     Regime.HOLD])
    cash0 = float(params.initial_cash)
    for i in (1, 2):   # FULL_CASH and HOLD from cash
        _, s, r, _, info = out[i]
        assert float(info["costs"]) == 0.0 and float(info["turnover"]) == 0.0
        assert float(s.cash) == cash0 and float(s.value) == cash0 and float(r) == 0.0
        assert (np.asarray(s.holdings) == 0).all()
    assert float(out[3][4]["costs"]) > 0                  # the buy pays
    for i in (4, 5):   # HOLD with positions: no trade at all
        _, s, _, _, info = out[i]
        assert float(info["costs"]) == 0.0 and float(info["turnover"]) == 0.0
        assert (np.asarray(s.holdings) == np.asarray(out[3][1].holdings)).all()
        assert float(s.cash) == float(out[3][1].cash)


def test_costs_grow_with_trade_size(tiny):
    env, params, reset, step = tiny
    paid = [float(run_actions(reset, step, params, [a])[1][4]["costs"])
            for a in (Regime.FULL_CASH, Regime.LIGHT_CASH, Regime.DEFENSIVE, Regime.EQUAL_WEIGHT)]
    # Invested share 0, 25%... no: 0, 75%, 50%, 100% of value bought from cash.
    assert paid[0] == 0.0 and 0 < paid[2] < paid[1] < paid[3]


# ------------------------------------------------------------------------------------- accounting


@pytest.mark.parametrize("action_space,n_envs,n_steps", [("regimes", 64, 160), ("weights", 16, 64)])
def test_accounting_identity_real_data(real_train, action_space, n_envs, n_steps):
    """value == cash + sum(holdings * close[t]) after every step; long only; cash never negative."""
    env, params = envs.make("portfolio", real_train, dict(action_space=action_space, episode_length=64))
    states, rewards, dones, infos, _ = make_rollout(env, n_envs, n_steps)(params, jax.random.key(0))
    close = np.asarray(real_train.close, np.float64)
    t = np.asarray(states.t)
    h = np.asarray(states.holdings, np.float64)
    cash = np.asarray(states.cash, np.float64)
    value = np.asarray(states.value, np.float64)
    marked = cash + np.einsum("sen,sen->se", h, close[t])
    rel = np.abs(value - marked) / np.abs(value)
    assert rel.max() <= 1e-5, rel.max()
    assert (cash >= 0).all() and (h >= 0).all()
    assert (np.asarray(infos["costs"]) >= 0).all()
    assert np.isfinite(np.asarray(rewards)).all()
    # Where an episode goes on, info["value"] is the state's value.
    going = ~np.asarray(dones)
    np.testing.assert_array_equal(np.asarray(infos["value"])[going], value[going])
    assert np.asarray(dones).sum() >= n_envs * (n_steps // 64 - 1)   # episodes of 64 steps ended
    if action_space == "regimes":
        assert n_envs * n_steps >= 10_000


def test_info_weights_before_and_after_the_mark(tiny):
    """info["weights"]: right after the trade, at close[t]; info["weights_marked"]: the same holdings
    at close[t+1] (where the next step starts); info["value_before"]: the value the trade started from."""
    env, params, reset, step = tiny
    out = run_actions(reset, step, params, [Regime.MOMENTUM, Regime.HOLD])
    (_, s1, _, _, info1), (_, s, _, _, info) = out[1], out[2]
    w = np.asarray(info["weights_marked"])
    np.testing.assert_allclose(w.sum(), 1.0, rtol=1e-6)
    price = np.asarray(params.data.close[int(s.t)])
    np.testing.assert_allclose(w[:-1], np.asarray(s.holdings) * price / float(s.value), rtol=1e-6)
    assert (w[:-1] > 0).sum() == 2   # the momentum half of 4 assets
    np.testing.assert_array_equal(info["weights"], s.weights)
    price_t = np.asarray(params.data.close[int(s.t) - 1], np.float64)
    held = np.asarray(s.holdings, np.float64) * price_t
    np.testing.assert_allclose(np.asarray(info["weights"])[:-1], held / (float(s.cash) + held.sum()),
                               rtol=1e-5)
    assert not np.allclose(info["weights"], info["weights_marked"])      # prices moved
    assert float(info["value_before"]) == float(info1["value"]) == float(s1.value)
    assert float(out[1][4]["value_before"]) == float(params.initial_cash)


def test_value_path_matches_an_independent_ledger(tiny_data):
    """The env's info (value before and after, costs, turnover, weights) against `fill_ledger`: fills
    at close[t], spread + commission (bps of |traded value|) out of cash, the mark at close[t+1].
    Targets keep >= 10% cash, so the cash floor never scales a buy."""
    env, params = envs.make("portfolio", tiny_data, dict(action_space="weights", window=W, random_start=False,
                                                         initial_cash=1e6, costs=LEDGER_COSTS))
    core = env.unwrapped
    targets = np.array([[0.4, 0.1, 0.2, 0.2, 0.1], [0.1, 0.4, 0.2, 0.1, 0.2], [0.1, 0.4, 0.2, 0.1, 0.2],
                        [0.0, 0.0, 0.5, 0.3, 0.2], [0.3, 0.3, 0.0, 0.0, 0.4], [0.0, 0.0, 0.0, 0.0, 1.0]])
    actions = [weights_to_action(w) for w in targets]
    out = run_actions(jax.jit(core.reset), jax.jit(core.step), params, actions)
    want = fill_ledger(tiny_data.close, tiny_data.start, targets[:, :-1], cash=1e6, cost_bps=LEDGER_BPS)
    for (_, _, _, _, info), ref in zip(out[1:], want, strict=True):
        np.testing.assert_allclose(float(info["value_before"]), ref["value_before"], rtol=2e-6)
        np.testing.assert_allclose(float(info["value"]), ref["value"], rtol=2e-6)
        np.testing.assert_allclose(float(info["costs"]), ref["costs"], rtol=1e-4)
        np.testing.assert_allclose(float(info["turnover"]), ref["turnover"], rtol=1e-4)
        np.testing.assert_allclose(np.asarray(info["weights"]), ref["weights"], atol=2e-6)
    assert all(ref["costs"] > 10.0 for ref in want)             # every step trades (drift is rebalanced)


# ---------------------------------------------------------------------------------- weights actions


def test_weights_to_action_round_trip():
    w = jnp.array([0.5, 0.0, 0.2, 0.1, 0.2])
    back = np.asarray(weights_from_action(weights_to_action(w)))
    np.testing.assert_allclose(back, w, atol=1e-7)
    assert back[1] == 0.0


def test_weights_action_reaches_exact_targets(tiny_data):
    off = dict(spread_bps=0.0, slippage_bps=0.0, impact_model="none", regulatory_fees="none")
    w = jnp.array([0.4, 0.0, 0.3, 0.1, 0.2])
    for costs_on in (False, True):
        env, params = envs.make("portfolio", tiny_data, dict(action_space="weights", window=W,
                                random_start=False, costs={} if costs_on else off))
        assert not env.discrete and env.action_dim == 5
        _, s = env.reset(jax.random.key(0), params)
        _, s, *_ = env.step(jax.random.key(1), s, weights_to_action(w), params)
        if costs_on:   # costs come out of cash, and cash stays >= 0
            assert float(s.cash) >= 0 and float(s.weights[-1]) < 0.2
            np.testing.assert_allclose(s.weights, w, atol=0.01)
        else:          # s.weights: right after the trade, at close[t]
            np.testing.assert_allclose(s.weights, w, atol=1e-6)


# ---------------------------------------------------------------------------------- turbulence gate


def test_turbulence_gate_on_planted_day():
    close = synthetic_close()
    turb = np.ones(len(close))
    planted = W + 3                        # turbulence of rows `planted`, `planted + 1` far above
    turb[planted:planted + 2] = 100.0
    data = envdata_from_close(close, start=W, turbulence=turb, threshold=5.0)   # data's default threshold
    env, params = envs.make("portfolio", data, dict(window=W, random_start=False))
    out = run_actions(jax.jit(env.reset), jax.jit(env.step), params, [Regime.EQUAL_WEIGHT] * 7)
    gate = [bool(o[4]["gate"]) for o in out[1:]]
    # The step at row t reads turbulence[t - 1]: rows planted + 1 and planted + 2 are gated.
    assert gate == [False, False, False, False, True, True, False]
    for i, (_, s, *_) in enumerate(out[1:]):
        held = np.asarray(s.holdings)
        if gate[i]:
            assert (held == 0).all() and float(s.cash) == float(s.value)   # all cash, no buys
        else:
            assert (held > 0).all()
    assert float(out[5][4]["turnover"]) > 0.9       # the gate sold everything
    assert float(out[6][4]["turnover"]) == 0.0      # and refused the buy the day after


# ------------------------------------------------------------------------------ determinism, vmap


def test_same_key_same_trajectory(tiny_data):
    env, params = envs.make("portfolio", tiny_data, dict(window=W, episode_length=L))
    run = make_rollout(env, 4, 24)
    a, b, c = run(params, jax.random.key(7)), run(params, jax.random.key(7)), run(params, jax.random.key(8))
    jax.tree.map(np.testing.assert_array_equal, a, b)
    assert not np.array_equal(a[1], c[1])


_MONEY = ("cash", "value", "position_cash", "peak", "trade_pnl", "costs")


def _assert_same(batched, one, e):
    """Leaf-wise equality up to float32 reduction order: money to 1e-6 of the 1e6 portfolio."""
    def check(path, b, o):
        name = jax.tree_util.keystr(path)
        atol = 1.0 if any(m in name for m in _MONEY) else 1e-6
        np.testing.assert_allclose(np.asarray(b)[e], o, rtol=1e-5, atol=atol, err_msg=name)
    jax.tree_util.tree_map_with_path(check, batched, one)


def test_vmap_1024_matches_one_by_one(tiny_data):
    env, params = envs.make("portfolio", tiny_data, dict(window=W, episode_length=4))
    n, n_steps = 1024, 6                   # 6 steps of 4-step episodes: auto-reset included
    keys = jax.random.split(jax.random.key(3), (n_steps + 1, n))
    actions = jax.random.randint(jax.random.key(4), (n_steps, n), 0, env.action_dim)

    def run(keys, actions):
        _, state = env.reset(keys[0], params)

        def body(state, x):
            obs, state, r, d, info = env.step(x[0], state, x[1], params)
            return state, (obs, state, r, d, info)

        return jax.lax.scan(body, state, (keys[1:], actions))[1]

    batched = jax.jit(jax.vmap(run, in_axes=(1, 1), out_axes=1))(keys, actions)   # leaves [S, B, ...]
    single = jax.jit(run)
    for e in (0, 1, 517, 1023):
        _assert_same(jax.tree.map(lambda x: np.swapaxes(np.asarray(x), 0, 1), batched),
                     single(keys[:, e], actions[:, e]), e)
    assert np.asarray(batched[3]).any()   # some episodes did reset


# ----------------------------------------------------------------------- auto-reset, truncation, ruin


def test_truncation_auto_reset_and_final_obs(tiny_data):
    env, params = envs.make("portfolio", tiny_data, dict(window=W, episode_length=3))
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    obs, s = reset(jax.random.key(0), params)
    start, rewards = int(s.t), []
    for i in range(3):
        prev = s
        obs, s, r, done, info = step(jax.random.key(10 + i), s, jnp.int32(Regime.EQUAL_WEIGHT), params)
        rewards.append(float(r))
        assert bool(info["terminated"]) is False
        assert bool(done) == bool(info["truncated"]) == (i == 2)
        if i < 2:
            jax.tree.map(np.testing.assert_array_equal, info["final_obs"], obs)
            assert int(s.t) == start + i + 1
    # final_obs: what the finished episode ended on (rows < start + 3, its post-trade weights).
    np.testing.assert_array_equal(info["final_obs"]["window"],
                                  market.window_rows(params.data, start + 3, W))
    assert float(info["final_obs"]["state"][-1]) < 0.01    # invested, not the reset's all cash
    assert int(info["episode_length"]) == 3
    np.testing.assert_allclose(float(info["episode_return"]), sum(rewards), rtol=1e-5)
    np.testing.assert_allclose(float(info["episode_growth"]), np.log(float(info["value"]) / 1e6),
                               rtol=1e-4)
    # The returned obs/state start the next episode.
    assert int(s.episode_length) == 0 and float(s.value) == float(params.initial_cash)
    assert W <= int(s.t) <= params.data.n_rows - 1 - 3 and int(s.end) == int(s.t) + 3
    np.testing.assert_array_equal(obs["state"], [0, 0, 0, 0, 1])
    np.testing.assert_array_equal(obs["window"], market.window_rows(params.data, s.t, W))
    del prev


def test_ruin_terminates(tiny_data):
    # Buying everything costs tens of bps, so a floor at 99.99% of the start is ruin at once.
    env, params = envs.make("portfolio", tiny_data, dict(window=W, episode_length=L, ruin_floor=0.9999))
    _, s = env.reset(jax.random.key(0), params)
    obs, s2, r, done, info = env.step(jax.random.key(1), s, jnp.int32(Regime.EQUAL_WEIGHT), params)
    assert bool(done) and bool(info["terminated"]) and not bool(info["truncated"])
    assert float(info["value"]) < 0.9999 * 1e6
    assert int(s2.episode_length) == 0 and float(s2.value) == 1e6     # auto-reset
    # Default floor: no ruin.
    env, params = envs.make("portfolio", tiny_data, dict(window=W, episode_length=L))
    *_, done, info = env.step(jax.random.key(1), s, jnp.int32(Regime.EQUAL_WEIGHT), params)
    assert not bool(done) and not bool(info["terminated"])


# ------------------------------------------------------------------------------------------ make


def test_make_overrides_and_errors(tiny_data):
    config = dict(window=W, episode_length=L, costs=dict(spread_bps=0.0), reward=dict(dsr_weight=0.1),
                  initial_cash=5e4)
    env, params = envs.make("portfolio", tiny_data, config)
    assert env.discrete and env.action_dim == 12 and isinstance(env, envs.EpisodeStats)
    assert isinstance(env.unwrapped, envs.portfolio.PortfolioEnv)
    assert params.window == W and params.episode_length == L and params.random_start
    assert float(params.costs.spread_bps) == 0.0 and float(params.reward.dsr_weight) == np.float32(0.1)
    assert float(params.initial_cash) == 5e4
    assert float(params.turbulence_threshold) == np.inf     # tiny_data's default threshold
    with pytest.raises(ValueError, match=r"'env\.costs\.spred_bps'.*spread_bps"):
        envs.make("portfolio", tiny_data, dict(window=W, costs=dict(spred_bps=1.0)))
    with pytest.raises(ValueError, match="random_start"):
        envs.make("portfolio", tiny_data, dict(window=W, episode_length=200))
    with pytest.raises(ValueError, match="unknown environment"):
        envs.make("nope", tiny_data)
    # Swapping the data rebuilds the observation table.
    other = perturb_rows(tiny_data, 0)
    swapped = params.replace(data=other)
    np.testing.assert_array_equal(swapped.obs_table, market.obs_table(other))
    assert not np.array_equal(swapped.obs_table, params.obs_table)
    np.testing.assert_array_equal(swapped.factor_rank_table, factor_rank_table(other))
    assert not np.array_equal(swapped.factor_rank_table, params.factor_rank_table)
