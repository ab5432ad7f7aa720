r"""Walk a model forward through time: .venv/bin/python -m experiments.walk_forward \
    --config=experiments/configs/walk_forward_eurusd.py --workdir=runs/walk_forward_eurusd \
    [--config.walk_forward.decay=0.9] [--config.data.csv_path=my_m15.csv] [--fresh_start]

Folds, warm starts, budgets, phases and the no-leak selection: `jaxtrade.pipeline.walk_forward`.
A killed or interrupted run continues from its last finished fold when started again with the same
--workdir (the first SIGINT/SIGTERM finishes the current iteration, saves and exits 0). The last
line printed is the path of report.md.

Several processes, on one machine or many, share independent folds (mode cpcv, or warm_start=false
with fold_patience=0): start the same command once per process with --num_processes=P --process_id=I
(or JAXTRADE_NUM_PROCESSES / JAXTRADE_PROCESS_ID, or SLURM's task count and rank), the --workdir on a
filesystem every process reaches. Process 0 waits for every fold and writes the report.
"""

from absl import app, flags

from experiments import common

_CONFIG = common.define_config_file("config", "experiments/configs/walk_forward_eurusd.py",
                                          "Walk-forward config file (an experiment config with a "
                                          "walk_forward section).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "One directory per fold, walk_forward.json, report.md.",
                               required=True)
_FRESH = flags.DEFINE_bool("fresh_start", False, "Move what the workdir holds aside and start over.")
_NUM_PROCESSES, _PROCESS_ID = common.define_process_flags("sharing the folds (default 1)")
common.accept_verbosity_words()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    word = common.verbosity_word()
    common.setup_logging(word)
    from experiments.signals import StopRequest
    from jaxtrade.pipeline import walk_forward  # after flag parsing: jax reads XLA_FLAGS at import

    n, i = common.worker_of(_NUM_PROCESSES.value, _PROCESS_ID.value)
    with StopRequest() as stop:
        result = walk_forward.run(_CONFIG.value, _WORKDIR.value, fresh_start=_FRESH.value, verbosity=word,
                                  hooks=walk_forward.WalkForwardHooks(should_stop=lambda: stop.requested),
                                  process_id=i, num_processes=n)
    if result.report_path:
        print(result.report_path, flush=True)
    elif i != 0 and not stop.requested:
        print(f"process {i}: folds {', '.join(str(r['index']) for r in result.summary['folds']) or 'none'} "
              "done; process 0 writes the report", flush=True)
    else:
        print(f"stopped after fold {result.summary['totals']['folds_done']} of "
              f"{result.summary['totals']['folds']}; run the same command to continue", flush=True)


if __name__ == "__main__":
    app.run(common.user_errors_exit_2(main))
