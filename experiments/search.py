r"""Search hyperparameters: .venv/bin/python -m experiments.search \
    --config=experiments/configs/search_sp500.py \
    --workdir=runs/search_sp500 [--config.search.n_trials=64] [--config.search.batch_size=16] \
    [--config.search.registry=registry]

Batches of trials train as one vmapped population; the study is kept in the workdir and a killed or
interrupted search continues where it stopped when started again with the same --workdir (the first
SIGINT/SIGTERM ends the current batch, whose trials run again next time). The last line printed is
the path of search.md. `jaxtrade.pipeline.search` has the details.

Several processes, on one machine or many, share one study: start the same command once per process
with --num_processes=P --process_id=I (or JAXTRADE_NUM_PROCESSES / JAXTRADE_PROCESS_ID, or SLURM's
task count and rank); each trains its own batches on its own devices. The --workdir (and a journal
study, the default) must be on a filesystem every process reaches, or the study in an RDB server
(--config.search.storage=postgresql://user@host/db). Process 0 waits for the others, writes
search.md and registers the winner.
"""

from absl import app, flags

from experiments import common

_CONFIG = common.define_config_file("config", "experiments/configs/search_sp500.py",
                                          "Search config file (an experiment config with a search "
                                          "section).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "The study, one directory per batch, trials.csv, search.md.",
                               required=True)
_NUM_PROCESSES, _PROCESS_ID = common.define_process_flags("sharing the study (default 1)")
common.accept_verbosity_words()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    word = common.verbosity_word()
    common.setup_logging(word)
    from experiments.signals import StopRequest
    from jaxtrade.pipeline import search  # after flag parsing: jax reads XLA_FLAGS at import

    n, i = common.worker_of(_NUM_PROCESSES.value, _PROCESS_ID.value)
    with StopRequest() as stop:
        result = search.run(_CONFIG.value, _WORKDIR.value, verbosity=word, should_stop=lambda: stop.requested,
                            process_id=i, num_processes=n)
    counts = ", ".join(f"{n} {k.lower()}" for k, n in result.counts.items() if n)
    if result.report_path:
        print(f"{counts}; best trial {result.best_trial}: {result.best_value:.4f} {result.best_params}"
              + (f" -> {result.registered}" if result.registered else ""), flush=True)
        print(result.report_path, flush=True)
    elif i != 0 and result.stopped == "done":
        print(f"process {i}: {result.batches} batch(es) done ({counts}); process 0 writes the report",
              flush=True)
    else:
        print(f"stopped ({counts}); run the same command to continue", flush=True)


if __name__ == "__main__":
    app.run(common.user_errors_exit_2(main))
