"""Evaluate saved models: from a model artifact alone (no config file, no `setup.build`).

    policy, spec = load_model(directory)
    market, split = evaluation.split_of(spec, "test")       # the artifact's data, its Preprocessor
    frame = backtest(policy, *make_split_env(spec.env, split), dates=split.dates, symbols=split.symbols)
"""

from __future__ import annotations

import os

from jaxtrade.train import artifact as artifact_lib
from jaxtrade.train import evaluation


def run_dir(path: str) -> str:
    """The run's workdir from a checkpoint path (.../<workdir>/checkpoints/<name>[/<step>])."""
    parts = os.path.abspath(path).split(os.sep)
    if "checkpoints" in parts:
        return os.sep.join(parts[:len(parts) - 1 - parts[::-1].index("checkpoints")])
    return os.path.dirname(os.path.abspath(path))


def evaluate_model(checkpoint: str, *, split: str = "test", out_dir: str | None = None,
                   seeds_dirs: tuple[str, ...] = (), n_boot: int = 1000) -> str:
    """Backtests the model artifact `checkpoint` (and `seeds_dirs`: artifacts of the same experiment
    with other seeds) on `split` of its own data against the baselines; writes report.md (+ CSV,
    PNGs) into out_dir (default `<workdir>/eval-<split>`) and returns its path."""
    paths = (checkpoint,) + tuple(seeds_dirs)
    for p in paths:
        if not artifact_lib.is_artifact(p):
            raise FileNotFoundError(f"{os.path.abspath(p)} is not a model artifact (no spec.json): give a "
                                    "best_<metric> directory such as <workdir>/checkpoints/best_composite")
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
