"""Evaluate saved models: from a model artifact alone (no config file, no `setup.build`).

    policy, spec = load_model(directory)
    market, split = evaluation.split_of(spec, "test")       # the artifact's data, its Preprocessor
    frame = backtest(policy, *make_split_env(spec.env, split), dates=split.dates, symbols=split.symbols)

Where a run keeps its models (`loop.best_directory`): a one-seed run in `<workdir>/checkpoints/best_<metric>`,
a run of several seeds (`train.seeds`, the default experiment's three) each seed's in
`<workdir>/checkpoints/seed_<s>/best_<metric>`. `run_artifacts(workdir)` finds them for either, and a path
that is no artifact is refused with the artifacts that do exist under its run (`require_artifact`).
"""

from __future__ import annotations

import os
import re

from jaxtrade.train import artifact as artifact_lib
from jaxtrade.train import evaluation
from jaxtrade.train.artifact import require_artifact, run_dir, what_exists

_SEED_DIR = re.compile(r"seed_(\d+)")
def run_artifacts(workdir: str, metric: str = "composite") -> list[str]:
    """The best-`metric` model artifact of every seed of the run in `workdir` (a run directory or its
    `checkpoints` directory): [checkpoints/best_<metric>] for a one-seed run, checkpoints/seed_<s>/
    best_<metric> in seed order for a run of several. A workdir holding both layouts (two runs' files)
    or neither is refused, naming the artifacts it does hold."""
    workdir = os.path.abspath(workdir)
    ckpts = workdir if os.path.basename(workdir) == "checkpoints" else os.path.join(workdir, "checkpoints")
    name = f"best_{metric}"
    single = os.path.join(ckpts, name)
    seeds = []                                      # (seed, its artifact), seed_<s> directories only
    for label in os.listdir(ckpts) if os.path.isdir(ckpts) else []:
        m = _SEED_DIR.fullmatch(label)
        if m and artifact_lib.is_artifact(os.path.join(ckpts, label, name)):
            seeds.append((int(m.group(1)), os.path.join(ckpts, label, name)))
    seeds.sort()
    if artifact_lib.is_artifact(single) and seeds:
        raise ValueError(f"{ckpts} holds both a one-seed run's {name} and seeds "
                         f"{[s for s, _ in seeds]}' (the files of two runs): give one model with "
                         f"--checkpoint, or train again with --fresh_start")
    if artifact_lib.is_artifact(single):
        return [single]
    if seeds:
        return [p for _, p in seeds]
    raise FileNotFoundError(f"{workdir} holds no {name} model (neither checkpoints/{name} nor "
                            f"checkpoints/seed_<s>/{name}); {what_exists(workdir)}")


def evaluate_model(checkpoint: str, *, split: str = "test", out_dir: str | None = None,
                   seeds_dirs: tuple[str, ...] = (), n_boot: int = 1000) -> str:
    """Backtests the model artifact `checkpoint` (and `seeds_dirs`: artifacts of the same experiment
    with other seeds) on `split` of its own data against the baselines; writes report.md (+ CSV,
    PNGs) into out_dir (default `<workdir>/eval-<split>`) and returns its path."""
    paths = (checkpoint,) + tuple(seeds_dirs)
    for p in paths:
        require_artifact(p)
    loaded = [artifact_lib.load_model(p) for p in paths]
    spec = loaded[0][1]
    for p, (_, other) in zip(paths[1:], loaded[1:], strict=True):
        if other.model != spec.model or other.env != spec.env:
            raise ValueError(f"{p}: not the same experiment as {paths[0]} (model or env config differ)")
    market, data_split = evaluation.split_of(spec, split)
    out_dir = out_dir or os.path.join(run_dir(paths[0]), f"eval-{split}")
    os.makedirs(out_dir, exist_ok=True)
    notes = f"Models: {', '.join(os.path.abspath(p) for p in paths)}; split {split}."
    rep = evaluation.evaluate_artifact([pol for pol, _ in loaded], spec, data_split, market=market,
                                       n_boot=n_boot, seed=spec.seed or 0, out_dir=out_dir, notes=notes)
    return rep.md_path


def evaluate_run(workdir: str, *, metric: str = "composite", split: str = "test", out_dir: str | None = None,
                 n_boot: int = 1000) -> str:
    """`evaluate_model` of every seed's best-`metric` model of the run in `workdir` (`run_artifacts`):
    one row over the seeds (mean, std and count); returns the report's path."""
    paths = run_artifacts(workdir, metric)
    return evaluate_model(paths[0], split=split, out_dir=out_dir, seeds_dirs=tuple(paths[1:]), n_boot=n_boot)
