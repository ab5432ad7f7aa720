"""One registry holding PPO, SAC and TD3 models of the same data (the smoke config's portfolio weights),
and a weighted ensemble over the three: registered with them as parents, reloaded from the registry,
and backtested on the test split, where its first action is the validation-Sharpe-weighted mean of
the three members' deterministic actions (`agents/ensemble.py`, 2.; the off-policy agents' `dist`
mean is their deterministic env action, `agents/offpolicy.py`, 5.)."""

from __future__ import annotations

import jax
import numpy as np

from experiments.configs import smoke
from jaxtrade.agents import ensemble as ensemble_lib
from jaxtrade.pipeline import ensemble as pens
from jaxtrade.pipeline.registry import Registry
from jaxtrade.train import artifact, evaluation, loop
from jaxtrade.train import setup as setup_lib

VAL_SHARPE = {"ppo": 0.4, "sac": 0.9, "td3": -0.2}


def _untrained_model(agent_name: str, directory, seed: int) -> str:
    """The agent's initial params saved as a model artifact of the smoke config on the weights env
    (PPO asked for them explicitly; SAC and TD3 get them from env.action_space=auto)."""
    config = smoke.get_config()
    config.agent.name = agent_name
    config.seed = seed
    if agent_name == "ppo":
        config.env.action_space = "weights"
    s = setup_lib.build(config)
    agent = s.make_agent()
    metrics = {"selection": {"sharpe": VAL_SHARPE[agent_name], "split": "val"},
               "held_out": {"sharpe": 0.1 * seed, "split": "test"}}
    spec = loop.model_spec(s, agent, metrics, code_version="test")
    params = agent.init_params(jax.random.key(seed), s.train_params)
    return artifact.save_model(str(directory / agent_name), params, spec)


def test_registry_holds_ppo_sac_and_td3_of_the_same_data_and_their_ensemble(tmp_path):
    reg = Registry(str(tmp_path / "registry"))
    dirs = {name: _untrained_model(name, tmp_path, seed) for seed, name in enumerate(VAL_SHARPE)}
    for name, path in dirs.items():
        reg.register(f"{name}_weights", path, stage="rl")
    agents_held = {e.name: artifact.load_spec(e.path).agent for e in reg.list()}
    assert agents_held == {"ppo_weights": "ppo", "sac_weights": "sac", "td3_weights": "td3"}
    specs = [artifact.load_spec(p) for p in dirs.values()]
    assert all(s.env == specs[0].env for s in specs) and specs[0].env["action_space"] == "weights"

    members = [reg.path(f"{name}_weights/v1") for name in VAL_SHARPE]
    built = pens.build_ensemble(members, str(tmp_path / "ensemble"), mode="weighted", temperature=0.5,
                                names=[f"{name}_weights/v1" for name in VAL_SHARPE])
    entry = reg.register("mixed_ensemble", built, stage="ensemble",
                         parents=[f"{name}_weights/v1" for name in VAL_SHARPE])
    assert sorted(entry.parents) == sorted(f"{name}_weights/v1" for name in VAL_SHARPE)

    policy, spec = reg.load_model("mixed_ensemble")
    assert spec.agent == "ensemble" and spec.model["members"] == [f"{n}_weights/v1" for n in VAL_SHARPE]
    market, split = evaluation.split_of(spec, "test")
    env, params = setup_lib.make_split_env(spec.env, split)
    obs, _ = env.reset(jax.random.key(0), params)

    # The ensemble's first deterministic action against the members' own, weighted by hand.
    weights = ensemble_lib.softmax_weights(list(VAL_SHARPE.values()), 0.5)
    actions = []
    for path in members:
        member, _ = artifact.load_model(path)
        a, _ = member.act(jax.random.key(1), member.init(), obs)
        actions.append(np.asarray(a, np.float64))
    want = sum(w * a for w, a in zip(weights, actions, strict=True))
    got, _ = policy.act(jax.random.key(1), policy.init(), obs)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(actions[0], actions[1])       # the members really differ

    frame, _ = pens.backtest_ensemble(reg.path("mixed_ensemble/v1"), split)
    assert len(frame) > 100 and np.isfinite(frame["value"].to_numpy()).all()
    assert float(frame["turnover"].sum()) > 0          # it traded
