r"""Cost sensitivity: the default experiment trained and reported at multiples of its default costs.

    .venv/bin/python -m benchmarks.costs --workdir=runs/cost_sensitivity [--multipliers=0.5,1,3]
        [--config=experiments/configs/portfolio_gru.py] [--iterations=N]

For each multiplier m, every proportional cost coefficient of `config.env.costs` is scaled by m
(spread, slippage, commission, the square-root law's Y, the seed model's coefficient); the dated
regulatory fees (a few dollars per million sold) are left as published. The agent is trained from
scratch at those costs (`jaxtrade.train.train`, seed `config.seed`), and its test-split report
holds every baseline at the same costs. Prints (and writes to <workdir>/cost_sensitivity.md) one
table: each policy's test Sharpe, annual return and total costs at each multiplier.
"""

from __future__ import annotations

import os
import time

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", "experiments/configs/portfolio_gru.py",
                                          "Experiment config file.", lock_config=False)
_WORKDIR = flags.DEFINE_string("workdir", "runs/cost_sensitivity", "One sub-directory per multiplier.")
_MULTIPLIERS = flags.DEFINE_list("multipliers", ["0.5", "1", "3"], "Multiples of the default costs.")
_ITERATIONS = flags.DEFINE_integer("iterations", None, "Override config.train.iterations (default: "
                                   "the config's).")
_EXISTING = flags.DEFINE_list("existing", [], "m=workdir pairs: read multiplier m's report.csv from a run "
                              "already made with the same config and seed (e.g. 1=runs/portfolio_gru "
                              "after `make train`) instead of training it again.")

# The proportional cost coefficients a multiplier scales (CostParams fields).
SCALED = ("spread_bps", "spread_abs", "slippage_bps", "commission_bps", "commission_per_share",
          "impact_y", "impact_coef")


def scaled_config(config, m: float):
    cfg = config.copy_and_resolve_references()
    for key in SCALED:
        cfg.env.costs[key] = float(cfg.env.costs[key]) * m
    return cfg


def _cell(x, fmt: str) -> str:
    return "n/a" if x != x else fmt.format(x)      # NaN (the index has no costs): n/a


def table(reports: dict) -> str:
    """Markdown: one row per policy, (Sharpe, annual return, total costs) per multiplier."""
    ms = sorted(reports)
    names = list(reports[ms[0]].index)
    head = "| policy | " + " | ".join(f"Sharpe x{m:g} | ann. return x{m:g} | costs x{m:g}" for m in ms) + " |"
    lines = [head, "|" + " --- |" * (1 + 3 * len(ms))]
    for name in names:
        cells = []
        for m in ms:
            row = reports[m].loc[name]
            cells += [_cell(row["sharpe"], "{:.3f}"), _cell(row["annual_return"], "{:+.2%}"),
                      _cell(row["total_costs"], "{:.2%}")]
        label = reports[ms[0]].loc[name].get("label", name)
        lines.append(f"| {label if isinstance(label, str) and label else name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    import pandas as pd

    from benchmarks.common import machine_line
    from jaxtrade.train import train

    config = _CONFIG.value
    if _ITERATIONS.value is not None:
        config.train.iterations = _ITERATIONS.value
    reports, seconds = {}, {}
    for pair in _EXISTING.value:
        m, _, workdir = pair.partition("=")
        if not workdir:
            raise app.UsageError(f"--existing wants m=workdir pairs, got {pair!r}")
        reports[float(m)] = pd.read_csv(os.path.join(workdir, "report.csv"), index_col="policy")
        seconds[float(m)] = float("nan")
        print(f"x{float(m):g}: read {os.path.join(workdir, 'report.csv')}", flush=True)
    for m in (float(x) for x in _MULTIPLIERS.value if float(x) not in reports):
        workdir = os.path.join(_WORKDIR.value, f"costs_x{m:g}")
        t0 = time.perf_counter()
        result = train(scaled_config(config, m), workdir, fresh_start=True, verbosity="quiet")
        seconds[m] = time.perf_counter() - t0
        reports[m] = pd.read_csv(os.path.join(os.path.dirname(result.report_path), "report.csv"),
                                 index_col="policy")
        print(f"x{m:g}: trained and reported in {seconds[m]:.0f} s ({result.report_path})", flush=True)
    md = (f"Cost sensitivity: {machine_line()}; config {config.data.dataset}, seed {config.seed}, "
          f"{config.train.iterations} iterations per run; test split; run times "
          + ", ".join(f"x{m:g} " + ("(existing run)" if s != s else f"{s:.0f} s") for m, s in seconds.items())
          + ".\n\n" + table(reports))
    path = os.path.join(_WORKDIR.value, "cost_sensitivity.md")
    with open(path, "w") as f:
        f.write(md)
    print(md)
    print(path)


if __name__ == "__main__":
    app.run(main)
