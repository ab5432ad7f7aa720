"""Two processes share one search study (a journal file given as search.storage, as on a shared
filesystem): 4 trials in batches of 2, each process its own batch on its own device; process 0 waits
for the other, writes search.md and registers one winner. The test starts both processes itself
(tests/multiprocess.py) and kills their process groups at the end."""

import pandas as pd
import pytest

from tests import multiprocess as mp

CONFIG = "experiments/configs/search_smoke.py"
N_TRIALS = 4


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("search_two_processes")
    workdir, journal, registry = tmp / "search", tmp / "shared" / "study.journal", tmp / "registry"
    journal.parent.mkdir()
    args = ["-m", "experiments.search", f"--config={CONFIG}", f"--workdir={workdir}", "--verbosity=quiet",
            f"--config.search.n_trials={N_TRIALS}", "--config.search.batch_size=2",
            "--config.train.iterations=2", f"--config.search.storage={journal}",
            f"--config.search.registry={registry}"]
    with mp.Launches(tmp) as launch:
        stdout = launch.wait(launch.processes("search", args, processes=2, devices=1, coordinator=False))
    return workdir, journal, registry, stdout


def _study(journal):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    return optuna.load_study(study_name="search", storage=JournalStorage(JournalFileBackend(str(journal))))


def test_two_processes_finish_four_distinct_trials(searched):
    workdir, journal, _, stdout = searched
    trials = _study(journal).get_trials()
    done = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(done) == N_TRIALS and sorted(t.number for t in done) == list(range(N_TRIALS))
    assert len({tuple(sorted(t.params.items())) for t in done}) == N_TRIALS, "two trials share parameters"
    assert {t.user_attrs["worker"] for t in done} == {0, 1}, "a process ran no trial"
    assert all(t.user_attrs.get("surplus") is None for t in done)
    frame = pd.read_csv(workdir / "trials.csv")
    assert sorted(frame["trial"]) == list(range(N_TRIALS))
    assert set(frame["state"]) <= {"COMPLETE", "PRUNED"}, "process 0 reported before the others finished"
    assert stdout[0].strip().splitlines()[-1] == str(workdir / "search.md")
    assert stdout[1].strip().startswith("process 1: 1 batch(es) done (")


def test_process_zero_registers_one_winner_chosen_among_every_trial(searched):
    from jaxtrade.pipeline.registry import Registry
    workdir, journal, registry, _ = searched
    study = _study(journal)
    entries = Registry(str(registry)).list(name="search_best")
    assert len(entries) == 1
    best = max((t for t in study.get_trials() if t.state.name == "COMPLETE"), key=lambda t: t.value)
    assert f"trial_{best.number}" in entries[0].tags
    assert f"Best: trial {best.number}," in (workdir / "search.md").read_text()
