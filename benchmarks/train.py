"""End-to-end PPO training throughput: jaxtrade's pmapped iteration vs stable-baselines3 peers.

    .venv/bin/python -m benchmarks.train                 # small+full x 64,1024,8192 x W=1,30, clstm, peers
    .venv/bin/python -m benchmarks.train --nets=small --n_envs=64,1024 --windows=1 --peers=false
    .venv/bin/python -m benchmarks.train --nets=full --n_envs=65536 --windows=1 --peers=false  # on a GPU
    .venv/bin/python -m benchmarks.train --nets=full --n_envs=16384 --windows=1 --clstm=false \
        --peers=false --compute_dtype=bfloat16                # bfloat16 compute (float32 parameters)

jaxtrade: `ppo.make(config, env).make_iteration()` on the `portfolio` env (regimes) over the bundled
sp500-20 training
split, with an observation window of W rows (`--windows`). MLP-encoder networks need only the last
row (W=1: their GRU core carries the memory); the cascaded-LSTM encoder reads W=30 rows. Env steps
per second of wall time for rollout + GAE + update (update_epochs=4, critic_epochs=4, 4 minibatches),
after compilation: the median of `--iters` timed calls, each of `--iterations_per_call` iterations
lax.scan-ed inside the pmapped function. On the CPU the worker splits the host into one XLA device
per core (`--cpu_devices`, default all cores; `n_envs` is the total, split evenly), so each core runs
its own share of the environments and the pmap's gradient pmean joins them, as on several GPUs.
Compile time is the first call minus the median call. Peak memory is the worker's max RSS (each
configuration runs in its own subprocess).

FLOPs per env step are XLA's count (`cost_analysis()['flops']` of the lowered computation) for one
device's share of one real training iteration (the same `agent.make_iteration()`, env step included),
divided by that device's env steps. XLA counts a while loop's body once whatever its trip count (a
10-step `lax.scan` of a matmul reports one matmul), so the iteration is lowered a second time, not
compiled, with every `lax.scan` unrolled (`unrolled_scans`): the rollout's steps, the epochs and
minibatches, the recurrent core's time steps. `flops_forward` is the same count for one policy
forward of one env step. The machine's matmul rate is the better of jitted float32 matmuls of the
model's parameter shapes (every parameter of rank >= 2 as a [shape[0], rest] matrix) at the global
minibatch rows on one device (all cores) and the same matmuls pmapped over the worker's devices at
their per-device rows; the achieved share is the iteration's FLOP rate over that (an upper bound
on the model's share: XLA also counts the env's and the optimizer's elementwise work).

Peers (`--peers`, needs the `peer` extra: torch CPU, stable-baselines3, sb3-contrib, gymnasium): the
same env and window through `jaxtrade.envs.gym.GymEnv` (one jitted unbatched core env per gymnasium
env, observations flattened by gymnasium's `FlattenObservation`, 8 in a DummyVecEnv), sb3 PPO
(encoder MLP + core-sized MLP, no recurrence) and sb3-contrib RecurrentPPO (encoder MLP + LSTM of
the same size, shared by actor and critic), n_steps 128, 4 epochs, 4 minibatches. The machine is
shared: figures are medians and ratios are taken within one run; the load average is printed with
every line.
"""

from __future__ import annotations

import contextlib
import json
import os
import time

from absl import app, flags

from benchmarks import common

_NETS = flags.DEFINE_list("nets", ["small", "full"],
                          "small (MLP 128 + GRU 128x1), full (MLP 256x2 + GRU 256x2), "
                          "clstm (CLSTM 128 + GRU 128).")
_N_ENVS = flags.DEFINE_list("n_envs", ["64", "1024", "8192"], "Environments in all (split over the devices).")
_WINDOWS = flags.DEFINE_list("windows", ["1", "30"], "Observation windows for the MLP-encoder nets.")
_CLSTM = flags.DEFINE_boolean("clstm", True, "Also time the CLSTM-encoder net at W=30 (`--clstm_envs`).")
_CLSTM_ENVS = flags.DEFINE_list("clstm_envs", ["1024"], "Environments for the CLSTM line.")
_N_STEPS = flags.DEFINE_integer("n_steps", 16, "Rollout steps per iteration.")
_ITERS = flags.DEFINE_integer("iters", 5, "Timed calls per configuration (median).")
_PER_CALL = flags.DEFINE_integer("iterations_per_call", 2, "Iterations lax.scan-ed inside one call.")
_CPU_DEVICES = flags.DEFINE_integer("cpu_devices", 0, "XLA host devices on the CPU (0: one per core).")
_EPISODE = flags.DEFINE_integer("episode_length", 256, "Episode length of the portfolio env.")
_PEERS = flags.DEFINE_boolean("peers", True, "Also time sb3 PPO and sb3-contrib RecurrentPPO (needs torch).")
_PEER_ENVS = flags.DEFINE_integer("peer_envs", 8, "Peer environments (DummyVecEnv).")
_PEER_STEPS = flags.DEFINE_integer("peer_steps", 2048, "Timed peer env steps (after a 1-rollout warm-up).")
_WORKER = flags.DEFINE_string("worker", "", "Internal: run one configuration and print JSON.")
_TIMEOUT = flags.DEFINE_integer("timeout", 1800, "Seconds per configuration subprocess.")
_POPULATION = flags.DEFINE_integer("population", 0, "K > 0: time only a K-member population (seeds and "
                                   "learning rates, one vmap) against K sequential runs of the same "
                                   "config, side by side in one process (`--pop_envs`, `--nets`' first).")
_POP_ENVS = flags.DEFINE_integer("pop_envs", 64, "Environments per population member (in all devices).")
_DTYPE = flags.DEFINE_enum("compute_dtype", "float32", ["float32", "bfloat16"],
                           "model.compute_dtype of the jaxtrade networks (parameters stay float32).")

NETS = {"small": dict(hidden_dim=128, n_layers=1, encoder_layers=1),
        "full": dict(hidden_dim=256, n_layers=2, encoder_layers=2),
        "clstm": dict(encoder="clstm", hidden_dim=128, n_layers=1, encoder_layers=1)}
CLSTM_WINDOW = 30


def load_env(episode_length: int, window: int):
    return common.make_env("portfolio", common.load_env_data("sp500-20", lookback=30),
                           episode_length=episode_length, window=window)


def bench_config(net: str, n_envs: int, n_steps: int, iterations_per_call: int = 1):
    """n_envs: per device."""
    from jaxtrade.agents import ppo

    cfg = ppo.default_config()
    cfg.model.update(NETS[net])
    cfg.model.dropout = 0.0
    cfg.model.compute_dtype = _DTYPE.value
    cfg.ppo.update(n_envs=n_envs, n_steps=n_steps, n_minibatches=4, update_epochs=4, critic_epochs=4,
                   iterations_per_call=iterations_per_call)
    return cfg


def cost_flops(lowered) -> float:
    """The 'flops' entry of `lowered.cost_analysis()`: a dict, or a list of one dict per program (older
    jax), or None where the backend has no cost model (then nan)."""
    ca = lowered.cost_analysis()
    if isinstance(ca, (list, tuple)):
        ca = ca[0] if ca else None
    return float(ca.get("flops", float("nan"))) if ca else float("nan")


@contextlib.contextmanager
def unrolled_scans():
    """Inside: every `jax.lax.scan` traced is fully unrolled, so XLA's cost analysis, which counts a
    loop body once, counts every trip. For lowering a computation to count it, never to run it."""
    import jax

    scan = jax.lax.scan

    def unrolled(*args, **kwargs):
        kwargs["unroll"] = True
        return scan(*args, **kwargs)

    jax.lax.scan = unrolled
    try:
        yield
    finally:
        jax.lax.scan = scan


def iteration_flops(cfg, env, env_params, carry, devices) -> dict:
    """XLA FLOPs of one device's share of one training iteration, and of one policy forward (one env).

    A fresh iteration (so no trace is reused from the timed one) with one iteration per call, lowered
    with every scan unrolled; `carry` only gives the shapes.
    """
    import jax
    import jax.numpy as jnp

    from jaxtrade.agents import ppo
    from jaxtrade.agents.devices import first_device

    one = cfg.copy_and_resolve_references()
    one.ppo.iterations_per_call = 1
    agent = ppo.make(one, env)
    agent.init(0, env_params, devices)            # places nothing we keep: sets the agent's devices
    model = agent.model
    params = first_device(carry.train_state.params)
    obs = jax.tree.map(lambda x: x[0, :1][None], carry.obs)                  # [T=1, B=1, ...]
    forward = lambda p, h, o, d: model.apply({"params": p}, h, o, d)
    with unrolled_scans():
        train = cost_flops(agent.make_iteration(devices).lower(carry, env_params))
        fwd = cost_flops(jax.jit(forward).lower(params, model.initialize_carry(1), obs,
                                                jnp.zeros((1, 1), bool)))
    return {"train_per_device_iteration": train, "forward": fwd}


def matmul_shapes(params) -> list[tuple[int, int]]:
    """[(K, N)] of every parameter of rank >= 2 as a [shape[0], prod(rest)] matrix, sorted, distinct."""
    import math

    import jax

    return sorted({(int(x.shape[0]), int(math.prod(x.shape[1:]))) for x in jax.tree.leaves(params)
                   if x.ndim >= 2})


def matmul_rate(kernels: list[tuple[int, int]], rows: int, devices, repeats: int = 15) -> float:
    """Best FLOP/s of jitted float32 matmuls [rows, K] @ [K, N] over `kernels`: on one device at `rows`
    (or 4096 rows, if fewer), or pmapped over `devices` at 1 / len(devices) of that each."""
    import jax
    import jax.numpy as jnp

    rates = []
    # Also at cache-sized row blocks: XLA tiles a large matmul no better than that.
    layouts = {(n, max(r // n, 1)) for n in {1, len(devices)} for r in {rows, min(rows, 4096)}}
    for n_dev, per in sorted(layouts):
        total_flops, total_time = 0.0, 0.0
        for k, n in kernels:
            x = jax.random.normal(jax.random.key(0), (n_dev, per, k), jnp.float32)
            w = jax.random.normal(jax.random.key(1), (n_dev, k, n), jnp.float32)
            if n_dev == 1:
                fn, args = jax.jit(jnp.dot), (x[0], w[0])
            else:
                fn, args = jax.pmap(jnp.dot, devices=devices[:n_dev]), (x, w)
            total_time += common.time_calls(lambda fn=fn, args=args: fn(*args), repeats).median
            total_flops += 2.0 * n_dev * per * k * n
        rates.append(total_flops / total_time)
    return max(rates)


def bench_agent(net: str, n_envs: int, window: int):
    """(env params, devices, config, PPO agent) of one configuration: n_envs in all, split over every
    local device when they divide evenly into 4 minibatches per device, else on one device."""
    import jax

    from jaxtrade.agents import ppo

    env, env_params = load_env(_EPISODE.value, window)
    devices = jax.local_devices()
    if n_envs % (len(devices) * 4):
        devices = devices[:1]
    cfg = bench_config(net, n_envs // len(devices), _N_STEPS.value, _PER_CALL.value)
    return env_params, devices, cfg, ppo.make(cfg, env)


def run_jax(net: str, n_envs: int, window: int) -> dict:
    import jax

    env_params, devices, cfg, agent = bench_agent(net, n_envs, window)
    env, per_call = agent.env, _PER_CALL.value
    state = {"carry": agent.init(cfg.seed, env_params, devices)}
    fn = agent.make_iteration()

    def call():   # the carry is donated: thread it through
        state["carry"], state["metrics"] = fn(state["carry"], env_params)
        return state["metrics"]

    timing = common.time_calls(call, _ITERS.value)
    call_time = timing.median
    steps = n_envs * _N_STEPS.value * per_call
    per_device_steps = steps // (len(devices) * per_call)                     # in one iteration
    from jaxtrade.agents.devices import first_device

    carry, metrics = state["carry"], state["metrics"]
    flops = iteration_flops(cfg, env, env_params, carry, devices)
    train_per_step = flops["train_per_device_iteration"] / per_device_steps
    rows = min(_N_STEPS.value * n_envs // cfg.ppo.n_minibatches, 65536)
    peak = matmul_rate(matmul_shapes(first_device(carry.train_state.params)), rows, devices)
    achieved = train_per_step * steps / call_time
    return {"kind": "jaxtrade", "net": net, "window": window, "n_envs": n_envs, "devices": len(devices),
            "steps_per_s": steps / call_time, "iteration_s": call_time / per_call,
            "compile_s": timing.first_s - call_time, "peak_rss_mb": common.peak_rss_mb(),
            "flops_forward": flops["forward"], "flops_train_per_env_step": train_per_step,
            "achieved_gflops": achieved / 1e9, "matmul_gflops": peak / 1e9, "matmul_share": achieved / peak,
            "nonfinite": bool(jax.device_get(metrics["any_nonfinite"]).any()),
            "backend": jax.default_backend(), "load": common.load()}


def run_population(net: str, n_envs: int, window: int, k: int) -> dict:
    """K members (seeds 0..K-1, actor learning rates log-spaced over 1e-4..1e-3, critic 3x) as one
    vmapped population, against the same K runs one after another (one compile serves all K: the
    learning rates are traced). Alternating rounds, so both see the same machine load."""
    import jax
    import numpy as np

    from jaxtrade.agents import ppo

    env_params, devices, _, agent = bench_agent(net, n_envs, window)
    lrs = np.geomspace(1e-4, 1e-3, k)
    members = [agent.hparams.replace(actor_lr=float(lr), critic_lr=float(3 * lr)) for lr in lrs]
    keys = jax.random.split(jax.random.key(0), k)
    seq = [{"carry": agent.init(keys[i], env_params, devices, hparams=members[i])} for i in range(k)]
    single = agent.make_iteration()
    pop = {"carry": agent.init_population(keys, env_params, ppo.TracedHParams.stack(members), devices)}
    population = agent.make_population_iteration()

    def call(fn, box):
        box["carry"], metrics = fn(box["carry"], env_params)
        return metrics

    t0 = time.perf_counter()
    jax.block_until_ready(call(single, seq[0]))
    compile_single = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(call(population, pop))
    compile_pop = time.perf_counter() - t0
    seq_times, pop_times = [], []
    for _ in range(max(_ITERS.value, 1)):
        seq_times.append(sum(common.time_calls(lambda b=b: call(single, b), 1, warmup=False).median
                             for b in seq))
        pop_times.append(common.time_calls(lambda: call(population, pop), 1, warmup=False).median)
    steps = k * n_envs * _N_STEPS.value * _PER_CALL.value             # env steps of one call of all K
    seq_s, pop_s = float(np.median(seq_times)), float(np.median(pop_times))
    return {"kind": "population", "net": net, "window": window, "n_envs": n_envs, "k": k,
            "devices": len(devices), "population_steps_per_s": steps / pop_s,
            "sequential_steps_per_s": steps / seq_s, "speedup": seq_s / pop_s,
            "compile_single_s": compile_single, "compile_population_s": compile_pop,
            "compiles": agent.compiles, "peak_rss_mb": common.peak_rss_mb(),
            "backend": jax.default_backend(), "load": common.load()}


# ------------------------------------------------------------------------------------------ peers


def run_peer(algo: str, net: str, window: int) -> dict:
    import torch
    from gymnasium.wrappers import FlattenObservation
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
    from stable_baselines3.common.vec_env import DummyVecEnv

    from jaxtrade.envs.gym import GymEnv

    torch.set_num_threads(os.cpu_count() or 1)
    env, env_params = load_env(_EPISODE.value, window)
    size = NETS[net]
    hidden = size["hidden_dim"]

    class Encoder(BaseFeaturesExtractor):
        """Linear + ReLU + LayerNorm layers, as jaxtrade's MLP encoder; `extra` more for PPO's core."""

        def __init__(self, space, hidden: int, layers: int):
            super().__init__(space, hidden)
            mods, d = [], space.shape[0]
            for _ in range(layers):
                mods += [torch.nn.Linear(d, hidden), torch.nn.ReLU(), torch.nn.LayerNorm(hidden)]
                d = hidden
            self.net = torch.nn.Sequential(*mods)

        def forward(self, x):
            return self.net(x)

    venv = DummyVecEnv([lambda i=i: FlattenObservation(GymEnv(env, env_params, seed=i))
                        for i in range(_PEER_ENVS.value)])
    n_steps = 128
    batch = n_steps * _PEER_ENVS.value // 4
    heads = dict(pi=[hidden], vf=[hidden])
    if algo == "RecurrentPPO":
        from sb3_contrib import RecurrentPPO

        kwargs = dict(features_extractor_class=Encoder,
                      features_extractor_kwargs=dict(hidden=hidden, layers=size["encoder_layers"]),
                      lstm_hidden_size=hidden, n_lstm_layers=size["n_layers"], shared_lstm=True,
                      enable_critic_lstm=False, net_arch=heads)
        model = RecurrentPPO("MlpLstmPolicy", venv, n_steps=n_steps, batch_size=batch, n_epochs=4,
                             policy_kwargs=kwargs, device="cpu", seed=0)
    else:
        from stable_baselines3 import PPO

        layers = size["encoder_layers"] + size["n_layers"]          # the core as plain MLP layers
        kwargs = dict(features_extractor_class=Encoder,
                      features_extractor_kwargs=dict(hidden=hidden, layers=layers), net_arch=heads)
        model = PPO("MlpPolicy", venv, n_steps=n_steps, batch_size=batch, n_epochs=4, policy_kwargs=kwargs,
                    device="cpu", seed=0)
    warm = n_steps * _PEER_ENVS.value
    model.learn(total_timesteps=warm)
    t0 = time.perf_counter()
    model.learn(total_timesteps=max(_PEER_STEPS.value, warm), reset_num_timesteps=False)
    elapsed = time.perf_counter() - t0
    steps = max(_PEER_STEPS.value, warm)
    steps = -(-steps // warm) * warm                                  # sb3 finishes whole rollouts
    return {"kind": algo, "net": net, "window": window, "n_envs": _PEER_ENVS.value,
            "steps_per_s": steps / elapsed,
            "peak_rss_mb": common.peak_rss_mb(), "torch_threads": torch.get_num_threads(),
            "load": common.load()}


# ------------------------------------------------------------------------------------------- main


def _spawn(spec: str) -> dict | None:
    args = [f"--worker={spec}", f"--n_steps={_N_STEPS.value}", f"--iters={_ITERS.value}",
            f"--pop_envs={_POP_ENVS.value}",
            f"--episode_length={_EPISODE.value}", f"--iterations_per_call={_PER_CALL.value}",
            f"--peer_envs={_PEER_ENVS.value}", f"--peer_steps={_PEER_STEPS.value}",
            f"--compute_dtype={_DTYPE.value}"]
    # jaxtrade workers: one XLA host device per core (ignored by GPU backends).
    jax_worker = spec.startswith("jax:")
    env = common.cpu_devices_env(common.n_cpu_devices(_CPU_DEVICES.value)) if jax_worker else None
    return common.spawn_worker("benchmarks.train", args, env=env, timeout=_TIMEOUT.value, label=spec)


def _jax_line(r: dict) -> str:
    return (f"{r['net']:6} {r['window']:>3} {r['n_envs']:>6} {r['devices']:>3} {r['steps_per_s']:10.0f} "
            f"{r['iteration_s']:8.3f} {r['compile_s']:9.1f} {r['peak_rss_mb']:8.0f} "
            f"{r['flops_train_per_env_step'] / 1e6:10.2f} {r['achieved_gflops']:8.1f} "
            f"{r['matmul_gflops']:8.1f} {r['matmul_share']:6.0%} {r['load']:5.1f}")


def main(argv):
    del argv
    if _WORKER.value:
        kind, net, n, window, *rest = _WORKER.value.split(":")
        if kind == "pop":
            result = run_population(net, int(n), int(window), int(rest[0]))
        elif kind == "jax":
            result = run_jax(net, int(n), int(window))
        else:
            result = run_peer(kind, net, int(window))
        common.emit(result)
        return
    if _POPULATION.value > 0:
        net, window = _NETS.value[0], int(_WINDOWS.value[0])
        print(f"population of {_POPULATION.value} (seeds x learning rates, one vmap) vs "
              f"{_POPULATION.value} sequential runs, {net} net, W={window}, {_POP_ENVS.value} envs per "
              f"member, n_steps={_N_STEPS.value}, {_PER_CALL.value} iterations per call, median of "
              f"{_ITERS.value} alternating rounds", flush=True)
        r = _spawn(f"pop:{net}:{_POP_ENVS.value}:{window}:{_POPULATION.value}")
        if r is not None:
            print(f"population {r['population_steps_per_s']:,.0f} env steps/s, sequential "
                  f"{r['sequential_steps_per_s']:,.0f} env steps/s: x{r['speedup']:.2f}; compile "
                  f"{r['compile_population_s']:.1f} s (population) / {r['compile_single_s']:.1f} s "
                  "(one run), "
                  f"{r['compiles']} compiles in all; {r['devices']} device(s), load {r['load']:.1f}")
            print("\nJSON " + json.dumps([r]))
        return

    configs = [(net, int(w), int(n)) for net in _NETS.value if net != "clstm" for w in _WINDOWS.value
               for n in _N_ENVS.value]
    if _CLSTM.value or "clstm" in _NETS.value:
        configs += [("clstm", CLSTM_WINDOW, int(n)) for n in _CLSTM_ENVS.value]
    results = []
    print(f"jaxtrade PPO, portfolio env, n_steps={_N_STEPS.value}, 4 epochs + 4 critic epochs, "
          f"4 minibatches, {_PER_CALL.value} iterations per call, "
          f"up to {common.n_cpu_devices(_CPU_DEVICES.value)} CPU devices; "
          f"median of {_ITERS.value} calls", flush=True)
    print(f"{'net':6} {'W':>3} {'envs':>6} {'dev':>3} {'steps/s':>10} {'iter s':>8} {'compile s':>9} "
          f"{'peak MB':>8} {'MFLOP/step':>10} {'GFLOP/s':>8} {'matmul':>8} {'share':>6} {'load':>5}",
          flush=True)
    for net, window, n in configs:
        r = _spawn(f"jax:{net}:{n}:{window}")
        if r is not None:
            results.append(r)
            print(_jax_line(r), flush=True)

    peers = {}
    if _PEERS.value:
        import importlib.util

        missing = [m for m in ("torch", "stable_baselines3", "sb3_contrib", "gymnasium")
                   if importlib.util.find_spec(m) is None]
        if missing:
            print(f"peers skipped: {', '.join(missing)} not installed (pip install -e '.[peer]')")
        else:
            print(f"\npeers: {_PEER_ENVS.value} envs (DummyVecEnv over the gymnasium adapter), n_steps 128, "
                  f"4 epochs, 4 minibatches", flush=True)
            for net, window in sorted({(net, window) for net, window, _ in configs}):
                for algo in ("RecurrentPPO", "PPO"):
                    r = _spawn(f"{algo}:{net}:{_PEER_ENVS.value}:{window}")
                    if r is None:
                        continue
                    peers[(algo, net, window)] = r
                    results.append(r)
                    print(f"{algo:12} {net:6} W={window:<3} {r['steps_per_s']:10.1f} steps/s  "
                          f"peak {r['peak_rss_mb']:.0f} MB  load {r['load']:.1f}", flush=True)
            print("\nratios (jaxtrade steps/s over peer steps/s, same network size and window):")
            for r in results:
                if r["kind"] != "jaxtrade":
                    continue
                key = (r["net"], r["window"])
                parts = [f"{algo} x{r['steps_per_s'] / peers[(algo, *key)]['steps_per_s']:.1f}"
                         for algo in ("RecurrentPPO", "PPO") if (algo, *key) in peers]
                print(f"  {r['net']:6} W={r['window']:<3} {r['n_envs']:>6} envs: " + ", ".join(parts))
    print("\nJSON " + json.dumps(results))


if __name__ == "__main__":
    app.run(main)
