r"""Does a pretrained encoder help PPO? Validation Sharpe on sp500-20 without one, with it frozen, and
with it fine-tuned, 5 seeds each.

    .venv/bin/python -m benchmarks.pretraining                       # the BUILD_NOTES table (a few \
        CPU minutes)
    .venv/bin/python -m benchmarks.pretraining --iterations=200 --hidden_dim=64

1. One supervised pretraining run (`pipeline.pretrain`: next-bar log return and 20-bar realized
   volatility per stock, windows of the 2009-2014 training split, the last 20% of its samples for
   early stopping) gives the encoder artifact.
2. Three PPO arms on the same config, each `--seeds` seeds trained as one population (one compile):
   "none" (a fresh encoder, everything trained), "frozen" (`model.encoder_init` + `ppo.frozen=encoder`)
   and "fine-tuned" (`model.encoder_init`, everything trained). Validation split 2015; the test split
   is not read.
3. Per seed: the validation Sharpe of the model the run selects (best validation composite,
   checkpoints/seed_<s>/best_composite) and of the final model (undefined for a policy that never
   leaves cash: counted, and left out of the mean and the test). Per arm: mean ± std over seeds, and
   Welch's t (two-sided p) of each pretrained arm against "none".

The network (a small CLSTM), the window and the budget are printed with the table: sized for a few
minutes on a 2-core CPU, far below the experiment configs, so the table says what pretraining does to
a short PPO run, not to a converged one.
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import time

from absl import app, flags

from benchmarks import common

_SEEDS = flags.DEFINE_integer("seeds", 5, "Seeds per arm (one population each).", lower_bound=2)
_ITERATIONS = flags.DEFINE_integer("iterations", 300, "PPO iterations per arm.", lower_bound=1)
_HIDDEN = flags.DEFINE_integer("hidden_dim", 32, "Encoder / core width.")
_WINDOW = flags.DEFINE_integer("window", 10, "Observation window rows.")
_EPOCHS = flags.DEFINE_integer("epochs", 30, "Pretraining epochs at most (early stopping, patience 3).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where the runs go (default: a temporary directory).")


def config():
    from experiments.configs import portfolio_clstm
    from jaxtrade.pipeline import pretrain

    cfg = portfolio_clstm.get_config()
    cfg.model.hidden_dim, cfg.model.n_heads, cfg.model.core = _HIDDEN.value, 2, "gru"
    cfg.env.window, cfg.env.episode_length = _WINDOW.value, 64
    cfg.ppo.update(n_envs=8, n_steps=32, n_minibatches=2, update_epochs=2, critic_epochs=2)
    cfg.data.test = None
    cfg.train.update(iterations=_ITERATIONS.value, eval_every=max(_ITERATIONS.value // 5, 1),
                     checkpoint_every=_ITERATIONS.value, seeds=_SEEDS.value, tensorboard=False,
                     final_report=False, n_devices=1)
    cfg.pretrain = pretrain.default_config(epochs=_EPOCHS.value)
    return cfg


def run_arm(cfg, workdir: str) -> dict:
    """Trains one arm; {"selected": [val Sharpe per seed], "final": [...], "seconds": wall time}."""
    import jax
    import numpy as np

    from jaxtrade.agents import ppo
    from jaxtrade.train import artifact, evaluation, loop
    from jaxtrade.train import setup as setup_lib
    from jaxtrade.train.checkpoints import Checkpoints

    t0 = time.perf_counter()
    s = setup_lib.build(cfg)
    agent = ppo.make(cfg, s.env)
    loop.run(s, agent, workdir, verbosity="quiet")
    labels = loop.population_of(cfg).labels
    ckpts = Checkpoints(workdir)
    selected = [artifact.load_spec(loop.best_directory(ckpts, "composite", labels, m)).metrics["sharpe"]
                for m in range(len(labels))]
    latest = ckpts.restore("latest", None).state["train_state"]["params"]       # [n_dev, K, ...]
    evaluator = evaluation.Evaluator(s, agent, dict(cfg.train.composite))
    final = [evaluator.validate_params(jax.tree.map(lambda x, m=m: np.asarray(x)[0, m], latest))["sharpe"]
             for m in range(len(labels))]
    return {"selected": selected, "final": final, "seconds": time.perf_counter() - t0}


def _finite(xs) -> list[float]:
    """The defined Sharpe ratios (a policy that never leaves cash has none: its returns are constant)."""
    return [float(x) for x in xs if x is not None and math.isfinite(x)]


def _mean_std(xs) -> str:
    ok = _finite(xs)
    text = f"{statistics.mean(ok):+.3f} ± {statistics.stdev(ok):.3f}" if len(ok) > 1 else "n/a"
    return text + ("" if len(ok) == len(xs) else f" ({len(xs) - len(ok)} of {len(xs)} undefined)")


def _welch(a, b) -> str:
    from scipy import stats

    a, b = _finite(a), _finite(b)
    if min(len(a), len(b)) < 2:
        return "n/a"
    t, p = stats.ttest_ind(a, b, equal_var=False)
    return f"t = {t:+.2f}, p = {p:.2f}"


def main(argv):
    del argv
    import logging

    import ml_collections
    from absl import logging as absl_logging

    from jaxtrade.pipeline import pretrain

    absl_logging.set_verbosity(absl_logging.WARNING)      # Orbax logs every save and restore at INFO
    logging.getLogger("jaxtrade").setLevel(logging.WARNING)

    t_start = time.perf_counter()
    root = _WORKDIR.value or tempfile.mkdtemp(prefix="pretraining-")
    cfg = config()
    print(f"{common.machine_line()}; load {common.load():.2f}", flush=True)
    print(f"network: clstm encoder (hidden {cfg.model.hidden_dim}, {cfg.model.n_heads} heads) + GRU core, "
          f"window {cfg.env.window}; PPO {cfg.train.iterations} iterations x {cfg.ppo.n_envs} envs x "
          f"{cfg.ppo.n_steps} steps = {cfg.train.iterations * cfg.ppo.n_envs * cfg.ppo.n_steps:,} env steps "
          f"per seed, {cfg.train.seeds} seeds per arm; train {cfg.data.train}, validation {cfg.data.val}",
          flush=True)
    t0 = time.perf_counter()
    pre = pretrain.run(cfg, os.path.join(root, "pretrain"))
    m = pre.metrics["selection"]          # the validation windows that chose the epoch
    print(f"pretraining: {m['epochs']} epochs (best {m['best_epoch']}), validation loss "
          f"{m['initial_val_loss']:.3f} before -> {m['val_loss']:.3f} (predicting the training means: "
          f"{m['val_loss_baseline']:.3f}), "
          f"R^2 {m['val_r2']:+.3f}, directional accuracy {m['directional_accuracy']:.3f} "
          f"(edge over the majority class {m['directional_accuracy_edge']:+.3f}); "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    arms = {"none": {}, "frozen": {"model.encoder_init": pre.artifact, "ppo.frozen": ("encoder",)},
            "fine-tuned": {"model.encoder_init": pre.artifact}}
    results = {}
    for name, changes in arms.items():
        arm_cfg = ml_collections.ConfigDict(cfg.to_dict())
        for key, value in changes.items():
            section, field = key.split(".")
            arm_cfg[section][field] = value
        results[name] = run_arm(arm_cfg, os.path.join(root, name))
        print(f"{name}: {results[name]['seconds']:.0f} s", flush=True)
    print("\n| encoder | val Sharpe, selected model | val Sharpe, final model | vs none (selected) | "
          "vs none (final) |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        base = results["none"]
        vs = ("", "") if name == "none" else (_welch(r["selected"], base["selected"]),
                                              _welch(r["final"], base["final"]))
        print(f"| {name} | {_mean_std(r['selected'])} | {_mean_std(r['final'])} | {vs[0]} | {vs[1]} |")
    print()
    for kind in ("selected", "final"):
        print(f"per seed ({kind}): " + "; ".join(f"{n}: " + ", ".join(
            "undefined" if x is None or not math.isfinite(x) else f"{x:+.2f}" for x in r[kind])
            for n, r in results.items()))
    print(f"total wall time {time.perf_counter() - t_start:.0f} s ({root})", flush=True)


if __name__ == "__main__":
    app.run(main)
