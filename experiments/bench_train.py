"""End-to-end PPO training throughput: jaxtrade's pmapped iteration vs stable-baselines3 peers.

    python -m experiments.bench_train                                   # small+full x 64,1024,8192 + peers
    python -m experiments.bench_train --nets=small --n_envs=64,1024 --peers=false
    python -m experiments.bench_train --nets=full --n_envs=65536 --peers=false   # on a GPU

jaxtrade: one device, `make_train_iteration` on the `portfolio` env (regimes) over the bundled
sp500-20 training split; env steps per second of wall time for rollout + GAE + update
(update_epochs=4, critic_epochs=4, 4 minibatches), after compilation; the median of `--iters`
timed calls. Compile time is the first call minus the median call. Peak memory is the worker
process's max RSS (each configuration runs in its own subprocess).

FLOPs per env step are counted from the parameter tree (2 * fan_in * fan_out per Dense kernel per
step; LayerNorm, gates and elementwise work ignored): rollout 1 forward, PPO epochs 3 forwards each
(forward + backward), the critic phase's one forward without heads, and 3 value-head forwards per
critic epoch. The machine's matmul rate is measured on jitted float32 matmuls of the model's own
kernel shapes at the update's minibatch rows (T * n_envs / n_minibatches); the achieved share is the
model's FLOP rate over that.

Peers (`--peers`, needs the `peer` extra: torch CPU, stable-baselines3, sb3-contrib, gymnasium): the
same env through a thin gymnasium adapter (one jitted unbatched env per gymnasium env, 8 in a
DummyVecEnv), sb3 PPO (encoder MLP + core-sized MLP, no recurrence) and sb3-contrib RecurrentPPO
(encoder MLP + LSTM of the same size, shared by actor and critic), n_steps 128, 4 epochs, 4
minibatches. The machine is shared: figures are medians and ratios are taken within one run.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time

from absl import app, flags

_NETS = flags.DEFINE_list("nets", ["small", "full"], "small (GRU 128x1) and/or full (MLP 256x2 + GRU 256x2).")
_N_ENVS = flags.DEFINE_list("n_envs", ["64", "1024", "8192"], "Environments (one device).")
_N_STEPS = flags.DEFINE_integer("n_steps", 16, "Rollout steps per iteration.")
_ITERS = flags.DEFINE_integer("iters", 5, "Timed iterations per configuration (median).")
_EPISODE = flags.DEFINE_integer("episode_length", 256, "Episode length of the portfolio env.")
_PEERS = flags.DEFINE_boolean("peers", True, "Also time sb3 PPO and sb3-contrib RecurrentPPO (needs torch).")
_PEER_ENVS = flags.DEFINE_integer("peer_envs", 8, "Peer environments (DummyVecEnv).")
_PEER_STEPS = flags.DEFINE_integer("peer_steps", 2048, "Timed peer env steps (after a 1-rollout warm-up).")
_WORKER = flags.DEFINE_string("worker", "", "Internal: run one configuration and print JSON.")
_TIMEOUT = flags.DEFINE_integer("timeout", 1800, "Seconds per configuration subprocess.")

NETS = {"small": dict(hidden_dim=128, n_layers=1, encoder_layers=1),
        "full": dict(hidden_dim=256, n_layers=2, encoder_layers=2)}


def load_env(episode_length: int):
    from jaxtrade import envs
    from jaxtrade.data import load_dataset

    split = load_dataset("sp500-20").split(train=("1995-01-01", "2014-12-31"), lookback=30)
    return envs.make("portfolio", split.train.to_device(), episode_length=episode_length)


def bench_config(net: str, n_envs: int, n_steps: int):
    from jaxtrade.agents import ppo

    cfg = ppo.default_config()
    cfg.model.update(NETS[net])
    cfg.model.dropout = 0.0
    cfg.ppo.update(n_envs=n_envs, n_steps=n_steps, n_minibatches=4, update_epochs=4, critic_epochs=4)
    return cfg


def kernel_shapes(params) -> dict:
    """{top-level part: [(fan_in, fan_out), ...]} of every Dense kernel."""
    import jax

    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        names = [getattr(k, "key", "") for k in path]
        if names[-1] == "kernel" and leaf.ndim == 2:
            out.setdefault(names[0], []).append(tuple(int(d) for d in leaf.shape))
    return out


def flops_per_env_step(shapes: dict, update_epochs: int, critic_epochs: int) -> dict:
    fwd = {part: sum(2 * a * b for a, b in ks) for part, ks in shapes.items()}
    forward = sum(fwd.values())
    trunk = fwd.get("encoder", 0) + fwd.get("core", 0)
    train = forward + update_epochs * 3 * forward + trunk + critic_epochs * 3 * fwd.get("value", 0)
    return {"forward": forward, "train": train}


def matmul_rate(shapes: dict, rows: int, repeats: int = 5) -> float:
    """FLOP/s of jitted float32 matmuls [rows, K] @ [K, N] over the model's kernel shapes."""
    import jax
    import jax.numpy as jnp

    total_flops, total_time = 0.0, 0.0
    for k, n in sorted({s for ks in shapes.values() for s in ks}):
        x = jax.random.normal(jax.random.key(0), (rows, k), jnp.float32)
        w = jax.random.normal(jax.random.key(1), (k, n), jnp.float32)
        f = jax.jit(jnp.dot)
        f(x, w).block_until_ready()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            f(x, w).block_until_ready()
            times.append(time.perf_counter() - t0)
        total_flops += 2.0 * rows * k * n
        total_time += statistics.median(times)
    return total_flops / total_time


def run_jax(net: str, n_envs: int) -> dict:
    import jax

    from jaxtrade.agents import ppo

    env, env_params = load_env(_EPISODE.value)
    cfg = bench_config(net, n_envs, _N_STEPS.value)
    devices = jax.devices()[:1]
    fn = ppo.make_train_iteration(cfg, env, devices=devices)
    carry = ppo.init_carry(cfg, env, env_params, devices=devices)
    t0 = time.perf_counter()
    carry, metrics = fn(carry, env_params)
    jax.block_until_ready(metrics)
    first = time.perf_counter() - t0
    times = []
    for _ in range(_ITERS.value):
        t0 = time.perf_counter()
        carry, metrics = fn(carry, env_params)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - t0)
    step_time = statistics.median(times)
    steps = n_envs * _N_STEPS.value
    shapes = kernel_shapes(ppo.unreplicate(carry.train_state.params))
    flops = flops_per_env_step(shapes, cfg.ppo.update_epochs, cfg.ppo.critic_epochs)
    rows = min(_N_STEPS.value * n_envs // cfg.ppo.n_minibatches, 65536)
    peak = matmul_rate(shapes, rows)
    achieved = flops["train"] * steps / step_time
    return {"kind": "jaxtrade", "net": net, "n_envs": n_envs, "steps_per_s": steps / step_time,
            "iteration_s": step_time, "compile_s": first - step_time,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            "flops_forward": flops["forward"], "flops_train_per_env_step": flops["train"],
            "achieved_gflops": achieved / 1e9, "matmul_gflops": peak / 1e9, "matmul_share": achieved / peak,
            "nonfinite": bool(metrics["any_nonfinite"][0]), "backend": jax.default_backend()}


# ------------------------------------------------------------------------------------------ peers


def run_peer(algo: str, net: str) -> dict:
    import gymnasium as gym
    import jax
    import numpy as np
    import torch
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
    from stable_baselines3.common.vec_env import DummyVecEnv

    env, env_params = load_env(_EPISODE.value)
    core = env.unwrapped
    reset = jax.jit(core.reset)
    step = jax.jit(core.step)
    size = NETS[net]
    hidden = size["hidden_dim"]

    class JaxTradeGym(gym.Env):
        """Thin gymnasium adapter: one unbatched jaxtrade env, observation flattened to a vector."""

        def __init__(self, seed: int):
            obs, _ = reset(jax.random.key(0), env_params)
            dim = obs["window"].size + obs["state"].size
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, (dim,), np.float32)
            self.action_space = gym.spaces.Discrete(env.action_dim)
            self._key = jax.random.key(seed)
            self._state = None

        def _flat(self, obs):
            return np.concatenate([np.asarray(obs["window"]).ravel(), np.asarray(obs["state"])])

        def reset(self, *, seed=None, options=None):
            self._key, key = jax.random.split(self._key)
            obs, self._state = reset(key, env_params)
            return self._flat(obs), {}

        def step(self, action):
            self._key, key = jax.random.split(self._key)
            obs, self._state, reward, _, info = step(key, self._state, int(action), env_params)
            return (self._flat(obs), float(reward), bool(info["terminated"]), bool(info["truncated"]), {})

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

    venv = DummyVecEnv([lambda i=i: JaxTradeGym(i) for i in range(_PEER_ENVS.value)])
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
    return {"kind": algo, "net": net, "n_envs": _PEER_ENVS.value, "steps_per_s": steps / elapsed,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            "torch_threads": torch.get_num_threads()}


# ------------------------------------------------------------------------------------------- main


def _spawn(spec: str) -> dict | None:
    cmd = [sys.executable, "-m", "experiments.bench_train", f"--worker={spec}",
           f"--n_steps={_N_STEPS.value}", f"--iters={_ITERS.value}", f"--episode_length={_EPISODE.value}",
           f"--peer_envs={_PEER_ENVS.value}", f"--peer_steps={_PEER_STEPS.value}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_TIMEOUT.value, env=os.environ)
    except subprocess.TimeoutExpired:
        print(f"  {spec}: timed out after {_TIMEOUT.value}s", flush=True)
        return None
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        print(f"  {spec}: failed (rc={proc.returncode})\n{proc.stderr[-2000:]}", flush=True)
        return None
    return json.loads(lines[-1])


def main(argv):
    del argv
    if _WORKER.value:
        kind, net, n = _WORKER.value.split(":")
        result = run_jax(net, int(n)) if kind == "jax" else run_peer(kind, net)
        print(json.dumps(result), flush=True)
        return

    results = []
    print(f"jaxtrade PPO, portfolio env, n_steps={_N_STEPS.value}, 4 epochs + 4 critic epochs, "
          f"4 minibatches; median of {_ITERS.value} iterations", flush=True)
    print(f"{'net':6} {'envs':>6} {'steps/s':>10} {'iter s':>8} {'compile s':>9} {'peak MB':>8} "
          f"{'MFLOP/step':>10} {'GFLOP/s':>8} {'matmul':>8} {'share':>6}", flush=True)
    for net in _NETS.value:
        for n in _N_ENVS.value:
            r = _spawn(f"jax:{net}:{n}")
            if r is None:
                continue
            results.append(r)
            print(f"{net:6} {n:>6} {r['steps_per_s']:10.0f} {r['iteration_s']:8.3f} {r['compile_s']:9.1f} "
                  f"{r['peak_rss_mb']:8.0f} {r['flops_train_per_env_step'] / 1e6:10.1f} "
                  f"{r['achieved_gflops']:8.1f} {r['matmul_gflops']:8.1f} {r['matmul_share']:6.0%}",
                  flush=True)

    peers = {}
    if _PEERS.value:
        try:
            import importlib.util

            missing = [m for m in ("torch", "stable_baselines3", "sb3_contrib", "gymnasium")
                       if importlib.util.find_spec(m) is None]
        except ImportError:
            missing = ["torch"]
        if missing:
            print(f"peers skipped: {', '.join(missing)} not installed (pip install -e '.[peer]')")
        else:
            print(f"\npeers: {_PEER_ENVS.value} envs (DummyVecEnv over the gymnasium adapter), n_steps 128, "
                  f"4 epochs, 4 minibatches", flush=True)
            for net in _NETS.value:
                for algo in ("RecurrentPPO", "PPO"):
                    r = _spawn(f"{algo}:{net}:{_PEER_ENVS.value}")
                    if r is None:
                        continue
                    peers[(algo, net)] = r
                    results.append(r)
                    print(f"{algo:12} {net:6} {r['steps_per_s']:10.1f} steps/s  "
                          f"peak {r['peak_rss_mb']:.0f} MB", flush=True)
            print("\nratios (jaxtrade steps/s over peer steps/s, same network size):")
            for r in results:
                if r["kind"] != "jaxtrade":
                    continue
                parts = [f"{algo} x{r['steps_per_s'] / peers[(algo, r['net'])]['steps_per_s']:.1f}"
                         for algo in ("RecurrentPPO", "PPO") if (algo, r["net"]) in peers]
                print(f"  {r['net']:6} {r['n_envs']:>6} envs: " + ", ".join(parts))
    print("\nJSON " + json.dumps(results))


if __name__ == "__main__":
    app.run(main)
