"""`experiments.train` on the smoke config as 2 processes x 2 CPU devices (jax.distributed, gloo on
127.0.0.1), against 1 process x 4 devices: the report, who writes the workdir, stop requests, and a
SIGKILL of both processes followed by a resume.

The test starts every process itself (tests/multiprocess.py) and kills their process groups at the end.
Process 1 runs with umask 077, so a file it wrote is readable by its owner only: the workdir's files
outside the `latest` checkpoint must all be process 0's, and `latest` must hold some of process 1's
(its shards).
"""

import json
import os
import signal
import stat

import jax
import numpy as np
import pandas as pd
import pytest

from experiments.configs import smoke
from jaxtrade.train import train
from jaxtrade.train.checkpoints import Checkpoints, LayoutError
from tests import multiprocess as mp

CONFIG = os.path.join(mp.ROOT, "experiments", "configs", "smoke.py")


def _command(workdir, *extra):
    return ["-m", "experiments.train", f"--config={CONFIG}", f"--workdir={workdir}", "--verbosity=quiet",
            *extra]


def _row(workdir):
    return pd.read_csv(os.path.join(workdir, "report.csv"), index_col=0).loc["ppo_agent"]


def _latest_meta(workdir):
    root = os.path.join(workdir, "checkpoints", "latest")
    step = max(int(p) for p in os.listdir(root) if p.isdigit())
    with open(os.path.join(root, str(step), "meta", "metadata")) as f:
        return step, json.load(f)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three rounds of launches, read by every assertion below: a long 2 x 2 run in "killed" that gets
    SIGTERM on process 1 only, with "one" (1 x 4, the uninterrupted reference, in this process)
    meanwhile; that run resumed and SIGKILLed (both processes) mid-run; then resumed to the smoke
    budget."""
    tmp = tmp_path_factory.mktemp("multiprocess_train")
    out = {"tmp": tmp}
    work = tmp / "killed"
    long = _command(work, "--config.train.iterations=1000")
    with mp.Launches(tmp) as launch:
        procs = launch.processes("term", long, processes=2, devices=2)
        # the 1 x 4 reference, in this process (the suite's 4 CPU devices) meanwhile
        one = mp.InThread(train, smoke.get_config(), str(tmp / "one"), verbosity="quiet")
        mp.wait_for(work / "checkpoints" / "latest" / "2", procs, launch)
        procs[1].send_signal(signal.SIGTERM)                   # one process asked to stop
        launch.wait(procs, timeout=120)
        out["stopped_step"], out["stopped_meta"] = _latest_meta(work)
        out["stopped_log"] = (tmp / "term.p0.log").read_text()

        procs = launch.processes("kill", long, processes=2, devices=2)
        mp.wait_for(work / "checkpoints" / "latest" / str(out["stopped_step"] + 1), procs, launch)
        for p in procs:
            os.killpg(p.pid, signal.SIGKILL)
        for p in procs:
            p.wait()
        out["killed_step"], _ = _latest_meta(work)
        one.join()
        resumed = launch.processes("resumed", _command(work), processes=2, devices=2)
        out["stdout"] = launch.wait(resumed)
    return out


def test_two_processes_killed_and_resumed_report_like_one_process_with_four_devices(runs):
    tmp = runs["tmp"]
    assert runs["stopped_step"] < runs["killed_step"] < 6
    two, one = _row(tmp / "killed"), _row(tmp / "one")
    numeric = [k for k in one.index if isinstance(one[k], (int, float, np.number)) and np.isfinite(one[k])]
    assert "sharpe" in numeric and "cumulative_return" in numeric
    np.testing.assert_allclose(two[numeric].astype(float), one[numeric].astype(float), rtol=1e-6, atol=1e-9)
    # the whole training state and history, not only the report: the resume continued the same run
    ref = Checkpoints(str(tmp / "one")).restore("latest", None)
    res = Checkpoints(str(tmp / "killed")).restore("latest", ref.state)   # numpy target: read on one host
    assert ref.step == res.step == 6
    for key in ("history", "val_history"):
        for a, b in zip(ref.meta[key], res.meta[key], strict=True):
            assert a.keys() == b.keys() and a["iteration"] == b["iteration"]
            np.testing.assert_allclose([a[k] or 0.0 for k in a if k != "iteration"],
                                       [b[k] or 0.0 for k in a if k != "iteration"], rtol=1e-5, atol=1e-7)
    for u, v in zip(jax.tree.leaves(ref.state), jax.tree.leaves(res.state), strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)
    # process 0 alone prints the report's path; process 1 prints nothing
    assert runs["stdout"][0].strip().splitlines()[-1] == str(tmp / "killed" / "report.md")
    assert runs["stdout"][1].strip() == ""


def test_process_zero_alone_writes_the_workdir_and_every_process_its_shards(runs):
    workdir = runs["tmp"] / "killed"
    in_latest, outside = [], []
    for root, _, files in os.walk(workdir):
        for name in files:
            path = os.path.join(root, name)
            private = not os.stat(path).st_mode & (stat.S_IRGRP | stat.S_IROTH)   # umask 077: process 1
            latest = os.path.relpath(path, workdir).startswith(os.path.join("checkpoints", "latest"))
            (in_latest if latest else outside).append((path, private))
    assert [p for p, private in outside if private] == [], "process 1 wrote outside its checkpoint shards"
    assert any(private for _, private in in_latest), "process 1 wrote no shard of `latest`"
    for name in ("report.md", "metrics.jsonl", "train.log", "config.json", "trials.json"):
        assert (workdir / name).exists(), name
    assert os.listdir(workdir / "tensorboard")
    step, meta = _latest_meta(workdir)
    assert step == 6 and meta["layout"] == {"processes": 2, "devices_per_process": 2}


def test_best_model_is_a_plain_artifact_one_cpu_loads(runs):
    from jaxtrade.train.artifact import load_model
    policy, spec = load_model(str(runs["tmp"] / "killed" / "checkpoints" / "best_composite"))
    assert spec.machine["process_count"] == 2 and spec.agent == "ppo"
    assert jax.tree.leaves(policy.init()) is not None    # a policy from the artifact alone, in one process


def test_sigterm_on_one_process_stops_both_at_the_same_iteration(runs):
    step, meta = runs["stopped_step"], runs["stopped_meta"]
    assert 2 <= step < 1000 and meta["iteration"] == step == len(meta["history"])
    assert f"stopped by request after iteration {step}" in runs["stopped_log"]


def test_a_resume_on_another_layout_names_both(runs):
    ck = Checkpoints(str(runs["tmp"] / "killed"), devices=jax.local_devices()[:4])
    with pytest.raises(LayoutError, match=r"saved by 2 process\(es\) x 2 device\(s\); this run is 1 "
                                          r"process\(es\) x 4 device\(s\)"):
        ck.restore("latest", {"anything": np.zeros(1)})
