"""It learns: TD3 reaches the closed-form optimum of the continuous `drift` probe (2 seeds in one
compile here; 5 seeds: BUILD_NOTES / the issue-26 report)."""

import numpy as np

from jaxtrade.agents import td3
from tests.agents.drift_continuous import configure, problem, train


def test_continuous_drift_probe_reaches_95_percent_of_the_closed_form_optimum():
    """Long 1.0 from the first step and held is optimal (16 x 0.01 - 0.02 = 0.14). 80 iterations of 32
    envs x 16 steps (40,960 env steps a seed); the untrained actors hold about 0."""
    env, env_params = problem()
    agent = td3.make(configure(td3.default_config("td3"), "td3"), env)
    before, after, metrics = train(agent, env, env_params, seeds=2, calls=8)
    assert agent.compiles == 1
    assert not np.asarray(metrics["any_nonfinite"]).any()
    assert before.max() < 0.5, before
    assert (after >= 0.95).all(), after


def test_ddpg_reaches_95_percent_of_the_optimum_with_its_per_env_settings():
    """DDPG (no smoothing, no delay) on the same probe with two per-env settings, as rl-baselines3-zoo
    tunes per env: exploration noise 0.3 instead of 0.1, and the actor learning rate of the DDPG paper
    (Lillicrap et al. 2016: actor 1e-4, critic 1e-3) for 140 iterations. At the tests' shared actor rate
    1e-3 a seed's actor swings (8 seeds: one falls from 0.985 to 0.767 of the optimum between 150 and
    160 iterations) and a 2-seed run sits at 0.948 after 80; at 1e-4 every seed climbs steadily (2 seeds:
    >= 0.958 from 90 iterations on; 5 and 8 seeds: >= 0.95 from 140; benchmarks/offpolicy_drift.py)."""
    env, env_params = problem()
    cfg = configure(td3.default_config("ddpg"), "ddpg")
    cfg.ddpg.update(exploration_noise=0.3, actor_lr=1e-4)
    agent = td3.make_ddpg(cfg, env)
    assert agent.name == "ddpg" and agent.hp.n_critics == 1
    before, after, _ = train(agent, env, env_params, seeds=2, calls=14)
    assert before.max() < 0.5, before
    assert (after >= 0.95).all(), after
