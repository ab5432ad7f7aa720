"""Rerunning `train` into a workdir that holds a run (`jaxtrade.train.workdir`): a changed config is
refused before anything is touched, a finished run says so and runs nothing, a budget-only change
resumes, and --fresh_start moves the whole run (its report's images included) into previous-<time>/.

One finished one-iteration smoke run (with its report) is the module's fixture; every test that could
change it works on a copy.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys

import pytest

from experiments.configs import smoke
from jaxtrade.train import loop
from jaxtrade.train import workdir as workdir_lib
from jaxtrade.train.checkpoints import Checkpoints

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "experiments", "configs", "smoke.py")


def _config(**train):
    cfg = smoke.get_config()
    cfg.train.iterations = 1
    cfg.train.update(train)
    return cfg


def _snapshot(directory) -> dict:
    """{relative path: (mtime_ns, sha256)} of every file and directory under `directory`."""
    out = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            path = os.path.join(root, name)
            digest = None
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            out[os.path.relpath(path, directory)] = (os.stat(path).st_mtime_ns, digest)
    return out


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished one-iteration smoke run with its report (and the report's images)."""
    workdir = str(tmp_path_factory.mktemp("finished") / "run")
    result = loop.train(_config(), workdir, verbosity="quiet")
    assert result.stopped == "budget" and result.report_path
    return workdir, result


@pytest.fixture
def copy_of(finished, tmp_path):
    dst = str(tmp_path / "run")
    shutil.copytree(finished[0], dst)
    return dst


def test_a_changed_config_exits_2_in_one_line_and_touches_nothing(finished):
    workdir, _ = finished
    before = _snapshot(workdir)
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.train", f"--config={CONFIG}", f"--workdir={workdir}",
         "--config.train.iterations=3", "--config.ppo.critic_lr=0.001", "--config.model.hidden_dim=32"],
        cwd=ROOT, env=dict(os.environ, JAX_PLATFORMS="cpu"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    line = lines[0]
    assert "ppo.critic_lr 0.003 -> 0.001" in line and "model.hidden_dim 16 -> 32" in line, line
    assert "train.iterations 1 -> 3" not in line            # the budget may change
    assert "--fresh_start" in line and "--workdir" in line and workdir in line
    assert proc.stdout == ""
    assert _snapshot(workdir) == before                     # config.json, checkpoints, logs: untouched


def test_a_finished_run_rerun_with_its_config_says_so_and_runs_nothing(finished, run_log):
    workdir, first = finished
    before = _snapshot(workdir)
    result = loop.train(_config(log_every=3), workdir, verbosity="quiet")
    report = os.path.join(workdir, "report.md")
    assert result.stopped == "already_finished" and result.report_path == report
    assert result.iterations == 1 and result.best == first.best
    assert [r["policy_loss"] for r in result.history] == [r["policy_loss"] for r in first.history]
    said = {r.getMessage() for r in run_log.records if "already finished" in r.getMessage()}
    assert said == {f"{workdir} already finished iteration 1 of 1; its report is {report} (nothing ran: use "
                    "--fresh_start to train again, or raise the budget to train on)"}
    assert _snapshot(workdir) == before


def test_a_budget_only_change_resumes(finished, copy_of, monkeypatch):
    workdir, first = finished
    saved = workdir_lib.saved_config(copy_of)
    monkeypatch.setattr(loop, "final_report", lambda *a, **k: None)   # the report is not what this tests
    result = loop.train(_config(iterations=2, checkpoint_every=2), copy_of, verbosity="quiet")
    assert result.stopped == "budget" and result.iterations == 2
    assert len(result.history) == 2                                     # resumed, not restarted:
    assert result.history[0]["policy_loss"] == first.history[0]["policy_loss"]
    assert Checkpoints(copy_of).steps("latest") == [1, 2]
    changes = workdir_lib.config_changes(saved, workdir_lib.saved_config(copy_of))
    assert changes == [("train.checkpoint_every", 1, 2), ("train.iterations", 1, 2)]


def test_a_run_that_stopped_early_is_finished_whatever_the_budget(tmp_path, run_log):
    cfg = loop._config_json(_config(iterations=10))
    Checkpoints(str(tmp_path)).save("latest", 4, {"x": 0}, {
        "kind": "latest", "iteration": 4, "config": cfg,
        "early_stopping": {"patience": 2, "min_delta": 0.0, "best": 1.0, "bad_evals": 2}})
    (tmp_path / "report.md").write_text("report")
    meta = workdir_lib.check_resume(str(tmp_path), cfg, budget_iterations=10, report_expected=True)
    assert meta is not None and meta["iteration"] == 4          # no config.json: latest's config compared
    assert any("stopped early at iteration 4 of 10" in r.getMessage() for r in run_log.records)
    (tmp_path / "report.md").unlink()                           # no report yet: the run goes on to write it
    assert workdir_lib.check_resume(str(tmp_path), cfg, budget_iterations=10, report_expected=True) is None


def test_fresh_start_moves_the_whole_run_and_its_report_keeps_its_images(finished, copy_of, monkeypatch):
    earlier = sorted(os.listdir(copy_of))
    assert {"config.json", "resolved.json", "train.log", "trials.json", "tensorboard", "report.md",
            "equity.png"} <= set(earlier)
    seen = {}

    def run(setup, agent, workdir, **kwargs):
        seen["listing"], seen["fresh_start"] = sorted(os.listdir(workdir)), kwargs["fresh_start"]
        return "ran"

    monkeypatch.setattr(loop, "run", run)
    cfg = _config()
    cfg.model.hidden_dim = 32                                   # another config: fine on a fresh start
    assert loop.train(cfg, copy_of, fresh_start=True, verbosity="quiet") == "ran"
    (archive,) = seen["listing"]                                 # only the archive is left for the new run
    assert archive.startswith("previous-") and seen["fresh_start"]
    archive = os.path.join(copy_of, archive)
    assert sorted(os.listdir(archive)) == earlier
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", open(os.path.join(archive, "report.md")).read())
    assert any(i.endswith(".png") for i in images)
    assert all(os.path.isfile(os.path.join(archive, i)) for i in images), images

    # A second fresh start within the same second: a new archive beside the first, never inside it.
    open(os.path.join(copy_of, "config.json"), "w").write("{}")
    second = workdir_lib.archive_previous(copy_of)
    assert sorted(os.listdir(copy_of)) == sorted([os.path.basename(archive), os.path.basename(second)])
    assert os.listdir(second) == ["config.json"] and sorted(os.listdir(archive)) == earlier


def test_fresh_start_refuses_a_workdir_that_holds_no_run(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"holds notes.txt but no jaxtrade run"):
        workdir_lib.archive_previous(str(tmp_path))
    assert os.listdir(tmp_path) == ["notes.txt"]


def test_keys_the_code_gained_after_the_run_differ_only_off_their_default():
    saved = {"seed": 0, "train": {"iterations": 1}}
    new = {"seed": 0, "train": {"iterations": 2}, "data": {"sep": None, "tz": "EET"}}
    defaults = {"seed": 0, "train": {"iterations": None}, "data": {"sep": None, "tz": None}}
    changes = workdir_lib.config_changes(saved, new, defaults)
    assert [(k, new_value) for k, _, new_value in changes] == [("data.tz", "EET"), ("train.iterations", 2)]
    without = [k for k, _, _ in workdir_lib.config_changes(saved, new)]
    assert without == ["data.sep", "data.tz", "train.iterations"]
