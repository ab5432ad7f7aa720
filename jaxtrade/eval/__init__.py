"""Out-of-sample evaluation: backtests, baselines, performance statistics, bootstrap CIs, reports.

    from jaxtrade.eval import backtest, baselines, evaluate_policies, report, stats
    frame = backtest(policy, env, params, dates=split.dates, symbols=split.symbols)   # one policy
    stats(frame)                                                                     # dict of floats
    results = {**evaluate_policies({"ppo": [pol_seed0, pol_seed1]}, env, params, split),
               **baselines(env, params, split)}
    report(results, workdir)                                   # report.md, report.csv, PNGs
    summary = trial_summary(trial_returns, chosen, 252)        # DSR, PBO, MinTRL of the chosen trial

Imports only jaxtrade.data and jaxtrade.envs (eval sits left of agents/train in the import order).
"""

from jaxtrade.envs.minvar import min_variance_schedule, min_variance_weights
from jaxtrade.eval.backtest import backtest, backtest_many
from jaxtrade.eval.baselines import TargetEnv, baselines, evaluate_policies, random_policy, schedule_policy
from jaxtrade.eval.bootstrap import SharpeDiff, sharpe_diff_ci, stationary_bootstrap_indices
from jaxtrade.eval.overfitting import (
    CPCV,
    CPCVFold,
    PBOResult,
    SharpeMoments,
    cpcv_folds,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    markdown_section,
    min_track_record_length,
    pbo_cscv,
    probabilistic_sharpe_ratio,
    sharpe_moments,
    trial_summary,
)
from jaxtrade.eval.report import BASELINE_NAMES, TABLE_STATS, Report, report, summarize, to_markdown, verdict
from jaxtrade.eval.stats import STAT_NAMES, drawdown, returns_of, sharpe_ratio, sortino_ratio, stats

__all__ = [
    "BASELINE_NAMES", "CPCV", "CPCVFold", "PBOResult", "Report", "STAT_NAMES", "SharpeDiff",
    "SharpeMoments", "TABLE_STATS", "TargetEnv", "backtest", "backtest_many", "baselines", "cpcv_folds",
    "deflated_sharpe_ratio", "drawdown", "evaluate_policies", "expected_max_sharpe", "markdown_section",
    "min_track_record_length", "min_variance_schedule", "min_variance_weights", "pbo_cscv",
    "probabilistic_sharpe_ratio", "random_policy", "report", "returns_of", "schedule_policy",
    "sharpe_diff_ci", "sharpe_moments", "sharpe_ratio", "sortino_ratio", "stationary_bootstrap_indices",
    "stats", "summarize", "to_markdown", "trial_summary", "verdict",
]
