"""The optional MLflow sink against a local file store: a run logs its config, its metrics per
iteration and validation, and its best artifacts; a run without `train.mlflow_uri` logs nothing."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from experiments.configs import smoke
from jaxtrade.train import train

mlflow = pytest.importorskip("mlflow")


def test_run_logs_config_metrics_and_best_artifacts(tmp_path):
    cfg = smoke.get_config()
    cfg.train.iterations, cfg.train.eval_every, cfg.train.final_report = 3, 1, False
    cfg.train.tensorboard = False
    cfg.train.n_devices = 1
    uri = f"file:{tmp_path / 'mlruns'}"
    cfg.train.mlflow_uri = uri
    cfg.train.mlflow_experiment = "smoke"
    result = train(cfg, str(tmp_path / "run"), verbosity="quiet")

    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("smoke")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    params = run.data.params
    assert json.loads(params["ppo.actor_lr"]) == cfg.ppo.actor_lr
    assert json.loads(params["env.name"]) == "portfolio" and json.loads(params["seed"]) == cfg.seed
    # One point per iteration, equal to the run's own history.
    hist = client.get_metric_history(run.info.run_id, "train/policy_loss")
    assert [m.step for m in sorted(hist, key=lambda m: m.step)] == [1, 2, 3]
    logged = [m.value for m in sorted(hist, key=lambda m: m.step)]
    np.testing.assert_allclose(logged, [r["policy_loss"] for r in result.history], rtol=1e-12)
    val = client.get_metric_history(run.info.run_id, "val/composite")
    np.testing.assert_allclose([m.value for m in sorted(val, key=lambda m: m.step)],
                               [r["composite"] for r in result.val_history], rtol=1e-12)
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "best_composite" in names
    files = {a.path for a in client.list_artifacts(run.info.run_id, "best_composite")}
    assert "best_composite/spec.json" in files and "best_composite/params.npz" in files


def test_no_uri_no_mlflow_run(tmp_path, monkeypatch):
    calls = []
    import jaxtrade.train.loop as loop

    monkeypatch.setattr(loop, "MlflowSink", lambda *a, **k: calls.append(a))
    cfg = smoke.get_config()
    cfg.train.iterations, cfg.train.final_report, cfg.train.tensorboard = 1, False, False
    cfg.train.n_devices = 1
    train(cfg, str(tmp_path / "run"), verbosity="quiet")
    assert calls == [] and not os.path.exists(tmp_path / "run" / "mlruns")
