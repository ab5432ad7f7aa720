"""Two processes share one search study (a journal file given as search.storage, as on a shared
filesystem): 4 trials in batches of 2, each process its own batch on its own device; process 0 waits
for the other, writes search.md and registers one winner. The test starts both processes itself
(tests/multiprocess.py), process 1 first, and kills their process groups at the end. Process 0's wait
for the others' trials and a worker's choice of stale trials are tested alone, on plain trials."""

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
        # process 1 first: once it holds trials 0 and 1 (its batch directory), process 0 starts and takes
        # the other two, then has to wait for process 1's before it reports (no race decides who runs what)
        p1 = launch.processes("search", args, processes=2, devices=1, coordinator=False, ids=[1])
        mp.wait_for(workdir / "batch_0000", p1, launch)
        p0 = launch.processes("search", args, processes=2, devices=1, coordinator=False, ids=[0])
        stdout = launch.wait(p0 + p1)
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
    assert {t.number: t.user_attrs["worker"] for t in done} == {0: 1, 1: 1, 2: 0, 3: 0}
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


def test_a_worker_requeues_only_the_trials_a_dead_process_left():
    import datetime

    from jaxtrade.pipeline.search import UNMARKED_STALE_S, _stale

    class Trial:
        def __init__(self, worker, age_s):
            self.user_attrs = {} if worker is None else {"worker": worker}
            self.datetime_start = datetime.datetime.now() - datetime.timedelta(seconds=age_s)

    assert _stale(Trial(1, 5), 1, 2) and not _stale(Trial(1, 5), 0, 2)     # its own; not another's
    assert _stale(Trial(2, 5), 0, 2) and not _stale(Trial(2, 5), 1, 2)     # beyond the count: process 0's
    assert not _stale(Trial(None, 5), 0, 2)                                # just asked, not yet marked
    assert _stale(Trial(None, UNMARKED_STALE_S + 5), 0, 2)
    assert all(_stale(Trial(w, 5), 0, 1) for w in (None, 0, 1, 3))         # one process: all of them


def test_process_zero_waits_for_the_trials_other_workers_run():
    import threading

    import optuna

    from jaxtrade.pipeline.search import wait_for_others

    study = optuna.create_study(direction="maximize")
    other = study.ask()                                   # another worker's trial, still running
    threading.Timer(0.3, lambda: study.tell(other, 1.0)).start()
    assert wait_for_others(study, poll_s=0.02) == "done"
    assert study.trials[0].state.name == "COMPLETE"
    study.ask()
    assert wait_for_others(study, should_stop=lambda: True, poll_s=0.02) == "signal"
