"""The hyperparameter search end to end on a tiny config: a search killed mid-batch (SIGKILL) resumes
and finishes; batches are populations sharing one compile; every pruning decision matches the median
rule; trial values are their best models' validation metrics; the space is checked."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from jaxtrade.agents import ppo
from jaxtrade.pipeline import search
from jaxtrade.pipeline.registry import grade
from jaxtrade.train import artifact, sources

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = "experiments/configs/search_smoke.py"


def tiny_config():
    from experiments.configs import search_smoke

    return search_smoke.get_config()


def _kill_during_second_batch(workdir: str) -> None:
    """Runs the search main in a subprocess and SIGKILLs it once the second batch has started."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "experiments.search", f"--config={CONFIG}",
                             f"--workdir={workdir}", "--verbosity=quiet"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    marker = os.path.join(workdir, "batch_0002", "metrics.jsonl")
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(marker) and os.path.getsize(marker) > 0:
            break
        time.sleep(0.05)
    alive = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    out = proc.communicate()[0].decode(errors="replace")
    assert alive, f"the search ended before it could be killed in its second batch:\n{out[-3000:]}"


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("search") / "study")
    _kill_during_second_batch(workdir)
    cfg = tiny_config()
    cfg.search.registry = os.path.join(os.path.dirname(workdir), "registry")
    result = search.run(cfg, workdir)
    optuna = pytest.importorskip("optuna")
    study = search.open_study(cfg.search, workdir)
    return result, study, optuna, workdir, cfg


def test_killed_search_resumes_and_finishes(resumed):
    result, study, optuna, workdir, cfg = resumed
    trials = study.get_trials()
    state = {t.number: t.state for t in trials}
    # Batch 1 (trials 0, 1) finished before the kill; batch 2 (2, 3) was killed: FAIL, re-asked as 4, 5.
    assert state[2] == state[3] == optuna.trial.TrialState.FAIL
    retries = {t.user_attrs.get("retry_of"): t for t in trials if t.user_attrs.get("retry_of") is not None}
    assert set(retries) == {2, 3}
    for old, new in retries.items():
        assert new.params == study.trials[old].params            # same parameters
        assert new.user_attrs["seed"] == study.trials[old].user_attrs["seed"] == cfg.seed + old
    finished = [t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE,
                                                  optuna.trial.TrialState.PRUNED)]
    assert len(finished) == cfg.search.n_trials
    assert result.stopped == "done" and result.batches == 2
    # Two batches of two, one static signature: one compile of the population iteration.
    assert result.compiles == 1
    assert os.path.isfile(os.path.join(workdir, "trials.csv")) and os.path.isfile(result.report_path)


def test_trial_values_are_their_best_models_validation_metric(resumed):
    result, study, optuna, workdir, cfg = resumed
    complete = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) >= 2
    for t in complete:
        spec = artifact.load_spec(os.path.join(workdir, t.user_attrs["artifact"]))
        selection = sources.metric_sources(spec.metrics)[0]
        assert selection["split"] == "val" and selection["selected_by"] == cfg.search.objective
        assert selection[cfg.search.objective] == pytest.approx(t.value, rel=1e-12)
        assert spec.seed == t.user_attrs["seed"]
        for k, v in t.params.items():      # the member trained with the trial's own hyperparameters
            assert selection["hparams"][k] == pytest.approx(v, rel=1e-6)
    best = max(complete, key=lambda t: t.value)
    assert result.best_trial == best.number and result.best_value == best.value
    assert len({tuple(sorted(t.params.items())) for t in complete}) == len(complete)


def test_every_pruning_decision_follows_the_median_rule(resumed):
    """optuna's MedianPruner: prune when the trial's best intermediate value so far is below the median
    of the completed trials' values at the same step; batches are told only after they finish, so the
    completed trials a batch is judged against are those of earlier batches."""
    result, study, optuna, workdir, cfg = resumed
    trials = study.get_trials()
    batch = {t.number: t.user_attrs["batch_dir"] for t in trials}
    first = {b: min(n for n, bb in batch.items() if bb == b) for b in set(batch.values())}
    for t in trials:
        if t.state not in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED):
            continue
        earlier = [u for u in trials if u.state == optuna.trial.TrialState.COMPLETE
                   and first[batch[u.number]] < first[batch[t.number]]]
        steps = sorted(t.intermediate_values)
        pruned_at = None
        for i, step in enumerate(steps):
            at_step = [u.intermediate_values[step] for u in earlier if step in u.intermediate_values]
            if len(earlier) < cfg.search.pruner_startup_trials or not at_step:
                continue
            best_so_far = max(t.intermediate_values[s] for s in steps[:i + 1])
            if best_so_far < np.percentile(at_step, 50):
                pruned_at = step
                break
        if t.state == optuna.trial.TrialState.PRUNED:
            assert pruned_at == steps[-1], f"trial {t.number} pruned at {steps[-1]}, rule says {pruned_at}"
        else:
            assert pruned_at is None, f"trial {t.number} should have been pruned at step {pruned_at}"
            assert len(steps) == cfg.train.iterations // cfg.train.eval_every


def test_best_trial_is_registered_with_its_parameters(resumed):
    result, study, optuna, workdir, cfg = resumed
    from jaxtrade.pipeline.registry import Registry

    entry = Registry(cfg.search.registry).get(result.registered)
    assert entry.stage == "rl" and f"trial_{result.best_trial}" in entry.tags
    assert entry.selection["composite"] == pytest.approx(result.best_value, rel=1e-12)
    # graded on the test split, read once for the winner; the trials behind it: every checkpoint of the study
    assert entry.held_out["split"] == "test" and entry.grade == grade(entry.held_out, "rl")[0]
    assert entry.trials["n_trials"] == len(search.study_ledger(workdir)) >= len(study.get_trials())
    assert "## Overfitting: how much of this is selection luck" in open(result.report_path).read()
    policy, spec = Registry(cfg.search.registry).load_model(result.registered)
    for k, v in result.best_params.items():
        assert sources.metric_sources(spec.metrics)[0]["hparams"][k] == pytest.approx(v, rel=1e-6)


PPO_TRACED = ppo.TracedHParams.names()          # what the search may vary for PPO


@pytest.mark.parametrize("space, words", [
    ({"n_envs": "float:1:2"}, ["search.space.n_envs", "traced"]),
    ({"actor_lr": "log:0:1e-3"}, ["search.space.actor_lr", "LOW > 0"]),
    ({"clip_eps": "uniform:0.1:0.3"}, ["search.space.clip_eps", "kind"]),
    ({"clip_eps": "float:0.3"}, ["search.space.clip_eps", "float:LOW:HIGH"]),
    ({}, ["search.space is empty"]),
])
def test_space_errors_name_the_key(space, words):
    with pytest.raises(ValueError) as e:
        search.parse_space(space, PPO_TRACED)
    assert all(w in str(e.value) for w in words), str(e.value)


def test_parse_space_reads_bounds():
    dims = search.parse_space({"actor_lr": "log:1e-5:1e-3", "gamma": "float:0.9:0.999"}, PPO_TRACED)
    assert [(d.name, d.kind, d.low, d.high) for d in dims] == [("actor_lr", "log", 1e-5, 1e-3),
                                                               ("gamma", "float", 0.9, 0.999)]
    assert not any(math.isnan(d.low) for d in dims)


def test_search_md_names_the_best_model_the_next_command_and_every_pruned_trial(resumed):
    result, study, optuna, workdir, cfg = resumed
    text = open(result.report_path, encoding="utf-8").read()
    model = os.path.abspath(result.best_artifact)
    assert f"Best model: `{model}`" in text
    assert f".venv/bin/python -m experiments.evaluate --checkpoint={model}\n" in text
    assert f"experiments.registry info {result.registered} --root=" in text
    completed, others = text.split("## Completed trials")[1].split("## Pruned and failed trials")
    rows = lambda part: {int(line.split("|")[1]) for line in part.splitlines()
                         if line.startswith("| ") and line.split("|")[1].strip().isdigit()}
    by_state = lambda *states: {t.number for t in study.get_trials() if t.state in states}
    TS = optuna.trial.TrialState
    assert rows(completed) == by_state(TS.COMPLETE)
    assert rows(others) == by_state(TS.PRUNED, TS.FAIL) and by_state(TS.FAIL)    # the killed batch
    for t in study.get_trials():
        if t.state == TS.FAIL:             # the killed batch's trials name their reruns
            rerun = next(u.number for u in study.get_trials() if u.user_attrs.get("retry_of") == t.number)
            assert f"| {t.number} | FAIL |" in others and f"rerun as trial {rerun}" in others


def test_every_trainable_agent_registers_a_search_space_of_its_traced_hyperparameters():
    """`search.space` left empty searches the agent's registered space: for every trainable agent it
    parses against that agent's traced hyperparameters (built on a probe of its action kind)."""
    import ml_collections

    from jaxtrade.agents import registry
    from jaxtrade.envs.probes import make_probe
    from jaxtrade.models import default_model_config
    from jaxtrade.pipeline.search import parse_space

    assert not dict(search.default_config().space)
    for name in registry.registered():
        reg = registry.registration(name)
        probe = "drift" if "discrete" in reg.action_kinds else "drift_continuous"
        env, _ = make_probe(probe, episode_length=8, drift=0.01, noise=0.02, cost=0.02)
        full = ml_collections.ConfigDict(dict(seed=0, agent=dict(name=name)))
        full.model = default_model_config()
        full[name] = registry.default_config(name)
        agent = registry.make_agent(full, env)
        dims = parse_space(reg.search_space, agent.hparam_names())
        assert [d.name for d in dims] == list(reg.search_space), name
        assert {"actor_lr", "lr"} & set(reg.search_space), name
