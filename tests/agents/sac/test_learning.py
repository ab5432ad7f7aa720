"""It learns: SAC reaches the closed-form optimum of the continuous `drift` probe (2 seeds in one
compile here; 5 seeds: the issue-26 report)."""

import numpy as np

from jaxtrade.agents import sac
from tests.agents.drift_continuous import configure, problem, train


def test_continuous_drift_probe_reaches_95_percent_of_the_closed_form_optimum():
    """The optimum (long 1.0 held) sits on the action bound, where a tanh-Gaussian of entropy -1 cannot
    concentrate (its mode plateaus near 0.90 of the optimum, -2 near 0.96): target entropy -3 (plateau
    near 0.985), and a temperature that starts at 0.01 (rewards of 0.01 a step) and learns at 3e-3.
    100 iterations of 32 envs x 16 steps (2 seeds: 0.78 and 0.99 after 70, both 0.986 from 80 on)."""
    env, env_params = problem()
    cfg = configure(sac.default_config(), "sac")
    cfg.sac.update(init_alpha=0.01, alpha_lr=3e-3, target_entropy=-3.0)
    agent = sac.make(cfg, env)
    before, after, metrics = train(agent, env, env_params, seeds=2, calls=10)
    assert agent.compiles == 1
    assert not np.asarray(metrics["any_nonfinite"]).any()
    assert before.max() < 0.5, before
    assert (after >= 0.95).all(), after
