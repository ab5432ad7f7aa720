"""A walk-forward of independent folds (no warm start) shared by two processes gives the fold table of
one process; a chain of warm starts is refused by name. The test starts both processes itself
(tests/multiprocess.py), the second only once the first finished its fold (so that process 0 has to
wait for the other's fold), and kills their process groups at the end; the one-process reference runs
in a thread of the test's process meanwhile."""

import json

import pytest

from jaxtrade.pipeline import walk_forward as wf
from tests import multiprocess as mp
from tests.pipeline.walk_forward_tiny import tiny_config

CONFIG = "tests/pipeline/walk_forward_tiny.py"
N_FOLDS = 2


def _config():
    cfg = tiny_config()
    cfg.walk_forward.warm_start = False
    cfg.walk_forward.max_folds = N_FOLDS
    cfg.walk_forward.use_phases = False      # one compile per process
    return cfg


@pytest.fixture(scope="module")
def walked(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("walk_forward_two_processes")
    args = ["-m", "experiments.walk_forward", f"--config={CONFIG}", f"--workdir={tmp / 'two'}",
            "--verbosity=quiet", "--config.walk_forward.warm_start=false",
            f"--config.walk_forward.max_folds={N_FOLDS}", "--config.walk_forward.use_phases=false"]
    with mp.Launches(tmp) as launch:
        # the suite's 4 forced devices (one used): the same XLA flags as this process, so that one
        # compile serves all three through the persistent compilation cache
        p0 = launch.processes("wf", args, processes=2, devices=4, coordinator=False, ids=[0])
        reference = mp.InThread(wf.run, _config(), str(tmp / "one"), verbosity="quiet")   # in this process
        # process 1 starts once process 0 finished its fold: process 0 must wait for the other's record
        mp.wait_for(tmp / "two" / "fold_000" / wf.RECORD_NAME, p0, launch)
        p1 = launch.processes("wf", args, processes=2, devices=4, coordinator=False, ids=[1])
        one = reference.join()
        stdout = launch.wait(p0 + p1)
    with open(tmp / "two" / wf.JSON_NAME) as f:
        two = json.load(f)
    return one, two, stdout, tmp


def _without_seconds(table: str) -> list[str]:
    return [row.rsplit("|", 2)[0] for row in table.splitlines()]      # the last column: wall seconds


def test_two_processes_give_the_fold_table_of_one(walked):
    one, two, stdout, tmp = walked
    assert one.complete and two["complete"] and len(two["folds"]) == N_FOLDS
    table = _without_seconds(wf.fold_table(two["folds"]))
    assert table == _without_seconds(wf.fold_table(one.summary["folds"])) and len(table) == 2 + N_FOLDS
    for a, b in zip(one.summary["folds"], two["folds"], strict=True):
        assert a["test"] == b["test"] and a["val_scores"] == b["val_scores"]
    assert stdout[0].strip().splitlines()[-1] == str(tmp / "two" / "report.md")
    assert stdout[1].strip() == "process 1: folds 1 done; process 0 writes the report"


def test_a_chain_of_warm_starts_is_not_shared(tmp_path):
    with pytest.raises(ValueError, match="chains the folds"):
        wf.run(tiny_config(), str(tmp_path), process_id=0, num_processes=2)
    with pytest.raises(ValueError, match=r"process_id=2 must be in \[0, num_processes=2\)"):
        wf.run(_config(), str(tmp_path), process_id=2, num_processes=2)
