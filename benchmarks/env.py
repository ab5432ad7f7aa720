"""Environment throughput: jitted, vmapped JAX `portfolio` env vs a plain numpy step loop.

    python -m experiments.bench_env                      # CPU: W = 30 and 1; 1, 64, 1024, 16384 envs
    python -m experiments.bench_env --n_envs=65536       # on a GPU
    python -m experiments.bench_env --windows=1 --n_envs=1024 --repeats=9

JAX: random regime actions, `lax.scan` of `n_steps` steps of `vmap(env.step)` (auto-reset
included) inside one `jit`, keys split per env and step as a rollout does. The observation window,
state, reward, done and costs are summed into the scan carry, so XLA cannot drop any of them as
dead code: every observation is built and read. Timings exclude compilation (one warm-up run).

On the CPU the host is split into one XLA device per core (`--cpu_devices`); a batch that splits
evenly runs an equal share of the environments on each (`jax.pmap`), as `bench_train` does, so the
figure is what the whole 2-core machine does; 1 environment runs on one device. The numpy loop is
one process, as users run it today.

numpy: the same portfolio logic (regime targets from row t-1 factor scores, turbulence gate, trade
at close[t] with the same cost models and the cash floor, trade PnL bookkeeping, mark at
close[t+1], auto-reset, the same [W, N*F + M] observation window) written as users write a
gym-style env today: one environment, one Python call per step.

Each configuration runs `repeats` JAX runs alternating with as many numpy runs, so the ratio is
measured side by side under the same load; medians are reported with the 1-minute load average.
Issue 3's targets, at 1,024 environments on the CPU: >= 400,000 env steps/s and >= 100x numpy.
"""

from __future__ import annotations

import math
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from jaxtrade import envs

_N_ENVS = flags.DEFINE_list("n_envs", ["1", "64", "1024", "16384"], "Batch sizes to time.")
_WINDOWS = flags.DEFINE_list("windows", ["30", "1"], "Observation windows (rows) to time.")
_N_STEPS = flags.DEFINE_integer("n_steps", 1000, "Steps per scan.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed runs per configuration (median reported).")
_CPU_DEVICES = flags.DEFINE_integer("cpu_devices", 0, "XLA host devices on the CPU, each stepping an equal "
                                    "share of the environments (0: one per core; 1: one device).")
_NUMPY_STEPS = flags.DEFINE_integer("numpy_steps", 2000, "Steps per numpy timing run.")
_EPISODE = flags.DEFINE_integer("episode_length", 256, "Episode length.")
_DATASET = flags.DEFINE_string("dataset", "sp500-20", "Bundled dataset (jaxtrade.data.load_dataset).")

TARGET_ENVS, TARGET_RATE, TARGET_RATIO = 1024, 400_000, 100


def load_env_data(lookback: int):
    """The training split (1995-2014) of the bundled dataset, as EnvData."""
    from jaxtrade.data import load_dataset

    splits = load_dataset(_DATASET.value).split(train=("1995-01-01", "2014-12-31"), lookback=lookback)
    return splits.train.to_device()


# --------------------------------------------------------------------------------------------- JAX


def devices_for(n_envs: int) -> list:
    """All local devices when `n_envs` splits evenly over them, else the first one."""
    devices = jax.local_devices()
    return devices if n_envs % len(devices) == 0 else devices[:1]


def over_devices(run, devices):
    """run(params, key) for one device's share -> fn(params, key) over `devices`: jit on one device,
    else pmap with one key per device; the result is the sum of the devices' checksums."""
    if len(devices) == 1:
        return jax.jit(run)
    pmapped = jax.pmap(run, in_axes=(None, 0), devices=devices)
    return lambda params, key: jnp.sum(pmapped(params, jax.random.split(key, len(devices))))


def make_scan(env, n_envs: int, n_steps: int, devices=None):
    """fn(params, key) -> scalar checksum of `n_steps` batched steps of random actions, the
    `n_envs` environments split evenly over `devices` (default: the first device)."""
    devices = devices or jax.local_devices()[:1]
    n_envs //= len(devices)
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

    return over_devices(run, devices)


def make_obs_floor(n_envs: int, n_steps: int, window: int, devices=None):
    """fn(params, key) -> checksum of only slicing and summing the observation windows of `n_envs`
    envs for `n_steps` steps (rows advance by one per step), split over `devices` as `make_scan`:
    the memory floor of any env step that returns a [window, N*F + M] observation, next to the full
    step's figure."""
    devices = devices or jax.local_devices()[:1]
    n_envs //= len(devices)

    def run(params, key):
        t0 = jax.random.randint(key, (n_envs,), window, params.data.n_rows - n_steps - 1)

        def body(carry, _):
            t, acc = carry
            win = jax.vmap(lambda t: jax.lax.dynamic_slice_in_dim(params.obs_table, t - window, window, 0))(t)
            return (t + 1, acc + jnp.sum(win)), None

        return jax.lax.scan(body, (t0, jnp.float32(0)), None, length=n_steps)[0][1]

    return over_devices(run, devices)


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
        self.position_cash = np.zeros(self.n)
        self.cash = self.value = self.cash0
        self.weights = np.r_[np.zeros(self.n), 1.0]
        self.episode_return, self.episode_length = 0.0, 0
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
        h0, self.h = self.h, self.h + shares
        self.cash -= flow.sum() + c.sum()
        # Trade PnL: a position closes when it returns to flat or flips sign.
        closed = (h0 != 0) & (np.sign(self.h) != np.sign(h0))
        frac = np.where(closed, np.abs(h0) / np.where(closed, np.abs(shares), 1.0), 0.0)
        pnl = np.where(closed, self.position_cash + h0 * p - c * frac, 0.0)
        self.position_cash = np.where(closed, -self.h * p - c * (1 - frac), self.position_cash - flow - c)
        held = self.h * p
        post = self.cash + held.sum()
        self.weights = np.r_[held, self.cash] / post
        value1 = self.cash + self.h @ self.close[t + 1]
        reward = math.log(value1 / self.value)
        turnover = np.abs(flow).sum() / self.value
        self.value, self.t = value1, t + 1
        self.episode_return += reward
        self.episode_length += 1
        done = self.t >= self.end or value1 < 0.1 * self.cash0
        info = {"costs": c.sum(), "gate": gate, "trade_closed": closed, "trade_pnl": pnl,
                "turnover": turnover, "value": value1, "episode_return": self.episode_return,
                "episode_length": self.episode_length}
        obs = self.reset() if done else self.obs()
        return obs, reward, done, info


def time_numpy(env: NumpyPortfolio, n_steps: int) -> float:
    env.reset()
    actions = env.rng.integers(0, 12, n_steps)
    acc = 0.0
    start = time.perf_counter()
    for a in actions:
        (win, w), r, _, info = env.step(int(a))
        acc += r + info["costs"]
    return n_steps / (time.perf_counter() - start)


def bench_window(data, window: int, n_envs_list: list[int]) -> list[dict]:
    env, params = envs.make("portfolio", data, window=window, episode_length=_EPISODE.value)
    np_env = NumpyPortfolio(data, params)
    time_numpy(np_env, 200)   # warm-up
    rows = []
    for n_envs in n_envs_list:
        devices = devices_for(n_envs)
        run = make_scan(env, n_envs, _N_STEPS.value, devices)
        t0 = time.perf_counter()
        run(params, jax.random.key(0)).block_until_ready()
        compile_s = time.perf_counter() - t0
        jax_rates, np_rates, loads = [], [], []
        for i in range(_REPEATS.value):
            loads.append(os.getloadavg()[0])
            t0 = time.perf_counter()
            float(run(params, jax.random.key(i + 1)))
            jax_rates.append(n_envs * _N_STEPS.value / (time.perf_counter() - t0))
            np_rates.append(time_numpy(np_env, _NUMPY_STEPS.value))   # alternating: same load
        row = dict(window=window, n_envs=n_envs, devices=len(devices), jax=statistics.median(jax_rates),
                   jax_min=min(jax_rates), jax_max=max(jax_rates), numpy=statistics.median(np_rates),
                   load=statistics.median(loads), compile_s=compile_s)
        if n_envs == TARGET_ENVS:
            floor = make_obs_floor(n_envs, _N_STEPS.value, window, devices)
            float(floor(params, jax.random.key(0)))
            rates = []
            for i in range(_REPEATS.value):
                t0 = time.perf_counter()
                float(floor(params, jax.random.key(i + 1)))
                rates.append(n_envs * _N_STEPS.value / (time.perf_counter() - t0))
            row["obs_floor"] = statistics.median(rates)
        rows.append(row)
        print(f"  W={window:>2} {n_envs:>6} envs on {len(devices)} device(s): {row['jax']:>12,.0f} steps/s "
              f"(min {row['jax_min']:,.0f}, "
              f"max {row['jax_max']:,.0f}), numpy {row['numpy']:,.0f} steps/s, ratio "
              f"{row['jax'] / row['numpy']:,.1f}x, load {row['load']:.1f}, "
              f"compile+first run {compile_s:.1f}s"
              + (f"; observation alone (slice + sum): {row['obs_floor']:,.0f} steps/s" if "obs_floor" in row
                 else ""), flush=True)
    return rows


def use_cpu_cores(n_devices: int) -> None:
    """Split the host into `n_devices` XLA CPU devices (before jax starts its backends)."""
    flag = f"--xla_force_host_platform_device_count={n_devices}"
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()


def main(_):
    n_cpu = _CPU_DEVICES.value or (os.cpu_count() or 1)
    use_cpu_cores(n_cpu)
    if jax.default_backend() == "cpu" and len(jax.local_devices()) != n_cpu:
        raise RuntimeError(f"asked for {n_cpu} CPU devices, jax has {len(jax.local_devices())}: XLA_FLAGS "
                           "was read before main (is jax initialized at import?)")
    windows = [int(w) for w in _WINDOWS.value]
    data = load_env_data(max(windows))
    d = data.features.shape[1] * data.features.shape[2] + data.market.shape[1]
    print(f"backend {jax.default_backend()} ({jax.devices()[0].device_kind}), {os.cpu_count()} CPUs, "
          f"data: {data.n_rows} rows x {data.n_assets} assets, features {tuple(data.features.shape[2:])}, "
          f"market {data.market.shape[1]}; obs window W x {d}; {_N_STEPS.value} steps per scan, "
          f"medians of {_REPEATS.value}, load average at start {os.getloadavg()[0]:.1f}")
    rows = []
    for window in windows:
        rows += bench_window(data, window, [int(n) for n in _N_ENVS.value])
    print()
    print("| W | envs | JAX env steps/s | numpy steps/s (1 env) | ratio | load |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['window']} | {r['n_envs']:,} | {r['jax']:,.0f} | {r['numpy']:,.0f} | "
              f"{r['jax'] / r['numpy']:,.0f}x | {r['load']:.1f} |")
    print()
    for r in rows:
        if r["n_envs"] == TARGET_ENVS and jax.default_backend() == "cpu":
            rate_ok, ratio = r["jax"] >= TARGET_RATE, r["jax"] / r["numpy"]
            print(f"W={r['window']}, {TARGET_ENVS} envs: {r['jax']:,.0f} steps/s "
                  f"(target {TARGET_RATE:,}: {'met' if rate_ok else 'NOT met'}), {ratio:,.1f}x numpy "
                  f"(target {TARGET_RATIO}x: {'met' if ratio >= TARGET_RATIO else 'NOT met'})")


if __name__ == "__main__":
    app.run(main)
