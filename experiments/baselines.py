r"""The baseline table on a bundled dataset's test split: .venv/bin/python -m experiments.baselines \
    --workdir=runs/baselines [--dataset=sp500-20] [--test=2016-01-01,2022-12-28] [--gate]

Equal-weight buy-and-hold, equal-weight monthly, the index, minimum variance and a random policy
(mean over seeds), all through the portfolio environment with its default costs. Writes report.md,
report.csv and the PNGs into the workdir, prints the markdown table; the last line is report.md's path.
"""

from absl import app, flags

from experiments import common

_WORKDIR = flags.DEFINE_string("workdir", "runs/baselines", "Where report.md, report.csv and PNGs go.")
_DATASET = flags.DEFINE_string("dataset", "sp500-20", "A bundled dataset (jaxtrade.data.list_datasets()).")
_TRAIN = flags.DEFINE_list("train", ["2009-01-01", "2014-12-31"], "Training period start,end.")
_VAL = flags.DEFINE_list("val", ["2015-01-01", "2015-12-31"], "Validation period start,end.")
_TEST = flags.DEFINE_list("test", ["2016-01-01", "2022-12-28"], "Test period start,end.")
_ACTION_SPACE = flags.DEFINE_enum("action_space", "regimes", ["regimes", "weights"],
                                  "The environment's action space (the random policy plays in it).")
_SEEDS = flags.DEFINE_integer("random_seeds", 5, "Seeds of the random policy.")
_COV_WINDOW = flags.DEFINE_integer("cov_window", 252, "Rows of daily returns in the min-variance covariance.")
_GATE = flags.DEFINE_bool("gate", True, "Run the baselines with the turbulence gate an agent would trade "
                          "with (--nogate: gate-free, a different world from any gated agent).")
common.accept_verbosity_words()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    common.setup_logging(common.verbosity_word())
    from jaxtrade.data import dataset_caveats
    from jaxtrade.envs import costs
    from jaxtrade.eval import baselines, report
    from jaxtrade.train.config import base_config
    from jaxtrade.train.evaluation import baseline_history
    from jaxtrade.train.setup import build

    cfg = base_config()                      # the experiment defaults: env, costs, splits
    cfg.data.dataset = _DATASET.value
    cfg.data.train, cfg.data.val, cfg.data.test = tuple(_TRAIN.value), tuple(_VAL.value), tuple(_TEST.value)
    cfg.env.action_space = _ACTION_SPACE.value
    cfg.train.iterations = 1                 # no training: the budget is only resolved
    s = build(cfg)
    test, env, params = s.splits.test, s.test_env, s.test_params
    # Warm the min-variance covariance with the closes right before the split (train/val years).
    history = baseline_history(s.market, test, _COV_WINDOW.value)
    results = baselines(env, params, test, history=history, n_random_seeds=_SEEDS.value,
                        gate=_GATE.value, cov_window=_COV_WINDOW.value)
    c = params.costs
    notes = (f"Environment: portfolio ({_ACTION_SPACE.value}), initial cash "
             f"{float(params.initial_cash):,.0f}, costs: {costs.describe(c)}. "
             f"Turbulence gate {'on' if _GATE.value else 'off'} for the "
             f"baselines. Min variance: monthly, Ledoit-Wolf covariance of the {_COV_WINDOW.value} daily "
             "returns before each rebalance day. Random: uniform actions every day, mean of "
             f"{_SEEDS.value} seeds (a run that falls below the ruin floor stops there).")
    out = report(results, _WORKDIR.value, notes=notes, table_note=dataset_caveats(_DATASET.value),
                 title=f"Baselines: {_DATASET.value}, test split "
                 f"{test.dates[test.start]:%Y-%m-%d} .. {test.dates[-1]:%Y-%m-%d}")
    print(open(out.md_path).read())
    print(out.md_path)


if __name__ == "__main__":
    app.run(common.user_errors_exit_2(main))
