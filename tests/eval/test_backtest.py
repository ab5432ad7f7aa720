"""`backtest` and the baselines against first principles, on real bundled prices."""

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import jaxtrade.envs as envs
from jaxtrade.envs.base import Policy
from jaxtrade.envs.fixed_policies import stateless_init as _stateless_init
from jaxtrade.eval.backtest import _run, backtest
from jaxtrade.eval.baselines import baselines, evaluate_policies, random_policy
from jaxtrade.eval.report import report
from jaxtrade.eval.stats import stats
from tests.eval.conftest import envdata_from_close

COSTS_OFF = dict(spread_bps=0.0, slippage_bps=0.0, impact_model="none", regulatory_fees="none")
W = 5


def test_buy_and_hold_one_asset_reproduces_price_path(prices):
    px = prices["AMD"].loc["2016-01-01":"2016-12-31"]      # AMD: +300% in 2016, a demanding path
    env, params = envs.make("portfolio", envdata_from_close(px.to_numpy()[:, None], start=W),
                            dict(window=W, random_start=False, costs=COSTS_OFF))
    frames = baselines(env, params, include=["equal_weight_buy_hold"])
    frame = frames["equal_weight_buy_hold"][0]
    path = px.to_numpy()[W:] / px.to_numpy()[W]
    # Exact up to float32 accounting: observed max relative error 1.1e-7 (float32 eps = 6e-8); allow
    # 1e-6. (Were the env's cash floor ever to bind, its 1e-5 cash margin would show up here.)
    np.testing.assert_allclose(frame["value"] / frame["value"].iloc[0], path, rtol=1e-6)
    assert frame["costs"].sum() == 0.0
    assert (frame["turnover"].iloc[1:] == 0).all()                   # bought once, never traded again
    assert frame["w_0"].iloc[0] == pytest.approx(1.0, abs=1e-6)
    assert stats(frame)["cumulative_return"] == pytest.approx(path[-1] - 1, rel=1e-6)


def _policy_loop(env, params, policy, key, n_steps):
    """Reference: reset and step one environment in a Python loop, in the order `backtest` documents."""
    core = env.unwrapped
    reset_key, scan_key = jax.random.split(key)
    obs, state = core.reset(reset_key, params)
    carry = policy.init()
    values, costs, turnover, weights = [float(state.value)], [], [], []
    step, act = jax.jit(core.step), jax.jit(policy.act)
    for k in jax.random.split(scan_key, n_steps):
        act_key, step_key = jax.random.split(k)
        action, carry = act(act_key, carry, obs)
        obs, state, _, _, info = step(step_key, state, action, params)
        values.append(float(info["value"]))
        costs.append(float(info["costs"]))
        turnover.append(float(info["turnover"]))
        weights.append(np.asarray(state.weights))
    return np.array(values), np.array(costs), np.array(turnover), np.array(weights)


def test_backtest_matches_a_python_loop_with_costs_and_gate(prices):
    px = prices[["AAPL", "KO", "XOM"]].loc["2016-01-01":"2016-02-29"]
    turb = np.random.default_rng(0).random(len(px)) * 10
    data = envdata_from_close(px.to_numpy(), start=W, turbulence=turb, threshold=8.0)
    env, params = envs.make("portfolio", data, dict(window=W, random_start=False))     # default costs on
    policy = random_policy(env)
    key = jax.random.key(3)
    frame = backtest(policy, env, params, dates=px.index, symbols=px.columns, key=key)
    n_steps = len(px) - 1 - W
    values, costs, turnover, weights = _policy_loop(env, params, policy, key, n_steps)
    assert list(frame.index) == list(px.index[W:])
    np.testing.assert_allclose(frame["value"], values, rtol=1e-6)
    np.testing.assert_allclose(frame["costs"].iloc[:-1], costs, rtol=1e-6)
    np.testing.assert_allclose(frame["turnover"].iloc[:-1], turnover, rtol=1e-6)
    np.testing.assert_allclose(frame[["w_AAPL", "w_KO", "w_XOM", "w_cash"]].iloc[:-1], weights, atol=1e-6)
    gate = turb[W - 1:len(px) - 2] > 8.0                 # row t's gate looks at turbulence[t-1]
    np.testing.assert_array_equal(frame["gate"].iloc[:-1], gate)
    assert gate.any() and (frame["w_cash"].iloc[:-1][gate] > 0.999).all()      # gated days go to cash
    assert frame["costs"].sum() > 0
    # Value identity: each day's return is the held weights' price move, net of the day's costs.
    w = frame[["w_AAPL", "w_KO", "w_XOM"]].to_numpy()[:-1]
    growth = px.to_numpy()[W + 1:] / px.to_numpy()[W:-1]
    v = frame["value"].to_numpy()
    post = v[:-1] - frame["costs"].to_numpy()[:-1]
    expect = post * ((w * growth).sum(1) + frame["w_cash"].to_numpy()[:-1])
    np.testing.assert_allclose(v[1:], expect, rtol=1e-5)


def test_baselines_on_a_dated_split(prices):
    px = prices[["JNJ", "PG", "WMT", "CVX"]].loc["2015-10-01":"2016-06-30"]
    env, params = envs.make("portfolio", envdata_from_close(px.to_numpy(), start=W),
                            dict(window=W, random_start=False))

    class Split:                                   # the host split's fields the baselines read
        dates = px.index
        symbols = tuple(px.columns)
        close = px.to_numpy()
        benchmark = px.mean(axis=1).to_numpy()

    res = baselines(env, params, Split, n_random_seeds=2, cov_window=60)
    assert set(res) == {"equal_weight_buy_hold", "equal_weight_monthly", "index", "min_variance", "random"}
    assert len(res["random"]) == 2
    assert not np.allclose(res["random"][0]["value"], res["random"][1]["value"])
    ew = res["equal_weight_monthly"][0]
    traded = ew.index[ew["turnover"] > 0]
    first_days = pd.Series(px.index[W:]).groupby(px.index[W:].to_period("M")).first()
    assert list(traded) == [d for d in first_days if d != px.index[-1]]
    wcols = [f"w_{s}" for s in px.columns]
    np.testing.assert_allclose(ew.loc[traded, wcols], 0.25, atol=1e-3)      # 1/N after costs
    idx = res["index"][0]["value"]
    np.testing.assert_allclose(idx / idx.iloc[0], Split.benchmark[W:] / Split.benchmark[W], rtol=1e-12)
    mv = res["min_variance"][0]
    assert list(mv.index[mv["turnover"] > 0]) == list(traded)
    assert not np.allclose(mv.loc[traded, wcols], 0.25, atol=0.02)             # not just equal weight
    assert (mv[wcols].to_numpy() >= 0).all()


def test_learned_style_policy_compiles_once_for_new_params(prices, tmp_path):
    px = prices[["AAPL", "KO"]].loc["2016-01-01":"2016-02-29"]
    env, params = envs.make("portfolio", envdata_from_close(px.to_numpy(), start=W),
                            dict(window=W, random_start=False, action_space="weights"))

    def act(theta, key, carry, obs):          # a "network": fixed logits + a linear read of the weights
        return theta[:3] + theta[3] * obs["state"], carry

    make = lambda theta: Policy(init=_stateless_init, act=jax.tree_util.Partial(act, theta))
    n0 = _run._cache_size()
    f1 = backtest(make(jnp.array([0.0, 0.0, 0.0, 0.0])), env, params)
    f2 = backtest(make(jnp.array([1.0, -1.0, 0.0, 0.5])), env, params)
    assert _run._cache_size() == n0 + 1
    assert not np.allclose(f1["w_0"], f2["w_0"])
    # Zero logits: 1/3 each after every trade (the first day's costs come out of cash).
    np.testing.assert_allclose(f1[["w_0", "w_1", "w_cash"]].iloc[:-1], 1 / 3, atol=5e-3)

    # Several seeds of one agent, evaluated and reported beside a baseline; still the same compile.
    class Split:
        dates, symbols, close, benchmark = px.index, tuple(px.columns), px.to_numpy(), None

    agents = evaluate_policies({"agent": [make(jnp.array([0.0, 0.0, 0.0, 0.0])),
                                          make(jnp.array([0.5, 0.0, 0.0, 0.0]))]}, env, params, Split)
    assert _run._cache_size() == n0 + 1 and len(agents["agent"]) == 2
    np.testing.assert_allclose(agents["agent"][0]["value"], f1["value"].to_numpy())
    res = {**agents, **baselines(env, params, Split, include=["equal_weight_buy_hold"])}
    out = report(res, str(tmp_path), n_boot=100)
    assert out.table.loc["agent", "n_seeds"] == 2
    pngs = {p.name for p in tmp_path.glob("*.png")}
    assert pngs == {"allocation_agent.png", "equity.png"}            # the gate never acted: no gate plot


class _OpaqueState(envs.SpecProperties):
    """`core` with its state hidden in a reversed tuple of leaves: anything that reads a state field
    (state.value, state.t, ...) fails; only `info` tells what happened."""

    def __init__(self, core, params):
        self._core = core
        self.action_spec, self.obs_spec = core.action_spec, core.obs_spec
        self._treedef = jax.tree.structure(jax.eval_shape(core.reset, jax.random.key(0), params)[1])

    def _hide(self, state):
        return tuple(reversed(jax.tree.leaves(state)))

    def reset(self, key, params):
        obs, state = self._core.reset(key, params)
        return obs, self._hide(state)

    def step(self, key, state, action, params):
        state = jax.tree.unflatten(self._treedef, list(reversed(state)))
        obs, state, reward, done, info = self._core.step(key, state, action, params)
        return obs, self._hide(state), reward, done, info


def test_backtest_reads_info_only(prices):
    """An env whose state is opaque backtests to the same frame, ruin included."""
    px = prices[["AAPL", "KO", "XOM"]].loc["2016-01-01":"2016-02-29"]
    turb = np.random.default_rng(0).random(len(px)) * 10
    data = envdata_from_close(px.to_numpy(), start=W, turbulence=turb, threshold=8.0)
    # The seed impact model (random daily trading pays ~0.2% a day) reaches the ruin floor in time.
    for config in (dict(window=W, random_start=False),
                   dict(window=W, random_start=False, ruin_floor=0.97, costs=dict(impact_model="seed"))):
        env, params = envs.make("portfolio", data, config)
        policy = random_policy(env)
        want = backtest(policy, env, params, key=jax.random.key(3))
        got = backtest(policy, _OpaqueState(env.unwrapped, params), params, key=jax.random.key(3))
        pd.testing.assert_frame_equal(got, want)
    assert want["terminated"].any() and (want["value"].iloc[-3:] == want["value"].iloc[-1]).all()
    # The last row: drifted to the last close (weights_marked), turbulence of the last trade's row.
    assert want["turbulence"].tolist() == pytest.approx(turb[W - 1:len(px) - 1].astype(np.float32).tolist())


def test_target_env_specs(prices):
    from jaxtrade.envs.base import ContinuousSpec
    from jaxtrade.eval.baselines import TargetEnv

    px = prices[["AAPL", "KO"]].loc["2016-01-01":"2016-02-29"]
    env, params = envs.make("portfolio", envdata_from_close(px.to_numpy(), start=W),
                            dict(window=W, random_start=False))
    target = TargetEnv(2, env.obs_spec)
    assert target.action_spec == ContinuousSpec((4,), 0.0, 1.0)
    assert not target.discrete and target.action_dim == 4 and target.obs_spec == env.obs_spec
    assert target == TargetEnv(2, env.obs_spec) and hash(target) == hash(TargetEnv(2, env.obs_spec))
    obs, state = target.reset(jax.random.key(0), params)
    assert envs.ObsSpec.from_obs(obs) == target.obs_spec
    info = target.step(jax.random.key(1), state, jnp.array([0.5, 0.5, 0.0, 0.0]), params)[4]
    assert set(envs.INFO_KEYS) <= set(info)
    np.testing.assert_allclose(np.asarray(info["weights"]), [0.5, 0.5, 0.0], atol=2e-3)


def test_single_instrument_baselines_are_long_flat_and_short(prices, tmp_path):
    """One instrument: long buy-and-hold follows the price, flat keeps the cash, short mirrors the long
    (costs off); the report's Sharpe reference is the long buy-and-hold, not an equal-weight row."""
    px = prices["KO"].loc["2016-01-01":"2016-06-30"].to_numpy()
    env, params = envs.make("single", envdata_from_close(px[:, None], start=W),
                            dict(window=W, random_start=False, costs=COSTS_OFF))
    out = baselines(env, params, n_random_seeds=2)
    assert list(out) == ["long_buy_hold", "flat", "short", "random"]
    path = px[W:] / px[W]
    v = {k: out[k][0]["value"].to_numpy() / out[k][0]["value"].iloc[0]
         for k in ("long_buy_hold", "flat", "short")}
    np.testing.assert_allclose(v["long_buy_hold"], path, rtol=1e-5)
    np.testing.assert_allclose(v["flat"], 1.0, rtol=1e-7)
    np.testing.assert_allclose(v["short"], 2.0 - path, rtol=1e-5)      # short 1x held: 1 - (p/p0 - 1)
    assert (out["long_buy_hold"][0]["turnover"].iloc[1:] == 0).all()
    rep = report(out, str(tmp_path), n_boot=50)
    assert rep.table.attrs["reference"] == "long_buy_hold"
    assert rep.table.loc["short", "sharpe_diff"] == pytest.approx(
        rep.table.loc["short", "sharpe"] - rep.table.loc["long_buy_hold", "sharpe"], abs=1e-9)
    # Without -1 among the positions there is no short baseline.
    env, params = envs.make("single", envdata_from_close(px[:, None], start=W),
                            dict(window=W, random_start=False, costs=COSTS_OFF, positions=(0.0, 1.0)))
    names = list(baselines(env, params, include=["long_buy_hold", "flat", "short"]))
    assert names == ["long_buy_hold", "flat"]


def test_index_row_is_labelled_and_the_caveat_sits_under_the_table(tmp_path):
    from jaxtrade.data import dataset_caveats, load_dataset, split
    from jaxtrade.train.evaluation import baseline_history

    md = load_dataset("sp500-20")
    test = split(md, train=("2014-01-01", "2014-12-31"), test=("2016-01-01", "2016-03-31"), lookback=W).test
    env, params = envs.make("portfolio", test.to_device(), dict(window=W, random_start=False))
    out = baselines(env, params, test, history=baseline_history(md, test, 252), n_random_seeds=1)
    rep = report(out, str(tmp_path), n_boot=50, table_note=dataset_caveats("sp500-20"))
    md_text = open(rep.md_path).read()
    assert "| S&P 500 (price index) |" in md_text and "| index |" not in md_text
    table_end = md_text.index("| S&P 500 (price index) |")
    note = md_text.index("survivorship")
    assert note > table_end and "price index without dividends" in md_text
    assert rep.table.loc["index", "label"] == "S&P 500 (price index)"


def test_constant_policies_choose_once_and_hold_or_fix_the_weights(prices):
    from jaxtrade.envs.portfolio import REGIMES
    from jaxtrade.eval.baselines import constant_policies

    px = prices[["AAPL", "KO", "XOM"]].loc["2016-01-01":"2016-03-31"].to_numpy()
    data = envdata_from_close(px, start=W)
    env, params = envs.make("portfolio", data, dict(window=W, random_start=False, costs=COSTS_OFF))
    pols = constant_policies(env, params)
    assert list(pols) == [f"regime_{r}" for r in REGIMES[1:]]
    # "choose EQUAL_WEIGHT on the first day and hold" is the equal-weight buy-and-hold baseline.
    got = backtest(pols["regime_EQUAL_WEIGHT"], env, params)
    want = baselines(env, params, include=["equal_weight_buy_hold"])["equal_weight_buy_hold"][0]
    np.testing.assert_allclose(got["value"], want["value"], rtol=1e-6)
    assert (got["turnover"].iloc[1:] == 0).all() and got["turnover"].iloc[0] > 0
    cash = backtest(pols["regime_FULL_CASH"], env, params)
    np.testing.assert_allclose(cash["value"], float(params.initial_cash), rtol=1e-7)

    env, params = envs.make("portfolio", data, dict(window=W, random_start=False, costs=COSTS_OFF,
                                                    action_space="weights"))
    pols = constant_policies(env, params)
    assert sorted(pols) == ["asset_0", "asset_1", "asset_2", "cash", "equal_weight"]
    frame = backtest(pols["asset_1"], env, params)
    np.testing.assert_allclose(frame["value"] / frame["value"].iloc[0], px[W:, 1] / px[W, 1], rtol=1e-5)
    ew = backtest(pols["equal_weight"], env, params)
    np.testing.assert_allclose(ew[["w_0", "w_1", "w_2"]].iloc[0], 1 / 3, atol=1e-6)


def test_baselines_trade_in_the_agents_world_gate_included(prices):
    """With the agent's turbulence gate, buy-and-hold goes to cash on the gated days and buys back the
    day the gate lifts (the old baselines ran gate-free: no gated day, value = the price path); the
    gate-free run is the labelled reference row."""
    px = prices["AMD"].loc["2016-01-01":"2016-06-30"].to_numpy()[:, None]
    turbulence = np.zeros(len(px))
    turbulence[40:45] = 10.0                          # rows 41..45 trade gated (turbulence[t-1] > 1)
    data = envdata_from_close(px, start=W, turbulence=turbulence, threshold=1.0)
    env, params = envs.make("portfolio", data, dict(window=W, random_start=False, costs=COSTS_OFF))
    out = baselines(env, params, include=["equal_weight_buy_hold", "equal_weight_buy_hold_no_gate"])
    gated, free = out["equal_weight_buy_hold"][0], out["equal_weight_buy_hold_no_gate"][0]
    assert gated["gate"].to_numpy().nonzero()[0].tolist() == list(range(41 - W, 46 - W))
    assert (gated["w_cash"].iloc[41 - W:46 - W] > 0.999).all()                 # out of the market
    assert gated["w_0"].iloc[46 - W] == pytest.approx(1.0, abs=1e-5)           # back in when it lifts
    assert (gated["value"].iloc[41 - W:47 - W].diff().iloc[1:] == 0).all()     # flat while in cash
    np.testing.assert_allclose(free["value"] / free["value"].iloc[0], px[W:, 0] / px[W, 0], rtol=1e-6)
    assert not free["gate"].any() and free.attrs["label"].endswith("(gate off: reference only)")


def test_frames_name_the_envs_actions(prices):
    """Reports label the action timeline with the env's own names: regimes for the portfolio env."""
    px = prices[["AAPL", "KO"]].loc["2016-01-01":"2016-02-29"].to_numpy()
    env, params = envs.make("portfolio", envdata_from_close(px, start=W), dict(window=W, random_start=False))
    frame = backtest(random_policy(env), env, params)
    assert frame.attrs["action_names"][:3] == ["HOLD", "FULL_CASH", "DEFENSIVE"]
    assert len(frame.attrs["action_names"]) == env.action_spec.n
