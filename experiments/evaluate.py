r"""Evaluate a saved agent out of sample against the baselines:

python -m experiments.evaluate --checkpoint=runs/portfolio_gru/checkpoints/best_composite --split=test

Writes report.md (+ report.csv, PNGs) into --out (default <workdir>/eval-<split>) and prints its path.
"""

from absl import app, flags
from absl import logging as absl_logging

_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "A checkpoint directory (best_<metric>, latest, "
                                  "or one step inside them).", required=True)
_SPLIT = flags.DEFINE_enum("split", "test", ["train", "val", "test"], "Which split of the run's data.")
_OUT = flags.DEFINE_string("out", None, "Report directory (default: <workdir>/eval-<split>).")
_MORE = flags.DEFINE_list("seed_checkpoints", [], "Checkpoints of the same experiment with other seeds; "
                          "the table then shows mean, std and count over seeds.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    absl_logging.set_verbosity(absl_logging.WARNING)  # Orbax logs every restore at INFO
    from jaxtrade.train.evaluation import evaluate_checkpoint

    print(evaluate_checkpoint(_CHECKPOINT.value, split=_SPLIT.value, out_dir=_OUT.value,
                              seeds_dirs=tuple(_MORE.value)), flush=True)


if __name__ == "__main__":
    app.run(main)
