"""Environment throughput: jitted, vmapped JAX `portfolio` env vs a plain numpy step loop.

    python -m experiments.bench_env                      # CPU: 1, 64, 1024, 16384 envs
    python -m experiments.bench_env --n_envs=65536       # on a GPU
    python -m experiments.bench_env --repeats=5 --n_steps=1000 --numpy_steps=2000

JAX: random regime actions, `lax.scan` of `n_steps` steps of `vmap(env.step)` (auto-reset
included) inside one `jit`. The observation, reward and info are reduced into the scan carry so
XLA cannot drop any of them as dead code. Timings exclude compilation (one warm-up run) and are the
median of `repeats` runs.

numpy: the same portfolio logic (regime targets from row t-1 factor scores, turbulence gate, trade
at close[t] with the same cost models and the cash floor, mark at close[t+1], window observation)
written as users write a gym-style env today: one environment, one Python call per step.
Both run in the same process, interleaved, so the ratio is measured side by side.
"""

from __future__ import annotations

import math
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from jaxtrade import envs

_N_ENVS = flags.DEFINE_list("n_envs", ["1", "64", "1024", "16384"], "Batch sizes to time.")
_N_STEPS = flags.DEFINE_integer("n_steps", 1000, "Steps per scan.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed runs per configuration (median reported).")
_NUMPY_STEPS = flags.DEFINE_integer("numpy_steps", 2000, "Steps per numpy timing run.")
_WINDOW = flags.DEFINE_integer("window", 30, "Observation window rows.")
_EPISODE = flags.DEFINE_integer("episode_length", 256, "Episode length.")
_DATASET = flags.DEFINE_string("dataset", "sp500-20", "Bundled dataset (jaxtrade.data.load_dataset).")


def load_env_data():
    """The training split (1995-2014) of the bundled dataset, as EnvData."""
    from jaxtrade.data import load_dataset

    splits = load_dataset(_DATASET.value).split(train=("1995-01-01", "2014-12-31"), lookback=_WINDOW.value)
    return splits.train.to_device()


# --------------------------------------------------------------------------------------------- JAX


def make_scan(env, n_envs: int, n_steps: int):
    """jit(params, key) -> scalar checksum of `n_steps` batched steps of random actions."""
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    reset = jax.vmap(env.reset, in_axes=(0, None))

    def run(params, key):
        reset_key, key = jax.random.split(key)
        _, state = reset(jax.random.split(reset_key, n_envs), params)

        def body(carry, _):
            state, key, acc = carry
            key, act_key, step_key = jax.random.split(key, 3)
            action = jax.random.randint(act_key, (n_envs,), 0, env.action_dim)
            obs, state, reward, done, info = step(jax.random.split(step_key, n_envs), state, action, params)
            # Reduce everything a learner would read, so nothing is dead code.
            acc = (acc + jnp.sum(obs["window"]) + jnp.sum(obs["state"]) + jnp.sum(reward)
                   + jnp.sum(done) + jnp.sum(info["costs"]))
            return (state, key, acc), None

        (_, _, acc), _ = jax.lax.scan(body, (state, key, jnp.float32(0)), None, length=n_steps)
        return acc

    return jax.jit(run)


# ------------------------------------------------------------------------------------------- numpy


class NumpyPortfolio:
    """A plain numpy, one-environment version of the `portfolio` env (regime actions)."""

    def __init__(self, data, params, seed=0):
        g = lambda x: np.asarray(x, np.float64)
        self.close, self.features, self.market = g(data.close), g(data.features), g(data.market)
        self.turb, self.mom, self.vol = g(data.turbulence), g(data.momentum), g(data.volatility)
        self.sharpe, self.size = g(data.sharpe), g(data.size)
        self.thr = float(params.turbulence_threshold)
        c = params.costs
        self.spread, self.slip = float(c.spread_bps) * 1e-4, float(c.slippage_bps) * 1e-4
        self.comm, self.impact = float(c.commission_bps) * 1e-4, float(c.impact_coef)
        self.sec, self.taf = float(c.sec_fee_rate), float(c.finra_taf_per_share)
        self.taf_cap = float(c.finra_taf_cap)
        self.w, self.length = params.window, params.episode_length
        self.cash0 = float(params.initial_cash)
        self.rng = np.random.default_rng(seed)
        self.n = self.close.shape[1]
        self.half, self.top30 = math.ceil(self.n / 2), max(1, round(0.3 * self.n))

    def reset(self):
        self.t = int(self.rng.integers(self.w, self.close.shape[0] - self.length))
        self.end = self.t + self.length
        self.h = np.zeros(self.n)
        self.cash = self.value = self.cash0
        self.weights = np.r_[np.zeros(self.n), 1.0]
        return self.obs()

    def obs(self):
        rows = slice(self.t - self.w, self.t)
        win = np.concatenate([self.features[rows].reshape(self.w, -1), self.market[rows]], axis=1)
        return win, self.weights

    def top(self, score, k):
        mask = np.zeros(self.n, bool)
        mask[np.argsort(-score, kind="stable")[:k]] = True
        return mask

    def costs(self, u, shares, price, value):
        tv = np.abs(shares * price)
        c = (self.comm + self.spread) * tv + u * self.slip * tv + self.impact * tv * np.sqrt(tv / value)
        fees = self.sec * tv + np.minimum(self.taf * np.abs(shares), self.taf_cap)
        return c + np.where(shares < 0, fees, 0.0)

    def step(self, action):
        t, p = self.t, self.close[self.t]
        cash_share = (0.0, 1.0, 0.5, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0, 0.3, 0.3, 0.0)[action]
        prev = t - 1
        group = {5: (self.mom[prev], self.half), 6: (-self.vol[prev], self.half),
                 7: (self.sharpe[prev], self.half), 8: (-self.size[prev], self.half),
                 9: (self.mom[prev], self.half), 10: (self.sharpe[prev], self.half),
                 11: (self.mom[prev], self.top30)}.get(action)
        sel = self.top(*group) if group else np.ones(self.n, bool)
        target = (1 - cash_share) * sel / sel.sum()
        gate = self.turb[prev] > self.thr
        if gate:
            target = np.zeros(self.n)
        shares = np.zeros(self.n) if (action == 0 and not gate) else target * self.value / p - self.h
        u = self.rng.random(self.n)
        c = self.costs(u, shares, p, self.value)
        flow = shares * p
        buy = shares > 0
        buys = flow[buy].sum()
        avail = self.cash - flow[~buy].sum() - c.sum()
        if buys > avail:
            shares[buy] *= max(avail / buys, 0.0) * (1 - 1e-5)
            c[buy] = self.costs(u, shares, p, self.value)[buy]
            flow = shares * p
        self.h = self.h + shares
        self.cash -= flow.sum() + c.sum()
        held = self.h * p
        post = self.cash + held.sum()
        self.weights = np.r_[held, self.cash] / post
        value1 = self.cash + self.h @ self.close[t + 1]
        reward = math.log(value1 / self.value)
        self.value, self.t = value1, t + 1
        done = self.t >= self.end or value1 < 0.1 * self.cash0
        obs = self.reset() if done else self.obs()
        return obs, reward, done, {"costs": c.sum(), "gate": gate}


def time_numpy(env: NumpyPortfolio, n_steps: int) -> float:
    env.reset()
    actions = env.rng.integers(0, 12, n_steps)
    acc = 0.0
    start = time.perf_counter()
    for a in actions:
        (win, w), r, _, _ = env.step(int(a))
        acc += r
    return n_steps / (time.perf_counter() - start)


def main(_):
    data = load_env_data()
    env, params = envs.make("portfolio", data, window=_WINDOW.value, episode_length=_EPISODE.value)
    print(f"backend {jax.default_backend()} ({jax.devices()[0].device_kind}), data: {data.n_rows} rows x "
          f"{data.n_assets} assets, features {tuple(data.features.shape[2:])}, market "
          f"{data.market.shape[1]}; obs window {params.window} x "
          f"{data.features.shape[1] * data.features.shape[2] + data.market.shape[1]}, "
          f"{_N_STEPS.value} steps per scan, median of {_REPEATS.value}")
    np_env = NumpyPortfolio(data, params)
    time_numpy(np_env, 200)   # warm-up
    results = []
    for n_envs in [int(n) for n in _N_ENVS.value]:
        run = make_scan(env.unwrapped if False else env, n_envs, _N_STEPS.value)
        key = jax.random.key(0)
        t0 = time.perf_counter()
        run(params, key).block_until_ready()
        compile_s = time.perf_counter() - t0
        jax_rates, np_rates = [], []
        for i in range(_REPEATS.value):
            t0 = time.perf_counter()
            float(run(params, jax.random.key(i + 1)))
            jax_rates.append(n_envs * _N_STEPS.value / (time.perf_counter() - t0))
            np_rates.append(time_numpy(np_env, _NUMPY_STEPS.value))   # interleaved: same load
        jr, nr = statistics.median(jax_rates), statistics.median(np_rates)
        results.append((n_envs, jr, nr, compile_s))
        print(f"  {n_envs:>6} envs: {jr:>14,.0f} steps/s (min {min(jax_rates):,.0f}, "
              f"max {max(jax_rates):,.0f}), numpy {nr:,.0f} steps/s, ratio {jr / nr:,.1f}x, "
              f"compile+first run {compile_s:.1f}s", flush=True)
    print()
    print("| envs | JAX env steps/s | numpy steps/s (1 env) | ratio |")
    print("| ---: | ---: | ---: | ---: |")
    for n_envs, jr, nr, _ in results:
        print(f"| {n_envs:,} | {jr:,.0f} | {nr:,.0f} | {jr / nr:,.0f}x |")


if __name__ == "__main__":
    app.run(main)
