"""SAC, TD3 and DDPG on the frame at smoke size: the portfolio env's continuous weights (and the single
env's exposure), chosen by `env.action_space=auto` from the agent alone, trained by `loop.train`
through `--config.agent.name`, evaluated and reported like PPO, resumed from `latest`, and the best
model rebuilt from its artifact alone."""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest

from jaxtrade import eval as evaluate
from jaxtrade.train import artifact, evaluation
from jaxtrade.train import loop as loop_lib
from jaxtrade.train.setup import make_split_env


def smoke(agent: str, iterations: int = 2):
    cfg = importlib.import_module("experiments.configs.smoke").get_config()
    cfg.agent.name = agent          # env.action_space stays "auto"
    cfg.train.iterations = iterations
    cfg.train.eval_every = 2
    cfg.train.final_report = False
    cfg.train.tensorboard = False
    cfg.train.n_devices = 1
    return cfg


def test_sac_trains_reports_resumes_and_reloads_on_portfolio_weights(tmp_path):
    workdir = str(tmp_path / "sac")
    result = loop_lib.train(smoke("sac"), workdir, verbosity="quiet")
    assert result.iterations == 2 and len(result.val_history) == 1
    best = os.path.join(workdir, "checkpoints", "best_composite")
    policy, spec = artifact.load_model(best)
    assert spec.agent == "sac" and spec.env["action_space"] == "weights"
    market, split = evaluation.split_of(spec, "val")
    env, params = make_split_env(spec.env, split)
    frame = evaluate.backtest(policy, env, params, dates=split.dates, symbols=split.symbols)
    assert len(frame) > 0 and np.isfinite(frame.select_dtypes("number").to_numpy()).all()
    # Resumed from `latest` (buffer included) for two more iterations.
    resumed = loop_lib.train(smoke("sac", iterations=4), workdir, verbosity="quiet")
    assert resumed.iterations == 4


@pytest.mark.parametrize("name", ["td3", "ddpg"])
def test_td3_and_ddpg_make_through_the_portfolio_config(name):
    """The smoke config builds both on the weights env (training is the same code path as SAC's)."""
    from jaxtrade.train import setup
    s = setup.build(smoke(name))
    agent = s.make_agent()
    assert agent.name == name and agent.action_dim == s.env.action_spec.shape[0]
    assert s.env_config["action_space"] == "weights"


def test_the_single_env_config_gives_continuous_agents_its_exposure():
    """single_sp500.py with td3: env.action_space=auto -> "exposure" (bounds -1 .. 1), PPO on the same
    file still trades the three positions."""
    from jaxtrade.train import setup
    cfg = importlib.import_module("experiments.configs.single_sp500").get_config()
    assert cfg.env.action_space == "auto"
    cfg.agent.name = "td3"
    assert setup.env_config_of(cfg)["action_space"] == "exposure"
    cfg.agent.name = "ppo"
    assert setup.env_config_of(cfg)["action_space"] == "positions"
