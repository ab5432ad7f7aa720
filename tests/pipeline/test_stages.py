"""The pipeline end to end on a tiny sp500-20 config: pretrain -> rl -> hybrid -> ensemble ends with
four registered models whose lineage, grades and artifacts are right, `experiments.registry list`
prints them with their grades, and a rerun skips every finished stage."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from jaxtrade.pipeline import ensemble as ensemble_lib
from jaxtrade.pipeline import stages
from jaxtrade.pipeline.registry import GRADES, Registry, grade
from jaxtrade.train import artifact, evaluation

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tiny_config():
    from experiments.configs import pipeline_sp500

    cfg = pipeline_sp500.get_config()
    # The MLP encoder and a GRU core compile several times faster than the CLSTM (whose pretraining and
    # transplant tests/pipeline/test_pretrain.py covers); the stages are the same.
    cfg.model.encoder, cfg.model.core, cfg.model.hidden_dim, cfg.model.encoder_layers = "mlp", "gru", 8, 1
    cfg.env.window, cfg.env.episode_length = 10, 32
    cfg.data.train = ("2012-01-01", "2014-12-31")
    cfg.data.val = ("2015-01-01", "2015-06-30")
    cfg.ppo.n_envs, cfg.ppo.n_steps, cfg.ppo.update_epochs, cfg.ppo.critic_epochs = 4, 8, 1, 1
    cfg.train.iterations, cfg.train.eval_every, cfg.train.checkpoint_every = 4, 2, 4
    cfg.train.tensorboard = False
    cfg.pretrain.epochs, cfg.pretrain.batch_size = 3, 64
    cfg.pipeline.hybrid_iterations = 2
    return cfg


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("pipeline") / "run")
    return stages.run(tiny_config(), workdir, verbosity="quiet")


def test_four_models_registered_with_their_lineage(pipeline):
    reg = Registry(pipeline.registry)
    entries = {e.stage: e for e in reg.list()}
    assert len(reg.list()) == 4 and set(entries) == set(stages.STAGES)
    enc, rl, hyb, ens = (entries[s] for s in stages.STAGES)
    assert pipeline.refs == {s: entries[s].ref for s in stages.STAGES}
    assert enc.parents == () and rl.parents == (enc.ref,)
    assert hyb.parents == (enc.ref, rl.ref) and ens.parents == (rl.ref, hyb.ref)
    for e in entries.values():
        # chosen on validation (selection), graded on the test split no stage read to choose (held-out)
        assert e.selection["split"] == "val" and e.held_out["split"] == "test"
        assert e.grade in [g for g, _ in GRADES] + ["F"]
        assert (e.grade, e.score) == grade(e.held_out, e.stage)      # graded on what it recorded
        reg.check(e)
    assert rl.trials["n_trials"] >= 1 and hyb.trials["n_trials"] >= 1     # the checkpoints compared
    # The rl model started from the registered encoder, frozen: its encoder is the encoder's, bit for bit.
    enc_params, _ = artifact.load_encoder(reg.path(enc.ref))
    rl_params = artifact.load_params(reg.path(rl.ref))
    for a, b in zip(*(jax_leaves(t) for t in (enc_params, rl_params["encoder"])), strict=True):
        np.testing.assert_array_equal(a, b)
    # The hybrid fine-tuned everything: its encoder moved away from the pretrained one.
    hyb_params = artifact.load_params(reg.path(hyb.ref))
    assert any(not np.array_equal(a, b) for a, b in zip(jax_leaves(enc_params),
                                                         jax_leaves(hyb_params["encoder"]), strict=True))


def jax_leaves(tree):
    import jax

    return jax.tree.leaves(tree)


def test_registered_ensemble_is_a_policy_with_its_validation_metrics(pipeline):
    reg = Registry(pipeline.registry)
    ref = pipeline.refs["ensemble"]
    policy, spec = reg.load_model(ref)
    assert spec.agent == "ensemble" and spec.model["mode"] == tiny_config().pipeline.ensemble_mode
    assert spec.model["members"] == [pipeline.refs["rl"], pipeline.refs["hybrid"]]
    frame, _ = ensemble_lib.backtest_ensemble(reg.path(ref), "val")
    again = evaluation.validation_metrics(frame)
    for k in ("sharpe", "max_drawdown", "annual_return"):
        recorded = reg.get(ref).selection[k]
        assert (recorded is None and not np.isfinite(again[k])) or recorded == pytest.approx(again[k],
                                                                                             rel=1e-9)


def test_registry_list_prints_the_four_with_grades(pipeline):
    out = subprocess.run([sys.executable, "-m", "experiments.registry", "list",
                          f"--root={pipeline.registry}"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].split()[:5] == ["ref", "semver", "stage", "agent", "grade"] and len(lines) == 5
    reg = Registry(pipeline.registry)
    for line, e in zip(lines[1:], reg.list(), strict=True):
        assert line.split()[:5] == [e.ref, e.semver, e.stage, e.agent or "-", e.grade]
    assert [e.agent for e in reg.list()] == ["", "ppo", "ppo", "ensemble"]


def test_a_rerun_skips_finished_stages(pipeline):
    again = stages.run(tiny_config(), pipeline.workdir, verbosity="quiet")
    assert again.refs == pipeline.refs and again.seconds == {}
    assert len(Registry(pipeline.registry).list()) == 4


def test_the_report_gives_each_stage_held_out_and_the_baselines_of_the_same_split(pipeline):
    """report.md: each stage's ref and grade, the held-out test metrics with the split's dates, the baselines
    of that same split (in the rl model's env), and the next commands."""
    text = open(os.path.join(pipeline.workdir, "report.md"), encoding="utf-8").read()
    reg = Registry(pipeline.registry)
    entries = {e.stage: e for e in reg.list()}
    period = entries["rl"].held_out["period"]
    assert {entries[s].held_out["period"] for s in ("rl", "hybrid", "ensemble")} == {period}
    assert f"## Held-out: the test split ({period})" in text
    for stage in ("rl", "hybrid", "ensemble"):
        e = entries[stage]
        (line,) = [x for x in text.splitlines() if x.startswith(f"| {stage} | `{e.ref}` |")]
        assert f"| {e.grade} | {e.score:.3f} | {e.held_out['sharpe']:.3f} |" in line
    assert f"Encoder (pretrain): `{entries['pretrain'].ref}`, grade {entries['pretrain'].grade}" in text
    base = text.split("## Baselines: the same test split (")[1].split("## Next")[0]
    assert base.startswith(f"{period}), in `{entries['rl'].ref}`'s env")
    for label in ("equal_weight_buy_hold", "min_variance", "random (mean of 5 seeds)"):
        assert f"| {label} | " in base, label
    assert f"experiments.evaluate --checkpoint={reg.path(entries['ensemble'].ref)}" in text
    assert f"--model={entries['ensemble'].ref} --bars_csv=sample --dry_run" in text
