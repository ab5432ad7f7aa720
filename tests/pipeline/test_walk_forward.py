"""Walk-forward end to end on a tiny config (hourly EUR/USD, 3 expanding folds of a few iterations):
the summary JSON, warm starts, phases and compiles, selection without leakage, resume between folds,
and the main's user errors."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from jaxtrade.pipeline import walk_forward as wf
from jaxtrade.train import artifact
from tests.pipeline.walk_forward_tiny import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    starts = {}
    hooks = wf.WalkForwardHooks(on_fold_start=lambda fold, p: starts.__setitem__(fold.index, p))
    workdir = str(tmp_path_factory.mktemp("wf") / "reference")
    cfg = tiny_config()
    cfg.walk_forward.registry = os.path.join(os.path.dirname(workdir), "registry")
    result = wf.run(cfg, workdir, hooks=hooks)
    return result, starts


def test_every_fold_model_is_registered_once_with_its_warm_start_parent(reference):
    from jaxtrade.pipeline.registry import Registry

    result, _ = reference
    folds = result.summary["folds"]
    reg = Registry(os.path.join(os.path.dirname(result.workdir), "registry"))
    entries = reg.list(name="walk_forward")
    refs = [f"walk_forward/v{i}" for i in (1, 2, 3)]
    assert [e.ref for e in entries] == [f["registered"] for f in folds] == refs
    for i, (e, f) in enumerate(zip(entries, folds, strict=True)):
        assert f"fold_{i}" in e.tags and e.stage == "rl" and e.selection["split"] == "val"
        assert e.selection["composite"] == pytest.approx(f["val_composite"], rel=1e-12)
        # graded on the fold's own test window, which no choice saw, never on the validation that chose it
        assert e.held_out["split"] == f"test window of fold {i}"
        assert e.held_out["sharpe"] == pytest.approx(f["test"][f["agent_row"]]["sharpe"], rel=1e-9)
        # the trials it was chosen among: its fold's checkpoints and the carried model
        assert e.trials["n_trials"] == f["overfitting"]["n_trials"] >= 1
        assert e.parents == ((folds[i - 1]["registered"],) if i and f["warm_start"] else ())
        assert e.files == reg.check(e).files          # the stored copy verifies
    # A resumed run meeting an already registered fold finds it instead of registering it again.
    again = wf._register_fold(_with_registry(reg.root), result.workdir, folds[1], folds[:1])
    assert again == folds[1]["registered"] and len(reg.list(name="walk_forward")) == 3


def _with_registry(root):
    w = tiny_config().walk_forward
    w.registry = root
    return w


DECISIONS = ("train_rows", "val_rows", "test_rows", "phase", "hparams", "update_epochs", "budget_timesteps",
             "budget_iterations", "iterations", "timesteps", "early_stopped", "val_scores", "val_composite",
             "chosen", "test")


def test_summary_json_has_every_field(reference):
    result, _ = reference
    with open(os.path.join(result.workdir, wf.JSON_NAME)) as f:
        summary = json.load(f)
    assert summary == json.loads(json.dumps(result.summary)) and summary["complete"] and result.complete
    assert len(summary["folds"]) == 3
    for i, r in enumerate(summary["folds"]):
        assert r["index"] == i and r["trained"] and r["iterations"] == r["budget_iterations"] == 3
        assert r["timesteps"] == 3 * 32 and r["wall_seconds"] > 0
        assert set(r["val_scores"]) == ({"new"} if i == 0 else {"new", "previous"})
        assert r["val_composite"] == r["val_scores"][r["chosen"]]["composite"]
        assert {"ppo_agent", "long_buy_hold", "flat", "short"} <= set(r["test"])
        assert {"sharpe", "cumulative_return", "max_drawdown"} <= set(r["test"]["ppo_agent"])
        assert r["train_dates"][0] == summary["plan"][0]["train_dates"][0]    # expanding: one first row
        assert artifact.is_artifact(r["model"])
    t = summary["totals"]
    assert t["folds"] == t["folds_done"] == 3 and t["timesteps"] == 288
    assert summary["budgets"] == [96, 91, 87]
    assert t["timesteps_saved_by_adaptive_budget"] == 0        # 96, 91, 87 all round up to 3 iterations
    assert t["timesteps_saved_by_early_stopping"] == 0
    assert set(summary["out_of_sample"]) >= {"ppo_agent", "long_buy_hold"}
    report = open(result.report_path).read()
    assert "## Folds" in report and "## Stitched out-of-sample" in report and "folds.png" in report
    assert os.path.exists(os.path.join(result.workdir, "oos", "equity.png"))


def test_warm_start_takes_the_previous_chosen_model(reference):
    result, starts = reference
    assert starts[0] is None
    for i in (1, 2):
        chosen = artifact.load_params(result.summary["folds"][i - 1]["model"])
        jax.tree.map(np.testing.assert_array_equal, starts[i], chosen)
        assert result.summary["folds"][i]["warm_start"] == result.summary["folds"][i - 1]["model"]
    # and fold 1's model moved away from its start (the new model trained, or the carried one kept)
    r1 = result.summary["folds"][1]
    new = artifact.load_params(os.path.join(os.path.dirname(r1["model"]), "checkpoints", "best_composite"))
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(starts[1]),
                                                        strict=True))


def test_phases_change_traced_hyperparameters_and_compile_once_per_epochs(reference):
    result, _ = reference
    folds, t = result.summary["folds"], result.summary["totals"]
    assert [r["phase"] for r in folds] == ["aggressive", "balanced", "fine_tune"]
    ratio = 3.0   # the config's critic_lr / actor_lr
    for r, (lr, ent, clip, epochs) in zip(folds, [(2e-3, 0.05, 0.2, 1), (1e-3, 0.02, 0.15, 2),
                                                  (5e-4, 0.01, 0.1, 2)], strict=True):
        h = r["hparams"]
        assert h["actor_lr"] == pytest.approx(lr) and h["critic_lr"] == pytest.approx(lr * ratio)
        assert h["ent_coef"] == pytest.approx(ent) and h["clip_eps"] == pytest.approx(clip)
        assert r["update_epochs"] == epochs
    # balanced and fine-tune (and the growing, padded training windows) share one compile
    assert t["compiles"] == 2 and t["compiles_by_epochs"] == {"1": 1, "2": 1}


def test_perturbing_the_future_changes_no_decision_of_the_fold(reference, tmp_path):
    from jaxtrade.data import load_dataset

    result, _ = reference
    ref0 = result.summary["folds"][0]
    cut = ref0["val_rows"][1] + 1
    md = load_dataset("eurusd-1h")
    rng = np.random.default_rng(0)

    def bump(x):
        if x is None:
            return None
        x = np.array(x, np.float64)
        x[cut:] = x[cut:] * np.exp(rng.normal(0.0, 0.01, size=x[cut:].shape)).cumprod(axis=0)
        return x

    perturbed = dataclasses.replace(md, **{k: bump(getattr(md, k)) for k in ("close", "open", "high", "low")})
    assert not np.allclose(perturbed.close[cut:], md.close[cut:])
    workdir = str(tmp_path / "perturbed")
    json_path = os.path.join(workdir, wf.JSON_NAME)
    stop = wf.WalkForwardHooks(should_stop=lambda: os.path.exists(json_path))     # after fold 0
    got = wf.run(tiny_config(), workdir, market=perturbed, hooks=stop).summary["folds"][0]
    for k in DECISIONS:
        if k != "test":
            assert got[k] == ref0[k], k
    jax.tree.map(np.testing.assert_array_equal, artifact.load_params(got["model"]),
                 artifact.load_params(ref0["model"]))
    # the perturbation reached the test window (after the decision), so the test statistics differ
    long_return = lambda r: r["test"]["long_buy_hold"]["cumulative_return"]
    assert long_return(got) != long_return(ref0)


_KILLED_RUN = """
import sys
sys.path.insert(0, sys.argv[1])
from test_walk_forward import tiny_config
from jaxtrade.pipeline import walk_forward
walk_forward.run(tiny_config(), sys.argv[2])
"""


def test_a_walk_forward_killed_after_a_fold_continues_to_the_same_result(reference, tmp_path):
    """SIGKILL once fold 0 is recorded (fold 1 is then training): started again, the walk-forward keeps
    fold 0 as it was and ends where the uninterrupted run did."""
    result, _ = reference
    workdir = str(tmp_path / "killed")
    json_path = os.path.join(workdir, wf.JSON_NAME)
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, os.path.dirname(__file__), workdir], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not os.path.exists(json_path) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.kill()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    with open(json_path) as f:
        killed = json.load(f)
    assert not killed["complete"] and len(killed["folds"]) == 1
    second = wf.run(tiny_config(), workdir)
    assert second.complete and second.summary["folds"][0] == killed["folds"][0]   # fold 0 not trained again
    for got, want in zip(second.summary["folds"], result.summary["folds"], strict=True):
        for k in DECISIONS:
            assert got[k] == want[k], (got["index"], k)
    other = tiny_config()
    other.walk_forward.step = 50
    with pytest.raises(ValueError, match="holds a walk-forward over other folds"):
        wf.run(other, workdir)


def test_a_stop_request_between_folds_returns_and_the_run_continues(tmp_path):
    workdir = str(tmp_path / "stopped")
    json_path = os.path.join(workdir, wf.JSON_NAME)
    stop = wf.WalkForwardHooks(should_stop=lambda: os.path.exists(json_path))
    first = wf.run(tiny_config(), workdir, hooks=stop)
    assert not first.complete and first.report_path is None and first.summary["totals"]["folds_done"] == 1


def test_main_prints_a_bad_fold_spec_as_one_line_and_exits_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.walk_forward",
         "--config=experiments/configs/walk_forward_eurusd.py", f"--workdir={tmp_path}",
         "--config.walk_forward.initial_window=1000"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert ("error: walk_forward.initial_window (1000 rows) must be >= 3 * walk_forward.step (1440)"
            in proc.stderr)


def test_choose_prefers_the_higher_composite_and_the_new_model_on_ties():
    assert wf.choose({"new": 0.1, "previous": 0.2}) == "previous"
    assert wf.choose({"new": 0.2, "previous": 0.2}) == "new"
    assert wf.choose({"new": float("nan"), "previous": -5.0}) == "previous"
    assert wf.choose({"new": 0.0}) == "new"


def test_fold_patience_stops_training_but_tests_every_fold(tmp_path, monkeypatch):
    """Across-fold early stopping: after `fold_patience` folds where the carried model won, later folds
    train nothing, are still tested with the carried model, and say so."""
    monkeypatch.setattr(wf, "choose", lambda composite: "previous" if "previous" in composite else "new")
    cfg = tiny_config()
    cfg.walk_forward.fold_patience = 1
    folds = wf.run(cfg, str(tmp_path / "patience")).summary["folds"]
    assert [r["trained"] for r in folds] == [True, True, False]
    assert folds[2]["iterations"] == folds[2]["timesteps"] == 0 and folds[2]["chosen"] == "previous"
    assert folds[2]["test"]["ppo_agent"]["sharpe"] is not None          # tested, not skipped
    jax.tree.map(np.testing.assert_array_equal, artifact.load_params(folds[2]["model"]),
                 artifact.load_params(folds[0]["model"]))               # the model carried from fold 0


def _adam_counts(fold_dir: str) -> list[int]:
    """The optimizer's step counters in a fold's `latest` checkpoint (read without a target)."""
    from jaxtrade.train.checkpoints import Checkpoints

    state = Checkpoints(fold_dir).restore("latest", None).state
    leaves = jax.tree_util.tree_leaves_with_path(state["train_state"])
    counts = [int(np.asarray(x).ravel()[0]) for p, x in leaves if "count" in jax.tree_util.keystr(p)]
    assert counts, "no optimizer step counter found"
    return counts


def test_reset_optimizer_false_carries_the_optimizer_state(reference, tmp_path):
    result, _ = reference
    cfg = tiny_config()
    cfg.walk_forward.reset_optimizer = False
    cfg.walk_forward.max_folds = 3
    workdir = str(tmp_path / "keep_adam")
    json_path = os.path.join(workdir, wf.JSON_NAME)

    def two_done():
        if not os.path.exists(json_path):
            return False
        with open(json_path) as f:
            return len(json.load(f)["folds"]) >= 2

    folds = wf.run(cfg, workdir, hooks=wf.WalkForwardHooks(should_stop=two_done)).summary["folds"]
    assert [r["reset_optimizer"] for r in folds] == [True, False]
    ref = [os.path.dirname(r["model"]) for r in result.summary["folds"][:2]]
    kept = os.path.dirname(folds[1]["model"])
    # fold 1 continued fold 0's Adam counters; with the reset it started them from zero
    carried = [a + b for a, b in zip(_adam_counts(ref[0]), _adam_counts(ref[1]), strict=True)]
    assert _adam_counts(kept) == carried


def test_cpcv_trains_every_combination_and_reports_every_path(tmp_path):
    """walk_forward.mode="cpcv" end to end: 3 groups, 2 tested per fold: C(3, 2) = 3 folds of one
    iteration, each from scratch on its own training block (one compile for all: padded to one shape),
    and C(2, 1) = 2 backtest paths assembled from the folds' tests of each group."""
    cfg = tiny_config()
    w = cfg.walk_forward
    w.mode, w.n_groups, w.n_test_groups, w.start, w.timesteps = "cpcv", 3, 2, "2017-11-01", 32
    cfg.ppo.update_epochs = 1        # no phases in CPCV mode: the agent section's value, kept small
    starts = {}
    hooks = wf.WalkForwardHooks(on_fold_start=lambda fold, p: starts.__setitem__(fold.index, p))
    result = wf.run(cfg, str(tmp_path / "cpcv"), hooks=hooks)
    s = result.summary
    with open(os.path.join(result.workdir, wf.JSON_NAME)) as f:
        assert json.load(f) == json.loads(json.dumps(s)) and result.complete
    cv = s["cpcv"]
    assert (cv["n_folds"], cv["n_paths"], cv["purge"], cv["embargo"]) == (3, 2, 30 + 32, 30)
    assert cv["paths"] == [[0, 0, 1], [1, 2, 2]] and len(s["folds"]) == 3
    assert starts == {0: None, 1: None, 2: None} and s["totals"]["compiles"] == 1
    for r, groups in zip(s["folds"], [[0, 1], [0, 2], [1, 2]], strict=True):
        assert r["test_groups"] == groups and r["iterations"] == 1 and artifact.is_artifact(r["model"])
        assert r["episode_start_rows"] == sum(b - a + 1 - 30 - 32 for a, b in r["train_blocks"])
        assert set(r["test"]) == {str(g) for g in groups}
    paths, row = s["paths"], s["paths"]["agent_row"]
    assert [q["folds"] for q in paths["per_path"]] == cv["paths"]
    for q in paths["per_path"]:
        # a path compounds group g's test window as tested by fold q["folds"][g], for every group
        want = np.prod([1 + s["folds"][f]["test"][str(g)][row]["cumulative_return"]
                        for g, f in enumerate(q["folds"])]) - 1
        assert q["stats"][row]["cumulative_return"] == pytest.approx(want, rel=1e-9, abs=1e-12)
    sharpes = [q["stats"][row]["sharpe"] for q in paths["per_path"]]
    d = paths["sharpe"][row]
    assert d["n"] == 2 and d["min"] == min(sharpes) and d["max"] == max(sharpes)
    assert d["mean"] == pytest.approx(np.mean(sharpes)) and d["std"] == pytest.approx(np.std(sharpes, ddof=1))
    report = open(result.report_path).read()
    assert "## Sharpe across the 2 paths" in report and f"| {row} | 2 | {d['mean']:.3f} |" in report
    assert os.path.exists(os.path.join(result.workdir, "paths.png"))


def test_an_off_policy_agent_walks_forward_with_warm_starts(tmp_path):
    """SAC through the same walk-forward (the single env's continuous exposure, chosen by
    `env.action_space=auto`): every fold trains, is tested on its own window under the agent's row and
    registered; fold 1 starts from fold 0's chosen model; the phases' PPO keys are not the agent's and
    are left alone."""
    cfg = tiny_config()
    cfg.agent.name = "sac"
    cfg.sac.update(dict(n_envs=4, n_steps=8, buffer_size=256, batch_size=16, learning_starts=32,
                        utd_ratio=0.25))
    cfg.walk_forward.max_folds = 2
    cfg.walk_forward.registry = str(tmp_path / "registry")
    starts = {}
    hooks = wf.WalkForwardHooks(on_fold_start=lambda fold, p: starts.__setitem__(fold.index, p))
    result = wf.run(cfg, str(tmp_path / "sac"), hooks=hooks)
    folds = result.summary["folds"]
    assert result.complete and len(folds) == 2
    for i, r in enumerate(folds):
        assert r["agent_row"] == "sac_agent" and r["trained"] and r["timesteps"] == 96
        assert {"sac_agent", "long_buy_hold", "flat", "short"} <= set(r["test"])
        assert np.isfinite(r["test"]["sac_agent"]["sharpe"])
        spec = artifact.load_spec(r["model"])
        assert spec.agent == "sac" and spec.env["action_space"] == "exposure"
        assert r["registered"] == f"walk_forward/v{i + 1}"
        assert r["hparams"].get("ent_coef") is None and r["update_epochs"] is None
    assert starts[0] is None
    jax.tree.map(np.testing.assert_array_equal, starts[1], artifact.load_params(folds[0]["model"]))
    assert folds[1]["warm_start"] == folds[0]["model"]
    assert set(folds[1]["val_scores"]) == {"new", "previous"}      # the carried model was a candidate
    assert set(result.summary["out_of_sample"]) >= {"sac_agent", "long_buy_hold"}
