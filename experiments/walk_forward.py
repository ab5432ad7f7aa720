r"""Walk a model forward through time: .venv/bin/python -m experiments.walk_forward \
    --config=experiments/configs/walk_forward_eurusd.py --workdir=runs/walk_forward_eurusd \
    [--config.walk_forward.decay=0.9] [--config.data.csv_path=my_m15.csv] [--fresh_start]

Folds, warm starts, budgets, phases and the no-leak selection: `jaxtrade.pipeline.walk_forward`.
A killed or interrupted run continues from its last finished fold when started again with the same
--workdir (the first SIGINT/SIGTERM finishes the current iteration, saves and exits 0). The last
line printed is the path of report.md.
"""

from absl import app, flags

from experiments import common

_CONFIG = common.define_config_file("config", "experiments/configs/walk_forward_eurusd.py",
                                          "Walk-forward config file (an experiment config with a "
                                          "walk_forward section).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "One directory per fold, walk_forward.json, report.md.",
                               required=True)
_FRESH = flags.DEFINE_bool("fresh_start", False, "Move what the workdir holds aside and start over.")
common.accept_verbosity_words()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    word = common.verbosity_word()
    common.setup_logging(word)
    from experiments.signals import StopRequest
    from jaxtrade.pipeline import walk_forward  # after flag parsing: jax reads XLA_FLAGS at import

    with StopRequest() as stop:
        result = walk_forward.run(_CONFIG.value, _WORKDIR.value, fresh_start=_FRESH.value, verbosity=word,
                                  hooks=walk_forward.WalkForwardHooks(should_stop=lambda: stop.requested))
    if result.report_path:
        print(result.report_path, flush=True)
    else:
        print(f"stopped after fold {result.summary['totals']['folds_done']} of "
              f"{result.summary['totals']['folds']}; run the same command to continue", flush=True)


if __name__ == "__main__":
    app.run(common.user_errors_exit_2(main))
