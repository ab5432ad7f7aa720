r"""Evaluate a saved model out of sample against the baselines, from the model artifact alone:

python -m experiments.evaluate --checkpoint=runs/portfolio_gru/checkpoints/best_composite --split=test

No training config is needed: the artifact holds the model, its env config, its data source and split
dates, and the Preprocessor fitted on its training split. Writes report.md (+ report.csv, PNGs) into
--out (default <workdir>/eval-<split>) and prints its path.
"""

from absl import app, flags

from experiments import common

_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "A model artifact directory (e.g. "
                                  "<workdir>/checkpoints/best_composite).", required=True)
_SPLIT = flags.DEFINE_enum("split", "test", ["train", "val", "test"], "Which split of the model's data.")
_OUT = flags.DEFINE_string("out", None, "Report directory (default: <workdir>/eval-<split>).")
_MORE = flags.DEFINE_list("seed_checkpoints", [], "Artifacts of the same experiment with other seeds; "
                          "the table then shows mean, std and count over seeds.")
common.accept_verbosity_words()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    common.setup_logging(common.verbosity_word())
    from jaxtrade.train.offline import evaluate_model

    print(evaluate_model(_CHECKPOINT.value, split=_SPLIT.value, out_dir=_OUT.value,
                         seeds_dirs=tuple(_MORE.value)), flush=True)


if __name__ == "__main__":
    app.run(common.user_errors_exit_2(main))
