"""The VRAM-aware env cap (`train.max_device_memory_gb`) against the device's real memory.

    python -m benchmarks.vram_cap                                   # a GPU: high_vram, cap at half of it
    python -m benchmarks.vram_cap --config=smoke --cap_gb=0.01      # the harness on a CPU

1. The cap: `--fraction` of device 0's memory (`memory_stats()['bytes_limit']`), or `--cap_gb`.
2. The same two steps as `setup.build` with `train.max_device_memory_gb` set: the footprint fitted
   from two compiled sizes (`setup.measure_footprint`), then the largest n_envs that fits the cap
   (`budget.cap_n_envs`).
3. The config's agent at that n_envs on one device: `--iters` training iterations, then the device's
   peak bytes in use (`memory_stats()['peak_bytes_in_use']`, None on a CPU) beside the predicted
   footprint (fixed + per env x n_envs) and the cap: `fits` says whether the real peak stayed under it.

The last line is one JSON object (benchmarks/device_check.sh reads it).
"""

from __future__ import annotations

import importlib
import json
import time

from absl import app, flags

from benchmarks import common

_CONFIG = flags.DEFINE_string("config", "high_vram", "A config module of experiments/configs.")
_FRACTION = flags.DEFINE_float("fraction", 0.5, "The cap as a fraction of device 0's memory.")
_CAP_GB = flags.DEFINE_float("cap_gb", None, "The cap in GiB (instead of --fraction).")
_ITERS = flags.DEFINE_integer("iters", 2, "Training iterations at the capped size.")


def main(argv):
    del argv
    import jax

    from jaxtrade.agents import registry as agents
    from jaxtrade.train import budget as budget_lib
    from jaxtrade.train import setup as setup_lib

    cfg = importlib.import_module(f"experiments.configs.{_CONFIG.value}").get_config()
    cfg.train.n_devices = 1
    device = jax.local_devices()[0]
    stats = device.memory_stats() or {}
    limit = stats.get("bytes_limit")
    if _CAP_GB.value is not None:
        cap_gb = float(_CAP_GB.value)
    elif limit:
        cap_gb = _FRACTION.value * limit / 2**30
    else:
        raise app.UsageError(f"{device.platform} reports no memory limit: pass --cap_gb")
    cfg.train.max_device_memory_gb = None        # the two steps below are the cap, measured once
    s = setup_lib.build(cfg)
    section = agents.section(cfg)
    t0 = time.perf_counter()
    fixed, per_env = setup_lib.measure_footprint(cfg, s.env, s.train_params, s.devices)
    n_envs = budget_lib.cap_n_envs(int(section.n_envs), max_gb=cap_gb, fixed_bytes=fixed,
                                   bytes_per_env=per_env, multiple_of=int(section.get("n_minibatches", 1)))
    measure_s = time.perf_counter() - t0
    section["n_envs"] = n_envs
    agent = agents.make_agent(cfg, s.env)
    box = {"state": agent.init(jax.random.key(0), s.train_params, s.devices)}
    iterate = agent.make_iteration()
    timing = common.time_calls(lambda: _step(iterate, box, s.train_params), _ITERS.value)
    peak = (device.memory_stats() or {}).get("peak_bytes_in_use")
    predicted = fixed + per_env * n_envs
    result = {"kind": "vram_cap", "config": _CONFIG.value, "platform": device.platform,
              "device": device.device_kind, "bytes_limit": limit, "cap_bytes": cap_gb * 2**30,
              "n_envs_configured": int(importlib.import_module(f"experiments.configs.{_CONFIG.value}")
                                       .get_config()[agents.agent_name(cfg)].n_envs),
              "n_envs_capped": n_envs, "fixed_bytes": fixed, "bytes_per_env": per_env,
              "predicted_bytes": predicted, "peak_bytes_in_use": peak,
              "fits": None if peak is None else bool(peak <= cap_gb * 2**30),
              "predicted_over_peak": None if not peak else predicted / peak,
              "measure_s": measure_s, "iteration_s": timing.median,
              "steps_per_s": agent.env_steps_per_iteration(1) / timing.median}
    print(f"cap {cap_gb:.2f} GiB: n_envs {result['n_envs_configured']:,} -> {n_envs:,}; predicted "
          f"{predicted / 2**30:.2f} GiB, peak in use "
          f"{'n/a' if peak is None else f'{peak / 2**30:.2f} GiB'}; {result['steps_per_s']:,.0f} env steps/s")
    print("JSON " + json.dumps(result), flush=True)


def _step(iterate, box, env_params):
    """One call of the iteration; the state is donated, so the box keeps the new one."""
    box["state"], metrics = iterate(box["state"], env_params)
    return metrics


if __name__ == "__main__":
    app.run(main)
