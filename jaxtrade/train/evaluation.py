"""Validation during training and the out-of-sample evaluation of model artifacts, through `jaxtrade.eval`.

Validation metrics (the ones best checkpoints are chosen on) come from one deterministic backtest
of the current policy over the whole validation split, with the training costs:

- sharpe, annual_return, max_drawdown: `jaxtrade.eval.stats` of the backtest's value series;
- win_rate: share of the backtest's closed trades with positive net PnL (NaN without a closed trade);
- profit_rate: `eval.stats.profit_rate`, the share of the split's calendar months (of at least 5 rows)
  that end above their start: the one profit rate (a training episode's is the same share over episodes);
- composite: `metrics.composite_score` of those trading metrics only (agent diagnostics never
  choose a model).

`evaluate_artifact` is the one path from a saved model to a report row: the training loop's final
report, `experiments.evaluate` and a fresh process given only the artifact all go through it, so
they agree bit for bit.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

from jaxtrade import eval as evaluate
from jaxtrade.train.metrics import composite_score

log = logging.getLogger("jaxtrade")

VAL_KEYS = ("sharpe", "annual_return", "cumulative_return", "max_drawdown", "win_rate", "turnover",
            "total_costs")


def baseline_history(market, split, rows: int = 252):
    """Closes [rows, N] of the market rows before `split` (its history rows excluded too): the
    minimum-variance baseline's covariance warm-up, never data from the split itself."""
    return np.asarray(market.close)[np.asarray(market.dates < split.dates[0])][-rows:]


def validation_metrics(frame: pd.DataFrame, weights: dict | None = None) -> dict:
    """The model-selection metrics of one validation backtest frame (see the module docstring)."""
    st = evaluate.stats(frame)
    out = {k: float(st[k]) for k in (*VAL_KEYS, "profit_rate")}
    out["composite"] = composite_score(sharpe=out["sharpe"], annual_return=out["annual_return"],
                                       win_rate=out["win_rate"], profit_rate=out["profit_rate"],
                                       max_drawdown=out["max_drawdown"], weights=weights)
    return out


class Evaluator:
    """Backtests the agent's current deterministic policy on the validation split (compiled once per
    architecture: the policy's params are traced)."""

    def __init__(self, setup, agent, weights: dict | None = None):
        self.s, self.agent = setup, agent
        self.weights = dict(weights or {})

    def validate(self, state) -> dict:
        return self.validate_params(self.agent.params(state))

    def validate_params(self, params) -> dict:
        """The validation metrics of the deterministic policy with network `params` (one member's)."""
        s = self.s
        policy = self.agent.policy(params)
        frame = evaluate.backtest(policy, s.val_env, s.val_params, dates=s.splits.val.dates,
                                  symbols=s.splits.val.symbols)
        return validation_metrics(frame, self.weights)

    def validate_many(self, params_list) -> list[dict]:
        """`validate_params` of each of `params_list` (a population's members), backtested in one
        vmapped run (`eval.backtest_many`)."""
        return [self.metrics(f) for f in self.frames(params_list)]

    def frames(self, params_list) -> list[pd.DataFrame]:
        """The validation backtest frames of `params_list` (one vmapped run for many members)."""
        s = self.s
        if len(params_list) == 1:
            policy = self.agent.policy(params_list[0])
            return [evaluate.backtest(policy, s.val_env, s.val_params, dates=s.splits.val.dates,
                                      symbols=s.splits.val.symbols)]
        return evaluate.backtest_many([self.agent.policy(p) for p in params_list], s.val_env, s.val_params,
                                      dates=s.splits.val.dates, symbols=s.splits.val.symbols)

    def metrics(self, frame: pd.DataFrame) -> dict:
        return validation_metrics(frame, self.weights)


def split_metrics(frame: pd.DataFrame, split: str) -> dict:
    """The metrics of a backtest of a whole split, JSON-safe, with the split's name and period: what
    a model records as held-out metrics when `split` is data no choice has seen."""
    m = {k: (float(v) if math.isfinite(v) else None) for k, v in validation_metrics(frame).items()}
    return dict(m, split=split, period=f"{_date(frame.index[0])} .. {_date(frame.index[-1])}")


def _date(x) -> str:
    return f"{x:%Y-%m-%d}" if hasattr(x, "strftime") else str(x)


def record_held_out(directory: str, frame: pd.DataFrame, split: str = "test") -> dict:
    """Writes the metrics of `frame` (the artifact in `directory` backtested on `split`, data no choice
    has seen) into its spec as held-out metrics; returns them."""
    from jaxtrade.train import artifact as artifact_lib

    held_out = split_metrics(frame, split)
    artifact_lib.add_held_out(directory, held_out)
    return held_out


def held_out_of_artifact(directory: str, split: str = "test", market=None) -> dict:
    """Backtests the artifact in `directory` on its own data's `split` (deterministic, whole split, its
    env and costs) and records the metrics as held-out in its spec; returns them. For the stages that
    choose on validation and never read the test split otherwise (pipeline, search)."""
    from jaxtrade.train import artifact as artifact_lib
    from jaxtrade.train.setup import make_split_env

    policy, spec = artifact_lib.load_model(directory)
    _, data_split = split_of(spec, split, market=market)
    env, params = make_split_env(spec.env, data_split)
    frame = evaluate.backtest(policy, env, params, dates=data_split.dates, symbols=data_split.symbols)
    return record_held_out(directory, frame, split)


def split_of(spec, name: str, market=None):
    """The `Split` `name` (train | val | test) of an artifact's data, cut by its own Preprocessor.

    market: the MarketData (default: loaded from the artifact's data source)."""
    from jaxtrade.data import fingerprint
    from jaxtrade.train.setup import load_market_data

    rng = spec.data.get(name)
    if not rng:
        raise ValueError(f"the model's data has no {name} split (its data section: {spec.data})")
    md = load_market_data(spec.data) if market is None else market
    fp = fingerprint(md)
    if name == "train" and fp != spec.data_fingerprint:
        log.warning("the data differ from the data the model was trained on (fingerprint %s, trained "
                    "on %s)", fp[:12], spec.data_fingerprint[:12])
    return md, spec.preprocessor.transform(md, tuple(rng), name=name)


def agent_row(spec) -> str:
    """The report row of a model of `spec`: "<agent>_agent" (ppo_agent, dqn_agent, ...)."""
    return f"{spec.agent}_agent"


def evaluate_artifact(policies, spec, split, *, market, history_rows: int = 252, n_boot: int = 1000,
                      seed: int = 0, out_dir: str, notes: str = "", title: str | None = None,
                      name: str | None = None, trials_section: bool = True):
    """Backtests `policies` (one Policy or one per seed, all of `spec`'s architecture) on `split`
    against the baselines, through the env of `spec.env`; writes report.md/.csv/PNGs into out_dir.
    trials_section: append the overfitting section of the trials `spec` records it was chosen among
    (`overfitting_markdown`), where it records them.

    Returns the `Report`."""
    from jaxtrade.data import dataset_caveats

    name = name or agent_row(spec)
    results, env, params = split_results(policies, spec.env, split, market=market,
                                         history_rows=history_rows, name=name)
    kw = {} if title is None else {"title": title}
    cost_note = cost_description(env, params)
    notes = " ".join(x for x in (notes, period_note(spec.data.get(split.name), split),
                                 f"Costs: {cost_note}." if cost_note else "") if x)
    caveats = "" if spec.data.get("csv_path") else dataset_caveats(spec.data.get("dataset"))
    rep = evaluate.report(results, out_dir, n_boot=n_boot, seed=seed, notes=notes, table_note=caveats, **kw)
    trials = (spec.metrics or {}).get("trials")
    if trials_section:
        section = (overfitting_markdown(trials) if trials else
                   "## Overfitting\n\nThis model records no trials it was chosen among (an artifact saved "
                   "before trial ledgers, or not chosen on validation): its selection luck is unknown.\n")
        with open(rep.md_path, "a", encoding="utf-8") as f:
            f.write("\n" + section)
    return rep


def overfitting_markdown(summary: dict) -> str:
    """The overfitting section of a report: `eval.overfitting.markdown_section` of the trials summary,
    and the agent's Sharpe on the train / validation / test splits side by side where it has them."""
    from jaxtrade.eval.overfitting import markdown_section

    lines = [markdown_section(summary)]
    by_split = summary.get("sharpe_by_split")
    if by_split:
        fmt = lambda x: "n/a" if x is None or not math.isfinite(x) else f"{x:.3f}"
        n = summary.get("n_seeds") or 1
        lines += ["", f"Sharpe by split ({n} seed(s)' chosen models; train and validation: median over "
                  "seeds of deterministic backtests of the whole split; test: the report's agent row). "
                  "Training and validation chose the model; only the test column is held out.", "",
                  "| split | role | agent Sharpe |", "| --- | --- | --- |",
                  f"| train | fitted the model | {fmt(by_split.get('train'))} |",
                  f"| val | chose the model (selection) | {fmt(by_split.get('val'))} |",
                  f"| test | held out | {fmt(by_split.get('test'))} |"]
        sentence = divergence_sentence(by_split.get("train"), by_split.get("val"))
        lines += ["", sentence] if sentence else []
    return "\n".join(lines) + "\n"


def split_results(policies, env_config: dict, split, *, market, history_rows: int = 252,
                  name: str = "ppo_agent"):
    """({name: [frames], <baseline>: [frames], ...}, env, env params): `policies` (one Policy or one per
    seed) and the baselines backtested over the whole of `split` in the env of `env_config`."""
    from jaxtrade.train.setup import make_split_env

    env, params = make_split_env(env_config, split)
    agent = evaluate.evaluate_policies({name: policies}, env, params, split)
    base = evaluate.baselines(env, params, split, history=baseline_history(market, split, history_rows))
    results = {**agent, **base}
    basis = getattr(market, "periods_per_year_basis", None)
    if basis and float(market.periods_per_year) == float(params.data.periods_per_year):
        for frames in results.values():       # the report states how the annualization was derived
            for f in frames:
                f.attrs["periods_per_year_basis"] = basis
    return results, env, params


def cost_description(env, params) -> str:
    """The cost line of a report's notes: the sentence the env's registration states its costs with
    ("" where the env registers none)."""
    from jaxtrade import envs

    describe = envs.registration_of(env).describe_costs
    return describe(params) if describe is not None else ""


def period_note(requested, split) -> str:
    """"" when `split` covers its requested (start, end) dates; otherwise a sentence saying what was
    asked for and the period actually traded (a split running past the data's end is cut there)."""
    if not requested or requested[1] is None or isinstance(requested[1], (int, np.integer)):
        return ""   # no end, or a row index (walk-forward folds): the split is what was asked for
    first, last = split.traded_dates[0], split.traded_dates[-1]
    asked_end = pd.Timestamp(requested[1])
    if asked_end.normalize() <= last.normalize():
        return ""
    return (f"The {split.name} split asked for {requested[0]} .. {requested[1]}, but the data end on "
            f"{last:%Y-%m-%d}: it covers {first:%Y-%m-%d} .. {last:%Y-%m-%d} only.")


def in_sample_comparison(setup, policies, *, splits=("train", "val")) -> pd.DataFrame:
    """The agent's deterministic backtest Sharpe on the training (and validation) split against the
    best constant policy of its own action space (`eval.constant_policies`): a learned agent should
    at least match the best simple rule on the data it was trained on.

    policies: one Policy or one per seed. Returns one row per split: agent_median / agent_min /
    agent_max (Sharpe over seeds), best_constant (its name), best_constant_sharpe, and beats
    (agent_median >= best_constant_sharpe). The constant policies run in the agent's world, its
    turbulence gate included; best_constant_no_gate / best_constant_no_gate_sharpe are the same rules
    with the gate off, a labelled reference (a gated "choose and hold" sits in cash after the first
    gated day)."""
    import jax.numpy as jnp

    from jaxtrade.eval.baselines import constant_policies

    policies = list(policies) if isinstance(policies, (list, tuple)) else [policies]
    rows = {}
    for name in splits:
        split = getattr(setup.splits, name)
        params = setup.split_params(name)
        if split is None or params is None:
            continue
        env = setup.env                        # backtests unwrap it and run the whole split
        run = lambda pol, split=split, params=params, env=env: evaluate.stats(evaluate.backtest(
            pol, env, params, dates=split.dates, symbols=split.symbols))["sharpe"]
        agent = split_sharpes(setup, policies, name)
        ungated = params.replace(turbulence_threshold=jnp.asarray(jnp.inf, jnp.float32))
        pols = constant_policies(env, params)
        best = _best({k: float(run(p)) for k, p in pols.items()})
        free = _best({k: float(run(p, params=ungated)) for k, p in pols.items()})
        rows[name] = dict(period=f"{split.traded_dates[0]:%Y-%m-%d} .. {split.traded_dates[-1]:%Y-%m-%d}",
                          n_seeds=len(agent), agent_median=float(np.median(agent)),
                          agent_min=float(agent.min()), agent_max=float(agent.max()), best_constant=best[0],
                          best_constant_sharpe=best[1], best_constant_no_gate=free[0],
                          best_constant_no_gate_sharpe=free[1], beats=bool(np.median(agent) >= best[1]))
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "split"
    return table


def split_sharpes(setup, policies, name: str) -> np.ndarray:
    """[seeds] Sharpe of deterministic backtests of `policies` over the whole split `name` of `setup`."""
    split, params = getattr(setup.splits, name), setup.split_params(name)
    frames = [evaluate.backtest(p, setup.env, params, dates=split.dates, symbols=split.symbols)
              for p in policies]
    return np.array([evaluate.stats(f)["sharpe"] for f in frames], np.float64)


def _best(sharpes: dict) -> tuple[str, float]:
    best = max(sharpes, key=lambda k: -math.inf if math.isnan(sharpes[k]) else sharpes[k])
    return best, sharpes[best]


# Train and validation Sharpe "diverge strongly" when train exceeds validation by at least this much
# and validation is at most this share of train.
DIVERGENCE_GAP = 1.0
DIVERGENCE_SHARE = 0.5


def divergence_sentence(train, val) -> str:
    """A sentence where the agent's train Sharpe is far above its validation Sharpe (`DIVERGENCE_GAP`,
    `DIVERGENCE_SHARE`); "" otherwise or where either is missing."""
    if train is None or val is None or not (math.isfinite(train) and math.isfinite(val)):
        return ""
    if train - val < DIVERGENCE_GAP or val > DIVERGENCE_SHARE * train:
        return ""
    return (f"**Train and validation Sharpe diverge strongly** ({train:.3f} on train against {val:.3f} on "
            "validation): the agent does far better on the data it was fitted to than on data it was not, "
            "a sign of overfitting; expect held-out results nearer the validation number.")


def in_sample_markdown(table: pd.DataFrame) -> str:
    """`in_sample_comparison`'s table as a report section (with `divergence_sentence` of the agent's
    median train and validation Sharpe where it has both)."""
    lines = ["## In sample: the agent against the best constant policy", "",
             "Deterministic backtests of the whole split; Sharpe of the agent (median and range over seeds) "
             "against the best constant policy of its own action space (for regimes: one regime chosen "
             "on the first day and held), both in the agent's world (turbulence gate on); the last two "
             "columns are the same rules with the gate off, for reference only. Training and validation "
             "data only.", "",
             "| split | period | seeds | agent Sharpe median [min, max] | best constant policy | its Sharpe "
             "| agent >= best constant | best constant, gate off (reference) | its Sharpe |",
             "|" + " --- |" * 9]
    for name, r in table.iterrows():
        lines.append(f"| {name} | {r['period']} | {int(r['n_seeds'])} | {r['agent_median']:.3f} "
                     f"[{r['agent_min']:.3f}, {r['agent_max']:.3f}] | {r['best_constant']} | "
                     f"{r['best_constant_sharpe']:.3f} | {'yes' if r['beats'] else 'no'} | "
                     f"{r['best_constant_no_gate']} | {r['best_constant_no_gate_sharpe']:.3f} |")
    if {"train", "val"} <= set(table.index):
        sentence = divergence_sentence(table.loc["train", "agent_median"], table.loc["val", "agent_median"])
        lines += ["", sentence] if sentence else []
    return "\n".join(lines) + "\n"
