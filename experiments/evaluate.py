r"""Evaluate saved models out of sample against the baselines, from the model artifacts alone:

.venv/bin/python -m experiments.evaluate --workdir=runs/portfolio_gru --split=test
.venv/bin/python -m experiments.evaluate --checkpoint=runs/portfolio_gru/checkpoints/seed_0/best_composite

--workdir takes a run directory (or its checkpoints directory) and evaluates every seed's best_<--metric>
model: checkpoints/best_composite for a one-seed run, checkpoints/seed_<s>/best_composite for each seed of
a run of several (the default experiment trains three); the agent row is then the mean, std and count over
the seeds. --checkpoint takes one model artifact. No training config is needed: the artifact holds the
model, its env config, its data source and split dates, and the Preprocessor fitted on its training split.
Writes report.md (+ report.csv, PNGs) into --out (default <workdir>/eval-<split>) and prints its path.
"""

from absl import app, flags

from experiments import common

_WORKDIR = flags.DEFINE_string("workdir", None, "A run directory (or its checkpoints directory): evaluates "
                               "every seed's best_<metric> model (checkpoints/best_<metric> or "
                               "checkpoints/seed_<s>/best_<metric>).")
_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "One model artifact directory (e.g. "
                                  "<workdir>/checkpoints/seed_0/best_composite; a one-seed run: "
                                  "<workdir>/checkpoints/best_composite).")
flags.mark_flags_as_mutual_exclusive(["workdir", "checkpoint"], required=True)
_METRIC = flags.DEFINE_string("metric", "composite", "With --workdir: which best-by-validation model of "
                              "each seed (composite, win_rate, profit_rate or sharpe).")
_SPLIT = flags.DEFINE_enum("split", "test", ["train", "val", "test"], "Which split of the model's data.")
_OUT = flags.DEFINE_string("out", None, "Report directory (default: <workdir>/eval-<split>).")
_MORE = flags.DEFINE_list("seed_checkpoints", [], "With --checkpoint: artifacts of the same experiment with "
                          "other seeds; the table then shows mean, std and count over seeds.")
common.accept_verbosity_words()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if _WORKDIR.value and _MORE.value:
        raise app.UsageError("--seed_checkpoints goes with --checkpoint; --workdir already takes every seed")
    common.setup_logging(common.verbosity_word())
    from jaxtrade.train import offline

    if _WORKDIR.value:
        path = offline.evaluate_run(_WORKDIR.value, metric=_METRIC.value, split=_SPLIT.value,
                                    out_dir=_OUT.value)
    else:
        try:
            offline.require_artifact(_CHECKPOINT.value)
        except FileNotFoundError as e:
            raise FileNotFoundError(f"{e}; --workdir=<run> evaluates every seed's best model") from e
        path = offline.evaluate_model(_CHECKPOINT.value, split=_SPLIT.value, out_dir=_OUT.value,
                                      seeds_dirs=tuple(_MORE.value))
    print(path, flush=True)


if __name__ == "__main__":
    app.run(common.user_errors_exit_2(main))
