"""Walk-forward wall time: one 50,000-timestep fold, and a whole walk-forward.

    .venv/bin/python -m benchmarks.walk_forward                          # fold + the whole EUR/USD run
    .venv/bin/python -m benchmarks.walk_forward --what=fold --repeats=3
    .venv/bin/python -m benchmarks.walk_forward --what=run --config=experiments/configs/walk_forward_sp500.py

fold: a walk-forward of `--repeats` + 1 folds of `--config` (default walk_forward_eurusd: small
network), every fold with the first fold's budget (50,000 env steps = 25 iterations of 32 envs x
64 steps) and phase (aggressive: 4 epochs), each with its validation backtests, selection and test
backtest. The first fold compiles (the training iteration, the state builder, the backtests); the
others reuse those compiles, as the folds of one walk-forward do. Reported: the first fold, the
median of the others (a fold's wall time, compiled), and their difference (the compile time).
run: the whole walk-forward of `--config` once, in a fresh workdir, with its summary's totals
(compiles, timesteps) and per-fold wall times. The machine is shared and noisy:
medians, machine line and load average are printed.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time

from absl import app, flags

from benchmarks import common

_WHAT = flags.DEFINE_enum("what", "both", ["fold", "run", "both"], "What to time.")
_CONFIG = flags.DEFINE_string("config", "experiments/configs/walk_forward_eurusd.py", "Walk-forward config.")
_REPEATS = flags.DEFINE_integer("repeats", 2, "Compiled fold runs after the first.", lower_bound=1)
_DEVICES = flags.DEFINE_integer("n_devices", 1, "Devices to train on (the CPU is one device by default).")


def _config():
    import importlib

    module = os.path.splitext(os.path.normpath(_CONFIG.value))[0].replace(os.sep, ".")
    cfg = importlib.import_module(module).get_config()
    cfg.train.n_devices = _DEVICES.value
    return cfg


def time_fold(cfg) -> dict:
    from jaxtrade.pipeline import walk_forward as wf

    w = cfg.walk_forward
    w.max_folds = _REPEATS.value + 1
    w.decay, w.min_timesteps = 1.0, w.timesteps          # every fold the first fold's 50,000 steps
    first = wf.phases_of(w)[0] if w.use_phases else None
    w.use_phases = False                                 # ... in the first fold's phase (aggressive)
    wf.apply_phase(cfg, first)
    with tempfile.TemporaryDirectory() as tmp:
        res = wf.run(cfg, os.path.join(tmp, "folds"), verbosity="quiet")
    folds = res.summary["folds"]
    for r in folds:
        print(f"fold {r['index']}: {r['wall_seconds']:.1f} s, {r['timesteps']:,} env steps in "
              f"{r['iterations']} iterations, early stop {r['early_stopped']}; "
              f"{os.getloadavg()[0]:.2f} load", flush=True)
    seconds = [r["wall_seconds"] for r in folds]
    warm = statistics.median(seconds[1:])
    return {"first_s": seconds[0], "compiled_median_s": warm, "compile_s": seconds[0] - warm,
            "timesteps": folds[0]["timesteps"], "iterations": folds[0]["iterations"], "all_s": seconds,
            "phase": first.name if first else None, "compiles": res.summary["totals"]["compiles"]}


def time_run(cfg) -> dict:
    from jaxtrade.pipeline import walk_forward as wf

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = wf.run(cfg, os.path.join(tmp, "run"), verbosity="quiet")
        wall = time.perf_counter() - t0
    t = res.summary["totals"]
    return {"wall_s": wall, "folds": t["folds"], "timesteps": t["timesteps"], "compiles": t["compiles"],
            "per_fold_s": [round(r["wall_seconds"], 1) for r in res.summary["folds"]],
            "early_stopped_folds": t["early_stopped_folds"],
            "oos_sharpe": res.summary["out_of_sample"].get("ppo_agent", {}).get("sharpe")}


def main(argv):
    del argv
    import logging

    logging.getLogger("jaxtrade").setLevel(logging.WARNING)
    print(common.machine_line(), flush=True)
    out = {"config": _CONFIG.value}
    if _WHAT.value in ("fold", "both"):
        out["fold"] = time_fold(_config())
        print(json.dumps({"fold": out["fold"]}), flush=True)
    if _WHAT.value in ("run", "both"):
        out["run"] = time_run(_config())
        print(json.dumps({"run": out["run"]}), flush=True)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    app.run(main)
