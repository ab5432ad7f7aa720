"""`train.train`, `experiments.train` and `experiments.evaluate` end to end on the smoke config (4 forced
CPU devices); model artifacts from the reference run.

One uninterrupted in-process run is the reference; a run through the command is SIGKILLed after
its third checkpoint and resumed, and must end bit-identical; another gets SIGTERM.
"""

import json
import math
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pandas as pd
import pytest

from experiments.configs import smoke
from jaxtrade.train import TrainingDiverged, artifact, train
from jaxtrade.train.artifact import load_spec
from jaxtrade.train.checkpoints import BEST_METRICS, Checkpoints
from jaxtrade.train.sources import metric_sources

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "experiments", "configs", "smoke.py")


def _command(workdir, *extra):
    return [sys.executable, "-m", "experiments.train", f"--config={CONFIG}", f"--workdir={workdir}", *extra]


def _env():
    env = dict(os.environ)
    env["JAX_PLATFORMS"] = "cpu"
    return env


def _latest(workdir):
    ck = Checkpoints(str(workdir))
    return ck.restore("latest", None)


def _long_run_until(workdir, checkpoint_step: int):
    """Starts a long training run through the command; returns it once `latest/<step>` exists."""
    proc = subprocess.Popen(_command(workdir, "--config.train.iterations=1000", "--verbosity=quiet"),
                            cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    marker = workdir / "checkpoints" / "latest" / str(checkpoint_step)
    deadline = time.time() + 240
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    return proc, marker


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted 6-iteration smoke run, in process, on all 4 forced CPU devices."""
    workdir = tmp_path_factory.mktemp("reference")
    result = train(smoke.get_config(), str(workdir), verbosity="quiet")
    return workdir, result


def test_reference_run_writes_everything(reference):
    workdir, result = reference
    assert jax.local_device_count() == 4
    assert result.iterations == 6 and result.stopped == "budget"
    assert result.report_path == os.path.join(str(workdir), "report.md")
    report = open(result.report_path).read()
    assert "ppo_agent" in report and "equal_weight_buy_hold" in report and "min_variance" in report
    rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    assert [r["iteration"] for r in rows if r["kind"] == "train"] == [1, 2, 3, 4, 5, 6]
    assert [r["iteration"] for r in rows if r["kind"] == "val"] == [2, 4, 6]
    assert os.listdir(os.path.join(workdir, "tensorboard"))
    assert "budget: 6 iterations" in open(os.path.join(workdir, "train.log")).read()
    saved = json.load(open(os.path.join(workdir, "config.json")))
    assert saved["ppo"]["n_envs"] == 4 and saved["seed"] == 0


def test_best_checkpoints_hold_the_best_validation_model(reference):
    workdir, _ = reference
    val = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    val = [r for r in val if r["kind"] == "val"]
    ck = Checkpoints(str(workdir))
    for metric in BEST_METRICS:
        values = [(-math.inf if r[metric] is None else r[metric]) for r in val]
        best_at = val[int(np.argmax(values))]["iteration"]   # first maximum: ties keep the earlier model
        spec = load_spec(ck.directory(metric))               # every best_<metric> is a model artifact
        selection = metric_sources(spec.metrics)[0]          # chosen on validation: selection metrics
        assert selection["iteration"] == best_at, metric
        assert selection["selected_by"] == metric and selection["split"] == "val"
        assert selection[metric] == pytest.approx(max(values), rel=0, abs=0)
        assert spec.seed == 0 and spec.env["name"] == "portfolio"
        assert spec.data_fingerprint and spec.versions["jax"] == jax.__version__


def test_sigkill_then_resume_is_bit_identical(reference, tmp_path):
    ref_dir, _ = reference
    workdir = tmp_path / "killed"
    # A long budget so the kill surely lands mid-run; the resume then asks for the reference's 6.
    proc, third = _long_run_until(workdir, 3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert third.exists(), proc.stderr.read().decode()[-2000:]
    killed_at = _latest(workdir).meta["iteration"]
    assert 3 <= killed_at < 6
    out = subprocess.run(_command(workdir, "--resume_from=latest", "--verbosity=quiet"), cwd=ROOT,
                         env=_env(), capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == str(workdir / "report.md")   # last line: the report
    a, b = _latest(ref_dir), _latest(workdir)
    assert a.step == b.step == 6
    assert b.meta["history"] == a.meta["history"]
    assert b.meta["val_history"] == a.meta["val_history"]
    for x, y in zip(jax.tree.leaves(a.state), jax.tree.leaves(b.state), strict=True):
        np.testing.assert_array_equal(x, y)


def test_sigterm_exits_cleanly_and_latest_restores(tmp_path):
    workdir = tmp_path / "term"
    proc, _ = _long_run_until(workdir, 1)
    sent = time.time()
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=120)
    assert rc == 0, proc.stderr.read().decode()[-2000:]
    assert time.time() - sent < 60
    latest = _latest(workdir)
    assert latest is not None and latest.meta["iteration"] == len(latest.meta["history"]) >= 1
    assert latest.meta["iteration"] < 1000


class _NanRewardAfter:
    """Wraps an environment: rewards become NaN once this env has taken `after` steps."""

    def __init__(self, env, after):
        self._env, self._after = env, after

    def __getattr__(self, name):
        return getattr(self._env, name)

    def reset(self, key, params):
        obs, state = self._env.reset(key, params)
        return obs, (state, jax.numpy.zeros((), jax.numpy.int32))

    def step(self, key, state, action, params):
        inner, count = state
        obs, inner, reward, done, info = self._env.step(key, inner, action, params)
        reward = jax.numpy.where(count >= self._after, jax.numpy.nan, reward)
        return obs, (inner, count + 1), reward, done, info


def test_nan_reward_stops_with_iteration_and_metric(tmp_path):
    cfg = smoke.get_config()
    after = 3 * cfg.ppo.n_steps  # the 4th iteration's rollout sees NaN rewards
    with pytest.raises(TrainingDiverged, match=r"iteration 4: metric '\w+' is not finite") as err:
        train(cfg, str(tmp_path), verbosity="quiet", env_transform=lambda e: _NanRewardAfter(e, after))
    assert "iteration 3" in str(err.value)            # where the last good state is
    latest = _latest(tmp_path)
    assert latest.step == 3
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(latest.state)
               if np.issubdtype(np.asarray(x).dtype, np.floating))


def test_several_iterations_per_call_are_all_recorded(tmp_path):
    cfg = smoke.get_config()
    cfg.ppo.iterations_per_call = 2
    cfg.train.iterations = 4
    cfg.train.final_report = False
    result = train(cfg, str(tmp_path), verbosity="quiet")
    assert [int(r["iteration"]) for r in result.history] == [1, 2, 3, 4]
    assert all(r["env_steps"] > 0 for r in result.history)
    rows = [json.loads(line) for line in open(os.path.join(tmp_path, "metrics.jsonl"))]
    assert [r["iteration"] for r in rows if r["kind"] == "val"] == [2, 4]
    assert _latest(tmp_path).step == 4


# One fresh interpreter serves the two checks below (a python + jax start and the test split's backtest
# compile, not two): given only the artifact directory, no config and no setup.build, it first runs
# `python -m experiments.evaluate --checkpoint=<artifact> --split=test --out=<dir>` exactly as the
# command line would (runpy, sys.argv), then backtests the artifact through the public functions and
# writes the statistics (floats by repr: exact) to a JSON file.
_FRESH = r"""
import json
import runpy
import sys

best, out_dir, stats_path = sys.argv[1:4]
sys.argv = ["experiments.evaluate", f"--checkpoint={best}", "--split=test", f"--out={out_dir}"]
try:
    runpy.run_module("experiments.evaluate", run_name="__main__", alter_sys=True)
except SystemExit as e:
    if e.code:
        raise

from jaxtrade import eval as evaluate
from jaxtrade.train.artifact import load_model
from jaxtrade.train.evaluation import split_of
from jaxtrade.train.setup import make_split_env

policy, spec = load_model(best)
market, split = split_of(spec, "test")
env, params = make_split_env(spec.env, split)
frame = evaluate.backtest(policy, env, params, dates=split.dates, symbols=split.symbols)
st = evaluate.stats(frame)
json.dump({k: float(v) for k, v in st.items() if isinstance(v, (int, float))}, open(stats_path, "w"))
"""


@pytest.fixture(scope="module")
def fresh_process(reference, tmp_path_factory):
    """(the fresh interpreter's exit, the evaluate command's --out directory, its backtest statistics)."""
    workdir, _ = reference
    tmp = tmp_path_factory.mktemp("fresh")
    best = os.path.join(workdir, "checkpoints", "best_composite")
    out_dir, stats = tmp / "eval", tmp / "stats.json"
    proc = subprocess.run([sys.executable, "-c", _FRESH, best, str(out_dir), str(stats)], cwd=ROOT,
                          env=_env(), capture_output=True, text=True, timeout=300)
    return proc, out_dir, stats


def _report_row(path):
    """The agent's row of a report.csv, floats parsed exactly (pandas' default parser rounds)."""
    return pd.read_csv(path, index_col=0, float_precision="round_trip").loc["ppo_agent"]


def test_fresh_process_reproduces_the_report_row_from_the_artifact_alone(reference, fresh_process):
    workdir, _ = reference
    proc, _, out = fresh_process
    assert proc.returncode == 0, proc.stderr[-3000:]
    fresh = json.load(open(out))                  # floats written by repr: exact
    row = _report_row(os.path.join(workdir, "report.csv"))
    for k in ("cumulative_return", "annual_return", "annual_volatility", "sharpe", "max_drawdown",
              "turnover", "total_costs"):
        assert fresh[k] == row[k] or (np.isnan(fresh[k]) and np.isnan(row[k])), k   # bit for bit


def test_evaluate_main_needs_only_the_artifact(reference, fresh_process):
    workdir, _ = reference
    proc, out_dir, _ = fresh_process
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == str(out_dir / "report.md")
    got, want = _report_row(out_dir / "report.csv"), _report_row(os.path.join(workdir, "report.csv"))
    assert got["sharpe"] == want["sharpe"] and got["cumulative_return"] == want["cumulative_return"]
    with pytest.raises(FileNotFoundError, match="not a model artifact"):
        from jaxtrade.train.offline import evaluate_model
        evaluate_model(str(workdir))


def test_save_is_atomic_and_params_round_trip(reference, tmp_path, monkeypatch):
    workdir, _ = reference
    src = os.path.join(workdir, "checkpoints", "best_composite")
    spec = artifact.load_spec(src)
    params = artifact.load_params(src)
    dst = str(tmp_path / "model")
    artifact.save_model(dst, params, spec)
    again = artifact.load_params(dst)
    flat_a, flat_b = artifact._flatten(params), artifact._flatten(again)
    assert flat_a.keys() == flat_b.keys()
    for k in flat_a:
        np.testing.assert_array_equal(flat_a[k], flat_b[k])
    assert artifact.load_spec(dst).to_json() == spec.to_json()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]       # no temporary left

    # A crash while writing the new artifact leaves the old one complete and readable.
    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(artifact.np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        artifact.save_model(dst, params, spec.replace(metrics={"iteration": -1}))
    assert artifact.load_spec(dst).to_json() == spec.to_json()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]
    # Never pickle: the params file loads with allow_pickle=False.
    with np.load(os.path.join(dst, "params.npz"), allow_pickle=False) as z:
        assert z.files


def test_user_errors_print_one_line_exit_2_and_move_nothing_aside(tmp_path):
    """A bad dataset name: status 2, one `error:` line naming the dataset and the choices, no traceback,
    and --fresh_start has not moved the earlier results (the config and data validate first). A bad
    config value at --verbosity=verbose: status 2 with the traceback."""
    earlier = tmp_path / "checkpoints" / "latest"
    earlier.mkdir(parents=True)
    (earlier / "keep").write_text("earlier run")
    proc = subprocess.run(_command(tmp_path, "--config.data.dataset=sp600", "--fresh_start"), cwd=ROOT,
                          env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    assert "sp600" in lines[0] and "sp500-20" in lines[0] and "Traceback" not in proc.stderr
    assert (earlier / "keep").read_text() == "earlier run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints"]

    proc = subprocess.run(_command(tmp_path, "--config.env.costs.impact_model=square", "--verbosity=verbose"),
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" in proc.stderr and proc.stderr.strip().splitlines()[-1].startswith(
        "error: env.costs.impact_model='square'"), proc.stderr[-2000:]
