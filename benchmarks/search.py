r"""Search wall time: N trials trained K at a time as vmapped populations against one at a time.

    .venv/bin/python -m benchmarks.search                    # 32 trials, batches of 8 vs 1, \
        search_sp500's network
    .venv/bin/python -m benchmarks.search --n_trials=16 --batch_size=16 --iterations=20

Both modes run the same study settings (TPE seed, space, budget per trial, no pruning, so every trial
trains its whole budget) from the same built setup, each with its own agent (one compile each: the
K-member population iteration, or the single-member one), in fresh temporary workdirs, side by side
in one process. Reported per mode: wall time (compiles and validation backtests included), trials per
minute, compiles, the best validation objective; then the ratio. The machine is shared and noisy:
the machine line and load average are printed with the figures.
"""

from __future__ import annotations

import tempfile
import time

from absl import app, flags

from benchmarks import common

_CONFIG = flags.DEFINE_string("config", "experiments/configs/search_sp500.py", "Search config.")
_TRIALS = flags.DEFINE_integer("n_trials", 32, "Trials per mode.", lower_bound=1)
_BATCH = flags.DEFINE_integer("batch_size", 8, "Trials per population in the batched mode.", lower_bound=2)
_ITERS = flags.DEFINE_integer("iterations", None, "Training iterations per trial (default: the config's).")
_ORDER = flags.DEFINE_enum("order", "batched_first", ["batched_first", "single_first"],
                           "Which mode runs first.")


def _config():
    import importlib
    import os

    module = os.path.splitext(os.path.normpath(_CONFIG.value))[0].replace(os.sep, ".")
    cfg = importlib.import_module(module).get_config()
    cfg.search.n_trials = _TRIALS.value
    cfg.search.pruner = "none"
    cfg.search.registry = None
    cfg.train.tensorboard = False
    if _ITERS.value:
        cfg.train.iterations = _ITERS.value
    return cfg


def main(argv):
    del argv
    import logging

    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)      # Orbax logs every save at INFO
    logging.getLogger("jaxtrade").setLevel(logging.WARNING)
    from jaxtrade.agents import ppo
    from jaxtrade.pipeline import search
    from jaxtrade.train import setup as setup_lib

    cfg = _config()
    cfg.train.final_report = False
    setup = setup_lib.build(cfg)
    print(common.machine_line(), f"| load {common.load():.2f}", flush=True)
    print(f"{cfg.search.n_trials} trials x {cfg.train.iterations} iterations of {cfg.ppo.n_envs} envs x "
          f"{cfg.ppo.n_steps} steps, hidden {cfg.model.hidden_dim}, validation every "
          f"{cfg.train.eval_every}", flush=True)
    modes = [("batched", _BATCH.value), ("one at a time", 1)]
    if _ORDER.value == "single_first":
        modes.reverse()
    rows = {}
    for name, k in modes:
        c = cfg.copy_and_resolve_references()
        c.search.batch_size = k
        agent = ppo.make(c, setup.env)
        with tempfile.TemporaryDirectory() as workdir:
            t0 = time.perf_counter()
            r = search.run(c, workdir, setup=setup, agent=agent, verbosity="quiet")
            seconds = time.perf_counter() - t0
        rows[name] = dict(k=k, seconds=seconds, compiles=r.compiles, batches=r.batches, best=r.best_value,
                          complete=r.counts.get("COMPLETE", 0))
        print(f"  {name:>13} (K={k}): {seconds:7.1f} s, {60 * r.counts.get('COMPLETE', 0) / seconds:6.1f} "
              f"trials/min, {r.batches} batches, {r.compiles} compile(s), best {c.search.objective} "
              f"{r.best_value:.4f}, load {common.load():.2f}", flush=True)
    ratio = rows["one at a time"]["seconds"] / rows["batched"]["seconds"]
    print(f"batched populations are {ratio:.2f}x faster than one trial at a time", flush=True)
    common.emit({"rows": rows, "ratio": ratio})


if __name__ == "__main__":
    app.run(main)
