r"""The acceptance placebo of the overfitting statistics, over many placebo markets: DSR and PBO of the
chosen model when there is no skill to find, and when there is.

    .venv/bin/python -m benchmarks.placebo                # tests/train/test_placebo.py's size, markets 0-11
    .venv/bin/python -m benchmarks.placebo --data_seeds=0,1,2 --drift=0.008 \
        --drift_kind=long_short   # skill to find
    .venv/bin/python -m benchmarks.placebo --iterations=30 --eval_every=5 --hidden_dim=64 \
        --n_envs=16 --n_steps=64

A placebo market (`placebo_market`) is sp500-20 with its history reshuffled: the daily simple returns of
the 20 stocks and the index, demeaned per series, are drawn as whole cross-sections (one date's returns
of every series together) i.i.d. with replacement under a numpy seed, and compounded into price paths on
the real calendar. Cross-sectional correlation and fat tails survive; drift, momentum, reversal and
volatility clustering do not, so no policy that sees only past prices has a positive expected return
before costs: whatever Sharpe the chosen model shows on validation is selection luck. `--drift` adds a
daily drift back (to every stock, or + to the first half and - to the second: momentum then pays).

Per market: one population of `--members` seeds (one compile, reused by every market: same shapes)
trains `smoke`'s tiny network (or the sizes the flags give) into a fresh workdir; every validation adds
each member's checkpoint to the trial ledger, and the final report writes `overfitting.json` (the chosen
model among every trial).
Printed per market: trials, validation periods, the chosen model's annualized validation Sharpe, the
expected maximum Sharpe of that many skill-less trials, DSR, PBO, the Sharpe by split; then the share of
markets where DSR >= 0.95 (a false discovery on a placebo) and PBO < 0.3, and the medians.
tests/train/test_placebo.py's bounds (DSR < 0.95, PBO >= 0.3) come from this script's default run; its
docstring has the figures.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time

import numpy as np

from benchmarks import common

DSR_BAR = 0.95     # DSR at or above this rejects "no skill" (Bailey & López de Prado's usual bar)
PBO_BAR = 0.3      # PBO below this says the in-sample winner tends to win out of sample too


def placebo_market(seed: int, *, drift: float = 0.0, drift_kind: str = "all", dataset: str = "sp500-20"):
    """A MarketData with `dataset`'s calendar and symbols whose prices are a random walk of its own
    demeaned daily returns (module docstring): cross-sections drawn i.i.d. with replacement by
    numpy's default_rng(seed). drift: added to every stock's daily simple return ("all"), or added to
    the first half of the symbols and subtracted from the second ("long_short"); the index gets none.
    Close prices and the benchmark only: every feature is computed from these synthetic prices."""
    from jaxtrade.data import MarketData, load_dataset

    md = load_dataset(dataset)
    prices = np.column_stack([md.close, md.benchmark]) if md.benchmark is not None else np.asarray(md.close)
    returns = prices[1:] / prices[:-1] - 1.0
    returns = returns - returns.mean(axis=0)
    returns = returns[np.random.default_rng(seed).integers(0, len(returns), len(returns))]
    n = md.n_symbols
    if drift_kind == "all":
        returns[:, :n] += drift
    elif drift_kind == "long_short":
        returns[:, :n // 2] += drift
        returns[:, n // 2:n] -= drift
    else:
        raise ValueError(f"drift_kind must be 'all' or 'long_short', got {drift_kind!r}")
    paths = 100.0 * np.vstack([np.ones((1, prices.shape[1])), np.cumprod(1.0 + returns, axis=0)])
    benchmark = paths[:, n] if md.benchmark is not None else None
    return MarketData.from_arrays(md.dates, md.symbols, paths[:, :n], benchmark=benchmark,
                                  benchmark_name=None if benchmark is None else "placebo index",
                                  source=f"placebo({dataset}, seed {seed}, drift {drift} {drift_kind})",
                                  periods_per_year=md.periods_per_year)


def placebo_config(members: int = 8):
    """`smoke` with `members` seeds as one population, a whole year of validation (251 returns: 15 rows
    in each of PBO's 16 CSCV groups) every 2 of 6 iterations (3 validations: 3 x members trials)."""
    from experiments.configs import smoke

    cfg = smoke.get_config()
    cfg.data.val = ("2015-01-01", "2015-12-31")
    cfg.train.update(seeds=members, iterations=6, eval_every=2, checkpoint_every=6, n_devices=1,
                     tensorboard=False)
    return cfg


def run_market(cfg, market, workdir: str, agent=None):
    """(overfitting.json, trials.json, TrainResult, agent) of one population trained on `market`."""
    from jaxtrade.train import setup as setup_lib
    from jaxtrade.train.loop import run

    s = setup_lib.build(cfg, market=market)
    agent = agent or s.make_agent()
    result = run(s, agent, workdir, verbosity="quiet")
    with open(os.path.join(workdir, "overfitting.json"), encoding="utf-8") as f:
        summary = json.load(f)
    with open(os.path.join(workdir, "trials.json"), encoding="utf-8") as f:
        trials = json.load(f)
    return summary, trials, result, agent


def best_val_sharpe(trials: dict) -> float:
    """The highest annualized validation Sharpe among a ledger's trials (what a naive report shows)."""
    return max(t["metrics"]["sharpe"] for t in trials["trials"].values()
               if t["metrics"].get("sharpe") is not None)


def main(argv):
    del argv
    import logging

    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)      # Orbax logs every save at INFO
    logging.getLogger("jaxtrade").setLevel(logging.WARNING)
    f = _FLAGS
    cfg = placebo_config(f["members"].value)
    for key in ("iterations", "eval_every"):
        if f[key].value:
            cfg.train[key] = f[key].value
    cfg.train.checkpoint_every = cfg.train.iterations
    if f["hidden_dim"].value:
        cfg.model.hidden_dim = f["hidden_dim"].value
    for key in ("n_envs", "n_steps"):
        if f[key].value:
            cfg.ppo[key] = f[key].value
    seeds = [int(x) for x in f["data_seeds"].value]
    print(common.machine_line(), f"| load {common.load():.2f}", flush=True)
    print(f"{cfg.train.seeds} members x {cfg.train.iterations} iterations of {cfg.ppo.n_envs} envs x "
          f"{cfg.ppo.n_steps} steps, hidden {cfg.model.hidden_dim}, validation {cfg.data.val[0]}.."
          f"{cfg.data.val[1]} every {cfg.train.eval_every}; drift {f['drift'].value} "
          f"({f['drift_kind'].value}); markets {seeds}", flush=True)
    rows, agent = [], None
    for seed in seeds:
        market = placebo_market(seed, drift=f["drift"].value, drift_kind=f["drift_kind"].value)
        with tempfile.TemporaryDirectory() as workdir:
            t0 = time.perf_counter()
            o, trials, result, agent = run_market(cfg, market, workdir, agent)
            seconds = time.perf_counter() - t0
        row = dict(seed=seed, n_trials=o["n_trials"], n_periods=o["n_periods"], chosen=o["chosen_name"],
                   sharpe_annual=o["sharpe_annual"], best_trial_sharpe=best_val_sharpe(trials),
                   expected_max_sharpe_annual=o["expected_max_sharpe_annual"], psr=o["psr"], dsr=o["dsr"],
                   pbo=o["pbo"], pbo_reason=o["pbo_reason"], sharpe_by_split=o["sharpe_by_split"],
                   seconds=seconds, compiles=result.compiles)
        rows.append(row)
        split = o["sharpe_by_split"]
        print(f"  market {seed:>3}: {o['n_trials']} trials x {o['n_periods']} periods, chosen "
              f"{o['chosen_name']} val Sharpe {o['sharpe_annual']:+.2f} (E[max] "
              f"{_fmt(o['expected_max_sharpe_annual'], '.2f')}), DSR {o['dsr']:.3f}, PBO "
              f"{_fmt(o['pbo'], '.2f')}; Sharpe train/val/test {_fmt(split['train'])}/{_fmt(split['val'])}/"
              f"{_fmt(split['test'])}; {seconds:.1f} s, load {common.load():.2f}", flush=True)
    dsr = [r["dsr"] for r in rows]
    pbo = [r["pbo"] for r in rows if r["pbo"] is not None]
    summary = dict(markets=len(rows), dsr_median=statistics.median(dsr), dsr_max=max(dsr),
                   share_dsr_at_or_above_bar=float(np.mean([d >= DSR_BAR for d in dsr])),
                   pbo_median=statistics.median(pbo) if pbo else None, pbo_min=min(pbo) if pbo else None,
                   share_pbo_below_bar=float(np.mean([p < PBO_BAR for p in pbo])) if pbo else None,
                   pbo_missing=len(rows) - len(pbo))
    print(f"DSR median {summary['dsr_median']:.3f}, max {summary['dsr_max']:.3f}, >= {DSR_BAR} in "
          f"{summary['share_dsr_at_or_above_bar']:.0%} of markets; PBO median "
          f"{_fmt(summary['pbo_median'], '.2f')}, min {_fmt(summary['pbo_min'], '.2f')}, < {PBO_BAR} in "
          f"{_fmt(summary['share_pbo_below_bar'], '.0%')} ({summary['pbo_missing']} without PBO)", flush=True)
    common.emit({"rows": rows, "summary": summary})


def _fmt(x, spec="+.2f"):
    return "n/a" if x is None else format(x, spec)


_FLAGS: dict = {}


def _define_flags() -> None:
    # Defined only when run as a script: tests import `placebo_market` from here without absl flags.
    from absl import flags

    _FLAGS.update(
        data_seeds=flags.DEFINE_list("data_seeds", [str(i) for i in range(12)], "Placebo market seeds."),
        members=flags.DEFINE_integer("members", 8, "Population members (seeds) per market.", lower_bound=2),
        iterations=flags.DEFINE_integer("iterations", None, "Training iterations (default: the test's 6)."),
        eval_every=flags.DEFINE_integer("eval_every", None, "Validation every (default: the test's 2)."),
        hidden_dim=flags.DEFINE_integer("hidden_dim", None, "Network width (default: smoke's 16)."),
        n_envs=flags.DEFINE_integer("n_envs", None, "PPO envs (default: smoke's 4)."),
        n_steps=flags.DEFINE_integer("n_steps", None, "PPO steps per iteration (default: smoke's 8)."),
        drift=flags.DEFINE_float("drift", 0.0, "Daily drift added back: skill to find (0: a placebo)."),
        drift_kind=flags.DEFINE_enum("drift_kind", "all", ["all", "long_short"],
                                     "Drift on every stock, or + on the first half and - on the second."),
    )


if __name__ == "__main__":
    from absl import app

    _define_flags()
    app.run(main)
