"""Supervised encoder pretraining on real data (sp500-20), the encoder artifact, its transplant into PPO
(`model.encoder_init`, frozen or fine-tuned, one member or a population) and hybrids.

One pretraining run (module fixture) serves every test; the RL runs are one iteration of a tiny PPO.
"""

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pandas as pd
import pytest

from experiments.configs import smoke
from jaxtrade.agents import ppo
from jaxtrade.pipeline import hybrid, pretrain
from jaxtrade.pipeline.registry import Registry
from jaxtrade.train import artifact, loop
from jaxtrade.train import setup as setup_lib
from jaxtrade.train.checkpoints import Checkpoints

TRAIN = ("2012-01-01", "2014-12-31")
WINDOW, H = 8, 20


def tiny_config(**pretrain_changes):
    cfg = smoke.get_config()
    cfg.model.encoder, cfg.model.hidden_dim, cfg.model.n_heads = "clstm", 8, 2
    cfg.env.window = WINDOW
    cfg.data.train, cfg.data.val, cfg.data.test = TRAIN, ("2015-01-01", "2015-03-31"), None
    cfg.train.iterations, cfg.train.eval_every = 1, 1
    cfg.pretrain = pretrain.default_config(**dict(dict(epochs=8, batch_size=32, learning_rate=3e-3,
                                                       vol_window=H), **pretrain_changes))
    return cfg


def _tree_equal(a, b) -> bool:
    return (jax.tree.structure(a) == jax.tree.structure(b)
            and all(x.dtype == y.dtype and np.array_equal(x, y)
                    for x, y in zip(jax.tree.leaves(jax.device_get(a)), jax.tree.leaves(jax.device_get(b)),
                                    strict=True)))


@pytest.fixture(scope="module")
def setup():
    return setup_lib.build(tiny_config())


@pytest.fixture(scope="module")
def samples(setup):
    return pretrain.build_samples(setup, setup.config.pretrain)


EPOCHS, PATIENCE = 10, 2
TEST = ("2015-04-01", "2015-07-31")


def pretrained_config():
    cfg = tiny_config(epochs=EPOCHS, patience=PATIENCE)
    cfg.data.test = TEST                   # held-out metrics on the test split's windows
    return cfg


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    return pretrain.run(pretrained_config(), str(tmp_path_factory.mktemp("pretrain")))


# SAMPLES


def test_targets_rows_split_and_standardization_match_a_hand_computation(setup, samples):
    """Targets at row t from the training split's float64 closes by a plain loop; rows, the
    chronological split with its gap and the training-only statistics by hand."""
    close = setup.splits.train.close                     # float64 [T, N], the split's own rows
    n_rows, start = len(close), setup.splits.train.start
    np.testing.assert_array_equal(samples.rows, np.arange(start, n_rows - H))
    n = len(samples.rows)
    n_val = round(0.2 * n)
    assert (samples.n_train, samples.n_val) == (n - n_val - H, n_val)
    # No training target row is a validation target row (the gap), none passes the split's last row.
    assert samples.rows[samples.n_train - 1] + H < samples.rows[samples.val][0] + 1
    assert samples.rows[-1] + H == n_rows - 1
    ret, vol = np.zeros((n, close.shape[1])), np.zeros((n, close.shape[1]))
    for i, t in enumerate(samples.rows):
        ret[i] = np.log(close[t + 1] / close[t])
        future = [np.log(close[k] / close[k - 1]) for k in range(t + 1, t + H + 1)]
        vol[i] = np.std(future, axis=0)
    assert samples.names == ("return", "volatility")    # adjusted closes only: no volume target
    np.testing.assert_allclose(samples.raw["return"], ret, rtol=1e-4, atol=1e-6)   # EnvData is float32
    np.testing.assert_allclose(samples.raw["volatility"], vol, rtol=1e-4, atol=1e-6)
    for k, raw in (("return", ret), ("volatility", vol)):
        train = raw[:samples.n_train]
        np.testing.assert_allclose(samples.mean[k], train.mean(0), rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(samples.std[k], train.std(0), rtol=1e-4)
        z = samples.targets[k]
        np.testing.assert_allclose(z[samples.train].mean(0), 0.0, atol=1e-4)
        np.testing.assert_allclose(z[samples.train].std(0), 1.0, atol=1e-4)


def test_volume_target_is_next_bar_log_volume():
    close = np.exp(np.cumsum(np.full((30, 2), 0.01), axis=0))
    volume = np.arange(60.0).reshape(30, 2)
    rows = np.array([3, 5])
    out = pretrain.raw_targets(close, volume, rows, vol_window=4)
    np.testing.assert_allclose(out["volume"], np.log1p(volume[rows + 1]))
    np.testing.assert_allclose(out["return"], 0.01, rtol=1e-9)
    np.testing.assert_allclose(out["volatility"], 0.0, atol=1e-12)


def test_inputs_are_the_env_observations(setup, samples):
    """The sample at row start + k is what the env observes after k steps of a whole-split episode."""
    env, params = setup_lib.make_split_env(setup_lib.env_config_of(setup.config), setup.splits.train)
    obs, state = env.reset(jax.random.key(0), params)
    step = jax.jit(env.step)
    got = jax.device_get(pretrain.observations(samples.data, samples.base_obs,
                                               jax.numpy.asarray(samples.rows[:4]), samples.window))
    for k in range(4):
        assert sorted(got) == sorted(obs)
        np.testing.assert_array_equal(got["window"][k], obs["window"])
        if k == 0:   # other keys: the reset value
            np.testing.assert_array_equal(got["state"][k], obs["state"])
        obs, state, *_ = step(jax.random.key(k), state, jax.numpy.zeros((), jax.numpy.int32), params)
    assert samples.obs_spec == env.obs_spec


def test_nothing_after_the_training_split_is_read(setup, samples):
    """Every row after the training split's last date perturbed: the samples are bit for bit the same."""
    md = setup.market
    last = int(md.dates.searchsorted(setup.splits.train.dates[-1], "right"))
    rng = np.random.default_rng(0)
    close = md.close.copy()
    close[last:] *= np.exp(rng.normal(0, 0.05, close[last:].shape))
    bench = md.benchmark.copy()
    bench[last:] *= 1.3
    other = dataclasses.replace(md, close=close, benchmark=bench, _cache={})
    again = pretrain.build_samples(setup_lib.build(setup.config, market=other), setup.config.pretrain)
    np.testing.assert_array_equal(again.rows, samples.rows)
    for k in samples.names:
        np.testing.assert_array_equal(again.raw[k], samples.raw[k])
        np.testing.assert_array_equal(again.targets[k], samples.targets[k])
    rows = jax.numpy.asarray(samples.rows)
    a = pretrain.observations(samples.data, samples.base_obs, rows, samples.window)
    b = pretrain.observations(again.data, again.base_obs, rows, again.window)
    assert _tree_equal(a, b)
    assert not np.allclose(other.close[last:], md.close[last:])      # the perturbation is real


# PRETRAINING AND THE ARTIFACT


def test_pretraining_reduces_the_validation_loss_on_real_data(pretrained):
    m, hist = pretrained.metrics["selection"], pretrained.history
    initial = hist[0]["val_loss"]
    assert m["initial_val_loss"] == initial and hist[0]["train_loss"] is None
    assert m["val_loss"] < 0.7 * initial, (m["val_loss"], initial)
    assert m["val_loss"] == min(r["val_loss"] for r in hist)
    assert hist[m["best_epoch"]]["val_loss"] == m["val_loss"]
    # Early stopping: it stopped once PATIENCE epochs in a row had not lowered the validation loss.
    assert m["epochs"] == len(hist) - 1 < EPOCHS
    assert m["best_epoch"] == m["epochs"] - PATIENCE
    assert all(r["val_loss"] >= m["val_loss"] for r in hist[m["best_epoch"] + 1:])
    assert m["split"] == "val" and m["train_samples"] > 0 and m["val_samples"] > 0
    assert 0.0 <= m["directional_accuracy"] <= 1.0 and np.isfinite(m["val_r2"])
    assert m["val_loss"] == pytest.approx(m["val_loss_return"] + m["val_loss_volatility"])


def _predict(params, samples):
    """The net's predictions for the windows samples.val (one jit: eager CLSTM ops compile one by one)."""
    net, window = pretrain.make_net(tiny_config().model, samples), samples.window

    @jax.jit
    def predict(p, data, base_obs, rows):
        return net.apply({"params": p}, pretrain.observations(data, base_obs, rows, window))

    base_obs = jax.tree.map(jax.numpy.asarray, samples.base_obs)
    rows = jax.numpy.asarray(samples.rows[samples.val])
    return jax.device_get(predict(params, samples.data, base_obs, rows))


def test_the_result_is_the_best_epoch(pretrained, samples):
    """The returned params (and the artifact's encoder) give the recorded best validation metrics."""
    again = pretrain.window_metrics(_predict(pretrained.params, samples), samples)
    selection = pretrained.metrics["selection"]
    for k in ("val_loss", "val_loss_return", "val_r2", "directional_accuracy", "directional_accuracy_edge"):
        assert again[k] == pytest.approx(selection[k], rel=1e-5), k
    assert selection["best_epoch"] < selection["epochs"]   # the last epoch was not the best


def test_held_out_metrics_are_the_best_params_on_the_test_windows(pretrained, samples, setup):
    """held_out: the chosen params scored on every window of the test split (targets from its rows
    only, standardized with the training statistics); the validation windows chose them."""
    assert pretrain.held_out_samples(setup, samples, setup.config.pretrain) is None      # no test split
    cfg = pretrained_config()
    with_test = setup_lib.build(cfg)
    test = pretrain.held_out_samples(with_test, samples, cfg.pretrain)
    split = with_test.splits.test
    assert test.n_train == 0 and test.n_val == len(test.rows) > 0
    np.testing.assert_array_equal(test.rows, np.arange(split.start, len(split.close) - H))
    assert split.dates[split.start] == split.traded_dates[0] >= pd.Timestamp(TEST[0])
    close = split.close                                 # float64, the test split's own rows
    np.testing.assert_allclose(test.raw["return"], np.log(close[test.rows + 1] / close[test.rows]),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(test.targets["return"] * samples.std["return"] + samples.mean["return"],
                               test.raw["return"], rtol=1e-4, atol=1e-6)
    held_out = pretrained.metrics["held_out"]
    assert held_out["split"] == "test" and held_out["test_samples"] == test.n_val
    assert pretrained.metrics["selection"]["split"] == "val"
    again = pretrain.window_metrics(_predict(pretrained.params, test), test)
    for k in ("val_loss", "val_r2", "directional_accuracy", "majority_accuracy", "directional_accuracy_edge"):
        assert again[k] == pytest.approx(held_out[k], rel=1e-5), k


def test_validation_metrics_against_numpy(samples):
    """R^2, loss and directional accuracy of a known prediction (the truth + noise, halved)."""
    rng = np.random.default_rng(1)
    val = samples.val
    pred = {k: 0.5 * samples.targets[k][val] + rng.normal(0, 0.1, samples.targets[k][val].shape)
            for k in samples.names}
    m = pretrain.window_metrics(pred, samples)
    for k in samples.names:
        y = samples.targets[k][val].astype(np.float64)
        mse = np.mean((pred[k] - y) ** 2)
        assert m[f"val_loss_{k}"] == pytest.approx(mse)
        assert m[f"val_r2_{k}"] == pytest.approx(1 - mse / np.mean((y - y.mean(0)) ** 2))
    raw_pred = pred["return"] * samples.std["return"] + samples.mean["return"]
    hits = [np.sign(p) == np.sign(r) for p, r in zip(raw_pred.ravel(), samples.raw["return"][val].ravel(),
                                                      strict=True) if r != 0]
    assert 0 < len(hits) < raw_pred.size          # sp500-20 has flat bars: they are left out
    assert m["directional_accuracy"] == pytest.approx(np.mean(hits))
    ups = sum(r > 0 for r in samples.raw["return"][val].ravel())
    downs = sum(r < 0 for r in samples.raw["return"][val].ravel())
    assert ups != downs and m["majority_accuracy"] == pytest.approx(max(ups, downs) / (ups + downs))
    assert m["directional_accuracy_edge"] == pytest.approx(np.mean(hits) - max(ups, downs) / (ups + downs))
    assert m["val_loss_baseline"] == pytest.approx(sum(np.mean(samples.targets[k][val].astype(float) ** 2)
                                                       for k in samples.names))


def test_encoder_artifact_round_trip(pretrained, setup):
    params, spec = artifact.load_encoder(pretrained.artifact)
    assert _tree_equal(params, pretrained.params["encoder"])
    assert spec.encoder == {"encoder": "clstm", "hidden_dim": 8, "n_heads": 2}
    assert spec.obs_spec == setup.env.obs_spec and spec.preprocessor == setup.preprocessor
    assert spec.targets == ("return", "volatility")
    assert spec.metrics == pretrained.metrics           # {"selection": ..., "held_out": ...}
    with open(os.path.join(pretrained.artifact, "spec.json")) as f:
        assert json.load(f)["format"] == "jaxtrade-encoder/1"
    with pytest.raises(ValueError, match="pretrained encoder.*model.encoder_init"):
        artifact.load_model(pretrained.artifact)


def test_pretrain_command_prints_the_artifact_last_and_registers_it(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cmd = [sys.executable, "-m", "experiments.pretrain", "--config=experiments/configs/pretrain_sp500.py",
           f"--workdir={tmp_path / 'run'}", "--config.model.hidden_dim=8", "--config.model.n_heads=2",
           f"--config.env.window={WINDOW}", f"--config.data.train={TRAIN}", "--config.pretrain.epochs=1",
           f"--registry={tmp_path / 'reg'}", "--name=enc"]
    out = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "pretrain epoch 1: train loss" in out.stderr
    path = out.stdout.strip().splitlines()[-1]
    assert path == str(tmp_path / "run" / "encoder")
    metrics = artifact.load_encoder(path)[1].metrics
    assert metrics["selection"]["epochs"] == 1 and metrics["held_out"]["split"] == "test"
    (entry,) = Registry(str(tmp_path / "reg")).list()
    assert entry.ref == "enc/v1" and entry.stage == "pretrain"
    assert entry.selection["split"] == "val" and entry.held_out["split"] == "test"
    edge = "directional_accuracy_edge"
    assert entry.held_out[edge] == pytest.approx(metrics["held_out"][edge])


# TRANSPLANT


def _rl_config(encoder_dir, **changes):
    cfg = tiny_config()
    cfg.model.encoder_init = encoder_dir
    for key, value in changes.items():
        section, name = key.split(".")
        cfg[section][name] = value
    return cfg


def test_transplant_replaces_only_the_encoder_in_every_member(pretrained):
    """A 2-seed population: after the transplant every member's encoder is the artifact's, bit for bit,
    and each member keeps its own core and heads."""
    params, _ = artifact.load_encoder(pretrained.artifact)
    cfg = _rl_config(pretrained.artifact, **{"train.seeds": 2})
    s = setup_lib.build(cfg)
    agent = ppo.make(cfg, s.env)
    state = agent.init_seeds([0, 1], s.train_params, s.devices)
    before = agent.params(state)
    after_state = agent.with_encoder(state, params)
    for d in range(len(s.devices)):
        p = jax.tree.map(lambda x, d=d: x[d], jax.device_get(after_state.train_state.params))
        for k in range(2):
            assert _tree_equal(jax.tree.map(lambda x, k=k: x[k], p["encoder"]), params)
            for part in ("core", "policy", "value"):
                assert _tree_equal(jax.tree.map(lambda x, k=k: x[k], p[part]),
                                   jax.tree.map(lambda x, k=k: x[k], before[part]))
    assert not _tree_equal(jax.tree.map(lambda x: x[0], before["core"]),
                           jax.tree.map(lambda x: x[1], before["core"]))
    with pytest.raises(ValueError, match="do not fit"):
        agent.with_encoder(state, before["core"])                 # the wrong subtree


def _trained_params(workdir):
    """The network params [n_dev, (K,) ...] of the workdir's `latest` checkpoint."""
    return Checkpoints(str(workdir)).restore("latest", None).state["train_state"]["params"]


def test_frozen_encoder_stays_bit_identical_through_training(pretrained, tmp_path):
    params, _ = artifact.load_encoder(pretrained.artifact)
    cfg = _rl_config(pretrained.artifact, **{"ppo.frozen": ("encoder",), "train.seeds": 2})
    cfg.data.val = None
    s = setup_lib.build(cfg)
    agent = ppo.make(cfg, s.env)
    initial = agent.params(agent.init_seeds([0, 1], s.train_params, s.devices))    # what run starts from
    loop.run(s, agent, str(tmp_path), verbosity="quiet")
    trained = jax.device_get(_trained_params(tmp_path))
    for k in range(2):
        member = jax.tree.map(lambda x, k=k: np.asarray(x)[0, k], trained)
        assert _tree_equal(member["encoder"], params)
        for part in ("core", "policy", "value"):           # the rest did train
            assert not _tree_equal(member[part], jax.tree.map(lambda x, k=k: x[k], initial[part])), part


@pytest.fixture(scope="module")
def finetuned(pretrained, tmp_path_factory):
    """One seed, encoder not frozen, one iteration with a validation: the RL parent of the hybrid."""
    workdir = tmp_path_factory.mktemp("finetuned")
    cfg = _rl_config(pretrained.artifact)
    s = setup_lib.build(cfg)
    loop.run(s, ppo.make(cfg, s.env), str(workdir), verbosity="quiet")
    return workdir


def test_finetuned_encoder_starts_from_the_artifact_and_changes(pretrained, finetuned):
    params, _ = artifact.load_encoder(pretrained.artifact)
    trained = jax.device_get(_trained_params(finetuned))
    enc = jax.tree.map(lambda x: np.asarray(x)[0], trained["encoder"])
    assert jax.tree.structure(enc) == jax.tree.structure(params)
    diffs = [float(np.max(np.abs(a - b))) for a, b in zip(jax.tree.leaves(enc), jax.tree.leaves(params),
                                                          strict=True)]
    assert max(diffs) > 0                 # it trained ...
    assert max(diffs) < 0.05              # ... one small step away from the artifact, not from a fresh init
    rl = artifact.load_spec(os.path.join(finetuned, "checkpoints", "best_composite"))
    assert rl.model["encoder_init"] == pretrained.artifact


def test_mismatched_obs_spec_or_model_is_refused_naming_both(pretrained):
    s = setup_lib.build(_rl_config(pretrained.artifact, **{"env.window": WINDOW - 2}))
    model = _rl_config(pretrained.artifact).model
    with pytest.raises(ValueError, match=r"model.encoder_init=.*window: \[8, 183\].*window: \[6, 183\]"):
        artifact.encoder_init(pretrained.artifact, model, s.env.obs_spec)
    ok = setup_lib.build(_rl_config(pretrained.artifact)).env.obs_spec
    bigger = _rl_config(pretrained.artifact, **{"model.hidden_dim": 16}).model
    with pytest.raises(ValueError, match="'hidden_dim': 8.*'hidden_dim': 16"):
        artifact.encoder_init(pretrained.artifact, bigger, ok)
    with pytest.raises(ValueError, match="pretrained on rows up to 2014-12-31, after .*2013-12-31"):
        artifact.encoder_init(pretrained.artifact, model, ok, train_end=pd.Timestamp("2013-12-31"))
    assert _tree_equal(artifact.encoder_init(pretrained.artifact, model, ok),
                       artifact.load_encoder(pretrained.artifact)[0])


# HYBRIDS


def test_hybrid_fine_tunes_everything_and_registers_both_parents(pretrained, finetuned, tmp_path):
    rl_dir = os.path.join(finetuned, "checkpoints", "best_composite")
    reg = Registry(str(tmp_path / "registry"))
    enc = reg.register("enc", pretrained.artifact, stage="pretrain")
    rl = reg.register("rl", rl_dir, stage="rl")
    cfg = tiny_config()
    cfg.ppo.actor_lr = 1e-4
    res = hybrid.make_hybrid(cfg, str(tmp_path / "hybrid"), encoder_dir=pretrained.artifact, rl_dir=rl_dir,
                             iterations=1, registry=reg, encoder_ref=enc.ref, rl_ref=rl.ref, name="hyb")
    assert res.entry.stage == "hybrid" and res.entry.parents == (enc.ref, rl.ref)
    before, after = artifact.load_params(rl_dir), artifact.load_params(res.artifact)
    for part in ("encoder", "core", "policy", "value"):     # nothing frozen: every part moved ...
        assert not _tree_equal(before[part], after[part]), part
        step = max(float(np.max(np.abs(a - b))) for a, b in zip(jax.tree.leaves(before[part]),
                                                                jax.tree.leaves(after[part]), strict=True))
        assert step < 0.05, part                            # ... a small step from the RL parent
    assert artifact.load_spec(res.artifact).model.get("encoder_init") is None


def test_hybrid_refuses_an_rl_model_of_another_encoder(pretrained, finetuned, tmp_path):
    rl_dir = str(tmp_path / "rl")
    shutil.copytree(os.path.join(finetuned, "checkpoints", "best_composite"), rl_dir)
    path = os.path.join(rl_dir, "spec.json")
    with open(path) as f:
        spec = json.load(f)
    spec["model"]["n_heads"] = 4
    with open(path, "w") as f:
        json.dump(spec, f)
    with pytest.raises(ValueError, match=r"'n_heads': 4.*'n_heads': 2"):
        hybrid.make_hybrid(tiny_config(), str(tmp_path / "h"), encoder_dir=pretrained.artifact, rl_dir=rl_dir,
                           iterations=1)
