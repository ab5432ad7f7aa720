"""Ensembles: the three modes against hand-computed cases on toy policies, the winner schedule on
synthetic value series (with a look-ahead check), one vmapped backtest of three members against three
separate backtests, and ensemble artifacts (save, `load_model`, refusals) on tiny real PPO members
over the smoke config's sp500-20 test split (124 steps: one re-selection boundary, at row 63)."""

from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from jax.tree_util import Partial

from experiments.configs import smoke
from jaxtrade import eval as evaluate
from jaxtrade.agents import ensemble as ens
from jaxtrade.agents import ppo
from jaxtrade.envs.base import ContinuousSpec, DiscreteSpec, Policy
from jaxtrade.envs.portfolio import Regime
from jaxtrade.eval.baselines import constant_policy
from jaxtrade.pipeline import ensemble as pens
from jaxtrade.train import artifact, loop
from jaxtrade.train import setup as setup_lib

# TOY POLICIES: fixed distributions, Partials of module-level functions (as real policies are).

def _no_carry():
    return None


def _fixed_dist(params, carry, obs):
    del obs
    return dict(params), carry


def _fixed_act(params, key, carry, obs):
    del key, obs
    return jnp.argmax(params["logits"]).astype(jnp.int32), carry


def toy(probs) -> Policy:
    """A discrete policy with fixed action probabilities (logits = log probs; 0 -> -inf, masked)."""
    params = {"logits": jnp.log(jnp.asarray(probs, jnp.float32))}
    return Policy(Partial(_no_carry), Partial(_fixed_act, params), Partial(_fixed_dist, params))


def toy_gaussian(mean) -> Policy:
    params = {"mean": jnp.asarray(mean, jnp.float32), "log_std": jnp.zeros(len(mean), jnp.float32)}
    return Policy(Partial(_no_carry), Partial(_fixed_act, params), Partial(_fixed_dist, params))


def _zero():
    return jnp.zeros((), jnp.int32)


def _counter_act(n, key, carry, obs):
    del key, obs
    return carry % n, carry + 1


def counter(n) -> Policy:
    """Acts carry % n and counts its steps: shows whether its carry advanced while it did not trade."""
    return Policy(Partial(_zero), Partial(_counter_act, n))


OBS = {"window": jnp.zeros((1, 1)), "state": jnp.zeros(1)}


def run_policy(policy, n_steps, key=0):
    act = jax.jit(policy.act)
    carry, actions = policy.init(), []
    for k in jax.random.split(jax.random.key(key), n_steps):
        a, carry = act(k, carry, OBS)
        actions.append(np.asarray(a))
    return np.array(actions)


# WEIGHTED

def test_softmax_weights_by_hand():
    # softmax([1, 0] / 0.5) = [e^2, 1] / (e^2 + 1)
    np.testing.assert_allclose(ens.softmax_weights([1.0, 0.0], 0.5),
                               [math.e ** 2 / (math.e ** 2 + 1), 1 / (math.e ** 2 + 1)], rtol=1e-6)
    np.testing.assert_allclose(ens.softmax_weights([0.3, 0.3, 0.3], 2.0), [1 / 3] * 3, rtol=1e-6)
    with pytest.raises(ValueError, match="temperature"):
        ens.softmax_weights([1.0], 0.0)
    with pytest.raises(ValueError, match="finite"):
        ens.softmax_weights([1.0, math.nan])


def test_weighted_mixture_picks_what_no_member_would():
    a, b = [0.6, 0.4, 0.0], [0.0, 0.4, 0.6]          # argmax 0 and 2; neither would pick 1
    spec = DiscreteSpec(3)
    # Equal weights: mixture [0.3, 0.4, 0.3] -> action 1.
    pol = ens.ensemble_policy([toy(a), toy(b)], "weighted", action_spec=spec, weights=[0.5, 0.5])
    d, _ = pol.dist(pol.init(), OBS)
    np.testing.assert_allclose(np.exp(d["logits"]), [0.3, 0.4, 0.3], rtol=1e-6)
    assert run_policy(pol, 1)[0] == 1
    # Sharpe [1, 0], temperature 0.5: w = [0.880797, 0.119203];
    # mixture = [0.6 w0, 0.4, 0.6 w1] = [0.528478, 0.4, 0.071522] -> action 0.
    w = ens.softmax_weights([1.0, 0.0], 0.5)
    pol = ens.ensemble_policy([toy(a), toy(b)], "weighted", action_spec=spec, weights=w)
    d, _ = pol.dist(pol.init(), OBS)
    np.testing.assert_allclose(np.exp(d["logits"]), [0.528478, 0.4, 0.071522], rtol=1e-5)
    assert run_policy(pol, 1)[0] == 0
    # Three members, weights [0.2, 0.3, 0.5] over [1, 0, 0], [0, 1, 0], [0.5, 0, 0.5] (its middle action
    # masked: log 0 = -inf): mixture [0.2 + 0.25, 0.3, 0.25] = [0.45, 0.3, 0.25].
    pol = ens.ensemble_policy([toy([1, 0, 0]), toy([0, 1, 0]), toy([0.5, 0, 0.5])], "weighted",
                              action_spec=spec, weights=[0.2, 0.3, 0.5])
    d, _ = pol.dist(pol.init(), OBS)
    np.testing.assert_allclose(np.exp(d["logits"]), [0.45, 0.3, 0.25], rtol=1e-6)
    with pytest.raises(ValueError, match="summing to 1"):
        ens.ensemble_policy([toy(a), toy(b)], "weighted", action_spec=spec, weights=[1.0, 1.0])


def test_weighted_samples_follow_the_mixture():
    pol = ens.ensemble_policy([toy([0.6, 0.4, 0.0]), toy([0.0, 0.4, 0.6])], "weighted",
                              action_spec=DiscreteSpec(3), weights=[0.5, 0.5], deterministic=False)
    keys = jax.random.split(jax.random.key(1), 4000)
    actions = jax.jit(jax.vmap(lambda k: pol.act(k, pol.init(), OBS)[0]))(keys)
    freq = np.bincount(np.asarray(actions), minlength=3) / 4000
    np.testing.assert_allclose(freq, [0.3, 0.4, 0.3], atol=0.03)   # ~4 standard errors


def test_weighted_continuous_is_the_weighted_mean_through_env_action():
    members = [toy_gaussian([1.0, 0.0, -1.0]), toy_gaussian([0.0, 2.0, 0.0])]
    spec = ContinuousSpec((3,))
    pol = ens.ensemble_policy(members, "weighted", action_spec=spec, weights=[0.25, 0.75],
                              continuous_dist="logistic_normal")
    raw = np.array([0.25, 1.5, -0.25])                  # 0.25 * m0 + 0.75 * m1
    want = np.exp(raw) / np.exp(raw).sum()               # logistic-normal: softmax
    np.testing.assert_allclose(run_policy(pol, 1)[0], want, rtol=1e-6)
    pol = ens.ensemble_policy(members, "weighted", action_spec=spec, weights=[0.25, 0.75])
    np.testing.assert_allclose(run_policy(pol, 1)[0], raw, rtol=1e-6)
    with pytest.raises(ValueError, match="continuous_dist"):
        ens.shared_continuous_dist([{"continuous_dist": "gaussian"}, {"continuous_dist": "logistic_normal"}])


# MAJORITY

def _onehot(k, n=4):
    return [1.0 if i == k else 0.0 for i in range(n)]


def test_majority_clear_vote_and_tie_to_hold():
    spec = DiscreteSpec(4)
    vote = lambda acts, hold: run_policy(ens.ensemble_policy([toy(_onehot(a)) for a in acts], "majority",
                                                             action_spec=spec, hold_action=hold), 1)[0]
    assert vote([2, 2, 1, 3, 2], 0) == 2
    assert vote([3, 1, 3], 0) == 3
    assert vote([1, 1, 3, 3, 2], 0) == 0            # 1 and 3 tie: hold, not the lowest tied action
    assert vote([3, 1, 2], 2) == 2                  # three-way tie: hold (2)
    assert vote([3, 1, 2], 0) == 0
    with pytest.raises(ValueError, match="discrete"):
        ens.ensemble_policy([toy_gaussian([0.0])], "majority", action_spec=ContinuousSpec((1,)),
                            hold_action=0)
    with pytest.raises(ValueError, match="hold_action"):
        ens.ensemble_policy([toy(_onehot(1))], "majority", action_spec=spec)


def test_hold_action_comes_from_the_env_config():
    assert ens.hold_action({"name": "portfolio"}) == Regime.HOLD == 0
    assert ens.hold_action({"name": "single"}) == 1                                 # (-1, 0, 1): flat
    assert ens.hold_action({"name": "single", "positions": [0.0, 0.5, 1.0]}) == 0
    assert ens.hold_action({"name": "options"}) == 0
    with pytest.raises(ValueError, match="no flat"):
        ens.hold_action({"name": "single", "positions": [-1.0, 1.0]})
    with pytest.raises(ValueError, match="no hold action"):
        ens.hold_action({"name": "portfolio", "action_space": "weights"})


# WINNER

def test_winner_follows_the_schedule_and_every_member_keeps_its_carry():
    # n = 5 actions; member 0 always 4, member 1 counts its own steps (carry % 5), member 2 always 2.
    members = [toy(_onehot(4, 5)), counter(5), toy(_onehot(2, 5))]
    pol = ens.ensemble_policy(members, "winner", action_spec=DiscreteSpec(5), schedule=[2, 0, 0, 1])
    # Steps 0..3 by the schedule, then its last entry holds; the counter was stepped at 0, 1, 2 too.
    np.testing.assert_array_equal(run_policy(pol, 6), [2, 4, 4, 3, 4, 0])
    fixed = ens.ensemble_policy(members, "winner", action_spec=DiscreteSpec(5), schedule=1)
    np.testing.assert_array_equal(run_policy(fixed, 3), [0, 1, 2])
    with pytest.raises(ValueError, match="member indices"):
        ens.ensemble_policy(members, "winner", action_spec=DiscreteSpec(5), schedule=[3])


def _values(returns):
    """[K, T+1] values from per-step returns [K, T] (value[t+1] = value[t] (1 + r[t]))."""
    r = np.asarray(returns, np.float64)
    return np.concatenate([np.ones((len(r), 1)), np.cumprod(1 + r, axis=1)], axis=1)


def synthetic_returns(rng):
    """K=3, 15 steps, windows of E=5 rows: in rows 0..4 member 2 has the best Sharpe, in rows 5..9
    member 0. Return r[t] moves value[t] -> value[t+1]; a window of rows b-5 .. b-1 sees r[b-5 .. b-2]."""
    noise = rng.normal(0, 0.01, (3, 15))
    drift = np.zeros((3, 15))
    drift[:, 0:4] = [[-0.01], [0.0], [0.01]]
    drift[:, 5:9] = [[0.01], [-0.01], [0.0]]
    return drift + noise


def test_winner_schedule_by_hand_and_without_look_ahead():
    rng = np.random.default_rng(0)
    values = _values(synthetic_returns(rng))
    sharpe = [0.1, 0.9, 0.3]                                      # member 1 until the first boundary
    sched = pens.winner_schedule(values, sharpe, n_steps=14, every=5)
    np.testing.assert_array_equal(sched, [1] * 5 + [2] * 5 + [0] * 4)
    # Look-ahead: anything from row 10 on cannot change the choice made at row 10 (member 0 halves).
    later = values.copy()
    later[0, 10:] *= 0.5
    np.testing.assert_array_equal(pens.winner_schedule(later, sharpe, n_steps=14, every=5), sched)
    # ... while row 9, the last row of the window, can: member 0 halves at row 9, member 2 wins.
    last = values.copy()
    last[0, 9:] *= 0.5
    assert pens.winner_schedule(last, sharpe, n_steps=14, every=5)[10] == 2
    # Row 4 lies before the window of boundary 10 (rows 5..9) and decides only boundary 5.
    early = values.copy()
    early[0, 4] *= 1.5
    got = pens.winner_schedule(early, sharpe, n_steps=14, every=5)
    np.testing.assert_array_equal(got[10:], sched[10:])
    # Ties go to the lowest index; an undefined (flat: NaN) Sharpe never wins.
    same = np.stack([values[2], values[2], values[1]])
    assert pens.winner_schedule(same, sharpe, n_steps=14, every=5)[5] == 0
    flat = values.copy()
    flat[0] = 1.0
    assert pens.winner_schedule(flat, sharpe, n_steps=14, every=5)[10] in (1, 2)


# REAL MEMBERS: three tiny GRU policies with different random params on sp500-20.

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    cfg = smoke.get_config()
    cfg.model.hidden_dim = 8
    s = setup_lib.build(cfg)
    agent = ppo.make(cfg, s.test_env)
    params = [agent.init_params(jax.random.key(k), s.train_params) for k in range(3)]
    policies = [agent.policy(p) for p in params]
    kw = dict(dates=s.splits.test.dates, symbols=s.splits.test.symbols)
    frames = [evaluate.backtest(p, s.test_env, s.test_params, **kw) for p in policies]
    # Validation Sharpes chosen so that the member best on rows 0..62 of the test split is not the
    # first active one: the schedule then switches at row 63.
    window = [evaluate.stats(f["value"].iloc[:63])["sharpe"] for f in frames]
    best = int(np.argmax(window))
    val = [0.5, 0.5, 0.5]
    val[(best + 1) % 3] = 1.5
    root = tmp_path_factory.mktemp("ensemble")
    dirs = [artifact.save_model(str(root / f"m{k}"), params[k],
                                loop.model_spec(s, agent, {"sharpe": val[k]}, code_version="test", seed=k))
            for k in range(3)]
    return dict(s=s, agent=agent, params=params, policies=policies, frames=frames, dirs=dirs, root=root,
                window=window, val=val, kw=kw)


def assert_same_backtest(got, want):
    """Discrete columns identical; the others equal to float32 rounding: batching the members' scan
    reorders some float32 arithmetic (measured: values 5e-7 relative, weights 3e-7 absolute)."""
    assert list(got.columns) == list(want.columns) and got.index.equals(want.index)
    exact = ["action", "gate", "terminated", "trade_closed", "trades_won", "turbulence",
             "turbulence_threshold"]
    pd.testing.assert_frame_equal(got[exact], want[exact])
    money = ["value", "costs", "trade_pnl"]                       # quote currency: relative to V0
    v0 = want.attrs["initial_value"]
    np.testing.assert_allclose(got[money] / v0, want[money] / v0, rtol=0, atol=2e-6)
    rest = [c for c in want.columns if c not in exact + money]   # weights, turnover, reward
    np.testing.assert_allclose(got[rest], want[rest], rtol=0, atol=2e-6)


def test_one_vmapped_backtest_equals_separate_backtests(world):
    s, kw, frames = world["s"], world["kw"], world["frames"]
    const = constant_policy(int(Regime.EQUAL_WEIGHT))           # another architecture: its own group
    many = evaluate.backtest_many([world["policies"][0], const, *world["policies"][1:]], s.test_env,
                                  s.test_params, **kw)
    for got, want in zip([many[0], *many[2:]], frames, strict=True):
        assert_same_backtest(got, want)
    pd.testing.assert_frame_equal(many[1], evaluate.backtest(const, s.test_env, s.test_params, **kw))
    # The members really differ, so the comparison could fail.
    assert not np.array_equal(frames[0]["action"], frames[1]["action"])
    assert not np.array_equal(frames[1]["action"], frames[2]["action"])


def test_winner_reselects_at_row_63_from_the_members_own_backtests(world):
    s, frames, dirs, val = world["s"], world["frames"], world["dirs"], world["val"]
    frame, sched = pens.backtest_ensemble(dirs, s.splits.test, mode="winner")
    active, best = int(np.argmax(val)), int(np.argmax(world["window"]))
    assert active != best and len(sched) == len(frame) - 1 == 124
    np.testing.assert_array_equal(sched, [active] * 63 + [best] * 61)
    # Before the switch the ensemble trades exactly as its active member alone.
    pd.testing.assert_frame_equal(frame.iloc[:63], frames[active].iloc[:63])
    assert not frame.iloc[63:]["action"].equals(frames[active].iloc[63:]["action"])
    # A schedule fixed on one member trades exactly as that member (all members' carries run along).
    fixed = ens.ensemble_policy(world["policies"], "winner", action_spec=s.test_env.action_spec,
                                schedule=np.full(124, best))
    pd.testing.assert_frame_equal(evaluate.backtest(fixed, s.test_env, s.test_params, **world["kw"]),
                                  frames[best])
    # The saved winner ensemble re-selects alike.
    path = pens.build_ensemble(dirs, str(world["root"] / "winner"), mode="winner")
    again, sched2 = pens.backtest_ensemble(path, s.splits.test)
    np.testing.assert_array_equal(sched2, sched)
    pd.testing.assert_frame_equal(again, frame)
    # load_model's winner is fixed on the best validation Sharpe, "active".
    policy, _ = artifact.load_model(path)
    pd.testing.assert_frame_equal(evaluate.backtest(policy, s.test_env, s.test_params, **world["kw"]),
                                  frames[active])


def test_ensemble_artifact_round_trip(world):
    s, dirs, val = world["s"], world["dirs"], world["val"]
    names = ["a/v1", "b/v1", "c/v2"]
    path = pens.build_ensemble(dirs, str(world["root"] / "weighted"), mode="weighted", temperature=0.5,
                               names=names)
    policy, spec = artifact.load_model(path)
    assert spec.agent == "ensemble"
    assert spec.model == {"mode": "weighted", "temperature": 0.5, "members": names, "val_sharpe": val,
                          "schedule_every": 63, "active": int(np.argmax(val))}
    assert spec.env == artifact.load_spec(dirs[0]).env and spec.action_spec == DiscreteSpec(12)
    assert artifact.load_params(path) == {}
    for k, d in enumerate(dirs):                                 # self-contained: full member copies
        copy = os.path.join(path, "members", str(k))
        assert sorted(os.listdir(copy)) == sorted(os.listdir(d))
        assert artifact.load_spec(copy).to_json() == artifact.load_spec(d).to_json()
    assert not [p for p in os.listdir(world["root"]) if p.startswith(".")]
    want = ens.ensemble_policy(world["policies"], "weighted", action_spec=DiscreteSpec(12),
                               weights=ens.softmax_weights(val, 0.5))
    got = evaluate.backtest(policy, s.test_env, s.test_params, **world["kw"])
    pd.testing.assert_frame_equal(got, evaluate.backtest(want, s.test_env, s.test_params, **world["kw"]))
    frame, sched = pens.backtest_ensemble(path, s.splits.test)
    assert sched is None
    pd.testing.assert_frame_equal(frame, got)

    path = pens.build_ensemble(dirs, str(world["root"] / "majority"), mode="majority")
    policy, _ = artifact.load_model(path)
    want = ens.ensemble_policy(world["policies"], "majority", action_spec=DiscreteSpec(12),
                               hold_action=int(Regime.HOLD))
    got = evaluate.backtest(policy, s.test_env, s.test_params, **world["kw"])
    pd.testing.assert_frame_equal(got, evaluate.backtest(want, s.test_env, s.test_params, **world["kw"]))
    # Row 0: every member sees the ensemble's observation (the same initial state), so the vote is
    # over the members' own first actions: the most voted, or HOLD on a tie.
    first = np.bincount([int(f["action"].iloc[0]) for f in world["frames"]], minlength=12)
    want0 = int(np.argmax(first)) if (first == first.max()).sum() == 1 else int(Regime.HOLD)
    assert got["action"].iloc[0] == want0


def test_mismatched_or_unscored_members_are_refused(world, tmp_path):
    d0 = world["dirs"][0]
    spec, params = artifact.load_spec(d0), artifact.load_params(d0)
    env = dict(spec.env, costs=dict(spec.env["costs"], spread_bps=99.0))
    other = artifact.save_model(str(tmp_path / "other_env"), params, spec.replace(env=env))
    with pytest.raises(ValueError, match=r"member .*other_env has a different env"):
        pens.build_ensemble([d0, other], str(tmp_path / "e"), mode="weighted")
    other = artifact.save_model(str(tmp_path / "other_actions"), params,
                                spec.replace(action_spec=DiscreteSpec(11)))
    with pytest.raises(ValueError, match=r"member .*other_actions has a different action_spec"):
        pens.build_ensemble([d0, other], str(tmp_path / "e"), mode="winner")
    unscored = artifact.save_model(str(tmp_path / "unscored"), params, spec.replace(metrics={}))
    with pytest.raises(ValueError, match=r"member .*unscored.*metrics.sharpe"):
        pens.build_ensemble([d0, unscored], str(tmp_path / "e"), mode="winner")
    inner = pens.build_ensemble([d0], str(tmp_path / "inner"), mode="winner")
    with pytest.raises(ValueError, match="itself an ensemble"):
        pens.build_ensemble([inner, d0], str(tmp_path / "e"), mode="winner")
    with pytest.raises(ValueError, match="mode"):
        pens.build_ensemble([d0], str(tmp_path / "e"), mode="average")
    assert not (tmp_path / "e").exists()
