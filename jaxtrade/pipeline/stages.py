"""The whole pipeline in one call: pretrain -> rl -> hybrid -> ensemble, every stage registered.

    result = stages.run(config, workdir)      # config: an experiment config + `pretrain` + `pipeline`

1. pretrain (`pipeline.pretrain`): the encoder of `config.model` on windows of the training split ->
   `workdir/pretrain/encoder`, registered as `<prefix>_encoder` (stage pretrain, graded on its
   validation R^2 and directional accuracy).
2. rl: the config's agent (`agent.name`, PPO by default) with `model.encoder_init` = that encoder,
   frozen (`<agent>.frozen=("encoder",)`), into `workdir/rl`; its best-validation-composite model is
   registered as `<prefix>_<agent>` (stage rl,
   parent: the encoder).
3. hybrid (`pipeline.hybrid`): the rl model fine-tuned end to end for `pipeline.hybrid_iterations`
   at `pipeline.hybrid_lr_scale` times the learning rates, into `workdir/hybrid`, registered as
   `<prefix>_hybrid` (stage hybrid, parents: the encoder and the rl model).
4. ensemble (`pipeline.ensemble`): the rl model and the hybrid, by `pipeline.ensemble_mode`, built
   from their registered (checksummed) copies, backtested on the validation split for its own
   metrics, registered as `<prefix>_ensemble` (stage ensemble, parents: both members).

5. report: `workdir/report.md`, the answer: each stage's registered ref and grade, its held-out metrics
   on the test split (with the split's dates), the baselines of that same split in the rl model's env
   (its costs and turbulence gate; `registry.baseline_rows`), and the commands to go on with.

Every stage chooses on the training and validation splits only; the test split is read once per chosen
model, after the choice, for its held-out metrics (the grade), and once for the report's baselines.
`workdir/pipeline.json` records each finished stage's registry ref: a rerun with the same workdir
skips finished stages (and checks their entries still verify). The registry is `pipeline.registry`
(default `workdir/registry`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time

import ml_collections
from ml_collections import config_dict

from jaxtrade.agents import registry as agent_registry
from jaxtrade.agents.base import check_keys
from jaxtrade.pipeline import ensemble as ensemble_lib
from jaxtrade.pipeline import hybrid as hybrid_lib
from jaxtrade.pipeline import pretrain as pretrain_lib
from jaxtrade.pipeline.registry import Registry
from jaxtrade.train import artifact as artifact_lib
from jaxtrade.train import evaluation, sources
from jaxtrade.train import loop as loop_lib
from jaxtrade.train.checkpoints import Checkpoints
from jaxtrade.train.trials import summary_of_artifact

log = logging.getLogger("jaxtrade")

STAGES = ("pretrain", "rl", "hybrid", "ensemble")
_STATE = "pipeline.json"


def default_config(**changes) -> ml_collections.ConfigDict:
    """The `pipeline` section, updated with `changes` (an unknown key raises, naming `pipeline.<key>`)."""
    cfg = ml_collections.ConfigDict(dict(
        prefix="sp500",                 # registry names <prefix>_encoder, _<agent>, _hybrid, _ensemble
        registry=config_dict.placeholder(str),   # default: <workdir>/registry
        hybrid_iterations=10,
        hybrid_lr_scale=0.3,                     # fine-tuning learning rates = this x the rl run's
        ensemble_mode="weighted",                # winner | weighted | majority
        ensemble_temperature=1.0,
    ))
    cfg.update(check_keys(changes, cfg, name="pipeline"))
    return cfg


@dataclasses.dataclass
class PipelineResult:
    workdir: str
    registry: str
    refs: dict                   # stage -> registry ref
    seconds: dict                # stage -> wall seconds (stages run by this call)


def _state(workdir: str) -> dict:
    path = os.path.join(workdir, _STATE)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _save_state(workdir: str, refs: dict) -> None:
    artifact_lib.write_json_atomic(os.path.join(workdir, _STATE), {"stages": refs})


def run(config, workdir: str, *, verbosity: str = "normal") -> PipelineResult:
    """Runs the four stages of `config` into `workdir` (module docstring)."""
    config = ml_collections.ConfigDict(config.to_dict())
    p = default_config(**dict(config.get("pipeline", {})))
    if p.ensemble_mode not in ensemble_lib.MODES:
        raise ValueError(f"pipeline.ensemble_mode={p.ensemble_mode!r}: must be one of {ensemble_lib.MODES}")
    if not config.data.get("val"):
        raise ValueError("the pipeline selects and grades every stage on validation: set data.val")
    os.makedirs(workdir, exist_ok=True)
    reg = Registry(p.registry or os.path.join(workdir, "registry"))
    refs = dict(_state(workdir).get("stages", {}))
    for stage, ref in refs.items():
        reg.check(ref)           # a finished stage's entry must still verify before it is built on
        log.info("pipeline: %s already done (%s)", stage, ref)
    seconds = {}
    # Every stage chooses on validation; its grade needs data no choice saw: the test split, read once
    # per chosen model (held-out metrics in its spec). Without data.test the entries are ungraded.
    has_test = bool(config.data.get("test"))

    def held_out(artifact_dir):
        if has_test:
            evaluation.held_out_of_artifact(artifact_dir, "test")

    def done(stage, entry, t0):
        refs[stage] = entry.ref
        seconds[stage] = time.perf_counter() - t0
        _save_state(workdir, refs)
        log.info("pipeline: %s -> %s (grade %s, %.0f s)", stage, entry.ref, entry.grade, seconds[stage])

    if "pretrain" not in refs:
        t0 = time.perf_counter()
        pre = pretrain_lib.run(config, os.path.join(workdir, "pretrain"))
        done("pretrain", reg.register(f"{p.prefix}_encoder", pre.artifact, stage="pretrain"), t0)
    encoder_dir = reg.path(refs["pretrain"])

    if "rl" not in refs:
        t0 = time.perf_counter()
        cfg = ml_collections.ConfigDict(config.to_dict())
        cfg.model.encoder_init = encoder_dir
        agent_registry.section(cfg)["frozen"] = ("encoder",)
        cfg.train.seeds = 1
        cfg.train.final_report = False            # nothing here reads the test split
        rl_dir = os.path.join(workdir, "rl")
        loop_lib.train(cfg, rl_dir, verbosity=verbosity)   # a killed rl stage resumes from its latest
        best = Checkpoints(rl_dir).directory("composite")
        held_out(best)
        done("rl", reg.register(f"{p.prefix}_{agent_registry.agent_name(cfg)}", best, stage="rl",
                                parents=(refs["pretrain"],), trials=summary_of_artifact(rl_dir, best)), t0)

    if "hybrid" not in refs:
        t0 = time.perf_counter()
        cfg = ml_collections.ConfigDict(config.to_dict())
        section = agent_registry.section(cfg)
        for key in agent_registry.registration(agent_registry.agent_name(cfg)).lr_keys:
            section[key] = float(section[key]) * p.hybrid_lr_scale
        cfg.train.final_report = False
        h = hybrid_lib.make_hybrid(cfg, os.path.join(workdir, "hybrid"), encoder_dir=encoder_dir,
                                   held_out=has_test,
                                   rl_dir=reg.path(refs["rl"]), iterations=int(p.hybrid_iterations),
                                   registry=reg, encoder_ref=refs["pretrain"], rl_ref=refs["rl"],
                                   name=f"{p.prefix}_hybrid", verbosity=verbosity)
        done("hybrid", h.entry, t0)

    if "ensemble" not in refs:
        t0 = time.perf_counter()
        members = [refs["rl"], refs["hybrid"]]
        dirs = [reg.path(r) for r in members]
        frame, _ = ensemble_lib.backtest_ensemble(dirs, "val", mode=p.ensemble_mode,
                                                  temperature=p.ensemble_temperature)
        metrics = sources.selection_metrics(loop_lib.json_floats(evaluation.validation_metrics(frame)),
                                                 split="val")
        path = ensemble_lib.build_ensemble(dirs, os.path.join(workdir, "ensemble"), mode=p.ensemble_mode,
                                           temperature=p.ensemble_temperature, names=members, metrics=metrics)
        held_out(path)
        done("ensemble", reg.register(f"{p.prefix}_ensemble", path, stage="ensemble",
                                      parents=tuple(members)), t0)
    if seconds or not os.path.exists(os.path.join(workdir, "report.md")):   # a rerun of nothing keeps it
        write_report(workdir, reg, refs, has_test=has_test)
    return PipelineResult(workdir, reg.root, dict(refs), seconds)


# (metric, column, as a percentage): the report's held-out columns
_REPORT_METRICS = (("sharpe", "Sharpe", False), ("annual_return", "annual return", True),
                   ("max_drawdown", "max drawdown", True), ("win_rate", "win rate", True),
                   ("turnover", "turnover", False), ("total_costs", "costs / start", True))
_ENCODER_METRICS = ("val_r2", "directional_accuracy", "directional_accuracy_edge")   # its grade's inputs


def write_report(workdir: str, reg: Registry, refs: dict, *, has_test: bool) -> str:
    """`workdir/report.md` (module docstring, step 5); returns its path."""
    from jaxtrade.pipeline.registry import baseline_rows, format_metric

    entries = {stage: reg.get(refs[stage]) for stage in STAGES if stage in refs}
    labels = [label for _, label, _ in _REPORT_METRICS]
    row = lambda cells: "| " + " | ".join(cells) + " |"
    table = lambda head, rows: [row(head), row(["---"] * len(head)), *rows]
    metric_cells = lambda m: [format_metric(m, k, pct) or "-" for k, _, pct in _REPORT_METRICS]
    lines = ["# Pipeline report", "",
             f"Registry: `{reg.root}`. Every stage chose its model on the validation split; a grade comes "
             "from held-out metrics only (`experiments.registry info <ref>` explains it).", ""]
    enc = entries.get("pretrain")
    if enc is not None:
        got = ", ".join(f"{k} {enc.held_out[k]:.4f}" for k in _ENCODER_METRICS
                        if isinstance(enc.held_out.get(k), float)) or "none"
        lines += [f"Encoder (pretrain): `{enc.ref}`, grade {enc.grade}; held-out "
                  f"({enc.held_out.get('split', '-')}): {got}.", ""]
    models = [(stage, e) for stage, e in entries.items() if stage != "pretrain"]
    periods = sorted({str(e.held_out.get("period")) for _, e in models if e.held_out.get("period")})
    if not has_test:
        lines += ["No test split (data.test): the models have no held-out metrics and are ungraded; set "
                  "data.test to grade them.", ""]
    lines += [f"## Held-out: the test split ({', '.join(periods) or 'none'})", "",
              *table(["stage", "ref", "grade", "score", *labels],
                     [row([stage, f"`{e.ref}`", e.grade, "-" if e.score is None else f"{e.score:.3f}",
                           *metric_cells(e.held_out)]) for stage, e in models]), ""]
    if has_test and "rl" in entries:
        rl = entries["rl"]
        base = baseline_rows(artifact_lib.load_spec(reg.path(rl.ref)), "test")
        lines += [f"## Baselines: the same test split ({base[0]['period'] if base else '-'}), in "
                  f"`{rl.ref}`'s env (its costs and turbulence gate)", "",
                  *table(["baseline", "its metrics' grade", *labels],
                         [row([b["label"], b["split_grade"], *metric_cells(b)]) for b in base]),
                  "", "(a baseline is not registered: \"its metrics' grade\" is the grade an rl model with "
                  "these held-out metrics would get; costs / start: the costs paid as a fraction of the "
                  "starting value)", ""]
    last = entries.get("ensemble") or entries.get("rl")
    if last is not None:
        py = ".venv/bin/python -m experiments"
        offline = artifact_lib.load_spec(reg.path(last.ref)).data.get("dataset") == "sp500-20"
        trade = ("--bars_csv=sample --dry_run --max_bars=20   # offline replay of the bundled bars, no keys"
                 if offline else "--dry_run   # Alpaca's bars (keys), simulated fills")
        lines += ["## Next", "", "```bash",
                  f"{py}.registry benchmark --root={reg.root} --split=test   # every model and the baselines",
                  f"{py}.evaluate --checkpoint={reg.path(last.ref)}   # the full report: intervals, plots",
                  f"{py}.paper_trade --registry={reg.root} --model={last.ref} {trade}", "```", ""]
    path = os.path.join(workdir, "report.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    log.info("pipeline: the report is %s", path)
    return path
