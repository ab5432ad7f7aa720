"""DQN and A2C on the frame, end to end at smoke size: trained by `loop.run` through
`--config.agent.name`, their best models reloaded in a fresh process from the artifact alone,
registered with their agent's name, walked forward (DQN on the single env) and searched (A2C, two
trials in one population)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from jaxtrade import eval as evaluate
from jaxtrade.pipeline.registry import Registry
from jaxtrade.train import artifact, evaluation, sources
from jaxtrade.train import loop as loop_lib
from jaxtrade.train.setup import make_split_env

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def smoke(agent: str):
    cfg = importlib.import_module("experiments.configs.smoke").get_config()
    cfg.agent.name = agent
    cfg.train.iterations = 2
    cfg.train.eval_every = 2
    cfg.train.final_report = False
    cfg.train.tensorboard = False
    cfg.train.n_devices = 1
    return cfg


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = {}
    for name in ("dqn", "a2c"):
        workdir = str(tmp_path_factory.mktemp(name))
        result = loop_lib.train(smoke(name), workdir, verbosity="quiet")
        out[name] = (workdir, result)
    return out


_RELOAD = """
import json, sys
from jaxtrade import eval as evaluate
from jaxtrade.train import artifact, evaluation
from jaxtrade.train.setup import make_split_env
agents = []
for best, csv in zip(sys.argv[1::2], sys.argv[2::2]):
    policy, spec = artifact.load_model(best)
    market, split = evaluation.split_of(spec, "val")
    env, params = make_split_env(spec.env, split)
    evaluate.backtest(policy, env, params, dates=split.dates, symbols=split.symbols).to_csv(csv)
    agents.append(spec.agent)
print(json.dumps(agents))
"""


def test_saved_dqn_and_a2c_models_are_rebuilt_in_a_fresh_process_from_the_artifact_alone(trained, tmp_path):
    names = ("dqn", "a2c")
    bests = [os.path.join(trained[n][0], "checkpoints", "best_composite") for n in names]
    csvs = [str(tmp_path / f"{n}.csv") for n in names]
    args = [x for pair in zip(bests, csvs, strict=True) for x in pair]
    out = subprocess.run([sys.executable, "-c", _RELOAD, *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == list(names)
    for name, best, csv in zip(names, bests, csvs, strict=True):
        result = trained[name][1]
        assert result.iterations == 2 and len(result.val_history) == 1
        fresh = pd.read_csv(csv, index_col=0, parse_dates=True)
        # The same backtest in this process, through the same artifact: identical to the last digit.
        policy, spec = artifact.load_model(best)
        market, split = evaluation.split_of(spec, "val")
        env, params = make_split_env(spec.env, split)
        here = evaluate.backtest(policy, env, params, dates=split.dates, symbols=split.symbols)
        np.testing.assert_array_equal(fresh["value"].to_numpy(), here["value"].to_numpy())
        # ... and it is the model the run selected: its recorded validation Sharpe.
        assert evaluate.stats(here)["sharpe"] == pytest.approx(
            sources.metric_sources(spec.metrics)[0]["sharpe"], rel=1e-6, abs=1e-9)


def test_the_registry_records_each_models_agent(trained, tmp_path):
    reg = Registry(str(tmp_path / "registry"))
    for name in ("dqn", "a2c"):
        best = os.path.join(trained[name][0], "checkpoints", "best_composite")
        entry = reg.register(f"smoke_{name}", best, stage="rl")
        assert entry.agent == name
    assert {e.name: e.agent for e in Registry(reg.root).list()} == {"smoke_dqn": "dqn", "smoke_a2c": "a2c"}


def test_walk_forward_with_dqn_on_the_single_env(tmp_path):
    from jaxtrade.pipeline import walk_forward as wf

    cfg = importlib.import_module("experiments.configs.walk_forward_eurusd").get_config()
    cfg.agent.name = "dqn"
    cfg.model.hidden_dim = 8
    cfg.dqn.update(dict(n_envs=4, n_steps=8, buffer_size=256, batch_size=16, learning_starts=32,
                        utd_ratio=0.25, n_step=2))
    cfg.env.episode_length = 32
    cfg.train.eval_every, cfg.train.checkpoint_every = 1, 3
    cfg.train.bootstrap_samples = 20
    cfg.train.n_devices = 1
    w = cfg.walk_forward
    w.initial_window, w.step, w.val_size, w.mode, w.max_folds = 300, 60, 60, "expanding", 2
    w.timesteps, w.min_timesteps = 64, 64
    result = wf.run(cfg, str(tmp_path / "wf"))
    assert result.complete
    folds = result.summary["folds"]
    assert len(folds) == 2 and all(f["agent"] == "dqn" and f["agent_row"] == "dqn_agent" for f in folds)
    assert all({"dqn_agent", "long_buy_hold", "flat"} <= set(f["test"]) for f in folds)
    assert folds[1]["warm_start"] is not None            # fold 1 starts from fold 0's chosen DQN
    policy, spec = artifact.load_model(folds[1]["model"])
    assert spec.agent == "dqn" and spec.env["name"] == "single"
    assert "dqn_agent" in open(result.report_path).read()


def test_a_two_trial_search_with_a2c(tmp_path):
    from jaxtrade.pipeline import search

    cfg = importlib.import_module("experiments.configs.search_smoke").get_config()
    cfg.agent.name = "a2c"
    cfg.train.iterations = 2
    cfg.search.n_trials, cfg.search.batch_size = 2, 2
    assert not dict(cfg.search.space)          # empty: the agent's registered space
    cfg.search.registry = str(tmp_path / "registry")
    result = search.run(cfg, str(tmp_path / "search"), verbosity="quiet")
    assert result.counts.get("COMPLETE", 0) + result.counts.get("PRUNED", 0) == 2
    assert result.batches == 1 and result.compiles == 1      # two trials, one population, one compile
    assert set(result.best_params) == {"actor_lr", "critic_lr", "ent_coef"}   # a2c's registered space
    _, spec = artifact.load_model(result.best_artifact)
    assert spec.agent == "a2c"
    assert Registry(cfg.search.registry).get(result.registered).agent == "a2c"
    # A hyperparameter A2C does not trace is refused by name.
    cfg.search.space = dict(clip_eps="float:0.1:0.3")
    with pytest.raises(ValueError, match=r"search.space.clip_eps: only the agent's traced"):
        search.run(cfg, str(tmp_path / "search2"), verbosity="quiet")
