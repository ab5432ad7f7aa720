"""Environment throughput: jitted, vmapped JAX `portfolio` env vs a plain numpy step loop.

    .venv/bin/python -m benchmarks.env                      # CPU: W = 30 and 1; 1, 64, 1024, 16384 envs
    .venv/bin/python -m benchmarks.env --n_envs=65536       # on a GPU
    .venv/bin/python -m benchmarks.env --windows=1 --n_envs=1024 --repeats=9
    .venv/bin/python -m benchmarks.env --env=options        # the options env: 1, 64, 1024, 16384 envs

JAX: random regime actions, `lax.scan` of `n_steps` steps of `vmap(env.step)` (auto-reset
included) inside one `jit`, keys split per env and step as a rollout does. The observation window,
state, reward, done and costs are summed into the scan carry, so XLA cannot drop any of them as
dead code: every observation is built and read. Timings exclude compilation (one warm-up run).

On the CPU the host is split into one XLA device per core (`--cpu_devices`); a batch that splits
evenly runs an equal share of the environments on each (`jax.pmap`), as `benchmarks.train` does, so the
figure is what the whole 2-core machine does; 1 environment runs on one device. The numpy loop is
one process, as users run it today.

numpy: the test suite's oracle (`tests/envs/numpy_oracle.py`, pinned to the JAX env step by step by
`tests/envs/test_numpy_oracle.py`): the same portfolio logic (regime targets from row t-1 factor
scores, turbulence gate, trade at close[t] with the same cost and reward models and the cash floor,
trade PnL bookkeeping, mark at close[t+1], auto-reset, the same [W, N*F + M] observation window)
written as users write a gym-style env today: one environment, one Python call per step. Run from
the repository root (it imports `tests.envs.numpy_oracle`).

Each configuration runs `repeats` JAX runs alternating with as many numpy runs, so the ratio is
measured side by side under the same load; medians are reported with the 1-minute load average.
Issue 3's targets, at 1,024 environments on the CPU: >= 400,000 env steps/s and >= 100x numpy.
"""

from __future__ import annotations

import json
import statistics
import time

from absl import app, flags

from benchmarks import common
from tests.envs.numpy_oracle import NumpyPortfolio

# jax is imported inside the functions: `main` must split the CPU into devices before it starts.

_N_ENVS = flags.DEFINE_list("n_envs", ["1", "64", "1024", "16384"], "Batch sizes to time.")
_WINDOWS = flags.DEFINE_list("windows", ["30", "1"], "Observation windows (rows) to time.")
_N_STEPS = flags.DEFINE_integer("n_steps", 1000, "Steps per scan.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed runs per configuration (median reported).")
_CPU_DEVICES = flags.DEFINE_integer("cpu_devices", 0, "XLA host devices on the CPU, each stepping an equal "
                                    "share of the environments (0: one per core; 1: one device).")
_NUMPY_STEPS = flags.DEFINE_integer("numpy_steps", 2000, "Steps per numpy timing run.")
_EPISODE = flags.DEFINE_integer("episode_length", 256, "Episode length.")
_DATASET = flags.DEFINE_string("dataset", "sp500-20", "Bundled dataset (jaxtrade.data.load_dataset).")
_ENV = flags.DEFINE_enum("env", "portfolio", ["portfolio", "options"],
                         "portfolio (against the numpy oracle) or options (S&P 500 + VIX, 91 actions, "
                         "random allowed actions; no numpy twin: the issue's figures for the original "
                         "environments are quoted instead).")

TARGET_ENVS, TARGET_RATE, TARGET_RATIO = 1024, 400_000, 100


# --------------------------------------------------------------------------------------------- JAX


def devices_for(n_envs: int) -> list:
    """All local devices when `n_envs` splits evenly over them, else the first one."""
    import jax

    devices = jax.local_devices()
    return devices if n_envs % len(devices) == 0 else devices[:1]


def over_devices(run, devices):
    """run(params, key) for one device's share -> fn(params, key) over `devices`: jit on one device,
    else pmap with one key per device; the result is the sum of the devices' checksums."""
    import jax
    import jax.numpy as jnp

    if len(devices) == 1:
        return jax.jit(run)
    pmapped = jax.pmap(run, in_axes=(None, 0), devices=devices)
    return lambda params, key: jnp.sum(pmapped(params, jax.random.split(key, len(devices))))


def make_scan(env, n_envs: int, n_steps: int, devices=None, *, masked: bool = False):
    """fn(params, key) -> scalar checksum of `n_steps` batched steps of random actions, the
    `n_envs` environments split evenly over `devices` (default: the first device). masked: the
    actions are uniform over those the observation's "action_mask" allows (the options env)."""
    import jax
    import jax.numpy as jnp

    devices = devices or jax.local_devices()[:1]
    n_envs //= len(devices)
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    reset = jax.vmap(env.reset, in_axes=(0, None))

    def run(params, key):
        reset_key, key = jax.random.split(key)
        obs, state = reset(jax.random.split(reset_key, n_envs), params)

        def body(carry, _):
            state, obs, key, acc = carry
            key, act_key, step_key = jax.random.split(key, 3)
            if masked:      # the k-th allowed action, k uniform: one draw per env, not one per action
                allowed = obs["action_mask"]
                n_ok = jnp.sum(allowed, -1)
                k = jnp.floor(jax.random.uniform(act_key, (n_envs,)) * n_ok).astype(jnp.int32)
                action = jnp.argmax(jnp.cumsum(allowed, -1) > k[:, None], -1).astype(jnp.int32)
            else:
                action = jax.random.randint(act_key, (n_envs,), 0, env.action_dim)
            obs, state, reward, done, info = step(jax.random.split(step_key, n_envs), state, action, params)
            # Reduce everything a learner would read, so nothing is dead code.
            acc = (acc + sum(jnp.sum(x.astype(jnp.float32)) for x in obs.values()) + jnp.sum(reward)
                   + jnp.sum(done) + jnp.sum(info["costs"]))
            return (state, obs, key, acc), None

        (*_, acc), _ = jax.lax.scan(body, (state, obs, key, jnp.float32(0)), None, length=n_steps)
        return acc

    return over_devices(run, devices)


def make_obs_floor(n_envs: int, n_steps: int, window: int, devices=None):
    """fn(params, key) -> checksum of only slicing and summing the observation windows of `n_envs`
    envs for `n_steps` steps (rows advance by one per step), split over `devices` as `make_scan`:
    the memory floor of any env step that returns a [window, N*F + M] observation, next to the full
    step's figure."""
    import jax
    import jax.numpy as jnp

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


def time_numpy(env: NumpyPortfolio, n_steps: int) -> float:
    """numpy env steps per second over `n_steps` random regime actions."""
    env.reset()
    actions = env.rng.integers(0, 12, n_steps)
    acc = 0.0
    start = time.perf_counter()
    for a in actions:
        _, r, _, info = env.step(int(a))
        acc += r + info["costs"]
    return n_steps / (time.perf_counter() - start)


def _time_jax(fn, params, repeats: int, between=None):
    """(Timing, load averages) of fn(params, key): a warm-up call with key 0, then key 1, 2, ..."""
    import jax

    keys, loads = iter(range(repeats + 1)), []

    def call():
        loads.append(common.load())
        return float(fn(params, jax.random.key(next(keys))))

    timing = common.time_calls(call, repeats, between=between)
    return timing, loads[1:]


def bench_window(data, window: int, n_envs_list: list[int]) -> list[dict]:
    env, params = common.make_env("portfolio", data, window=window, episode_length=_EPISODE.value)
    np_env = NumpyPortfolio(data, params, auto_reset=True)
    time_numpy(np_env, 200)   # warm-up
    rows = []
    for n_envs in n_envs_list:
        devices = devices_for(n_envs)
        run = make_scan(env, n_envs, _N_STEPS.value, devices)
        np_rates = []
        numpy_run = lambda _, r=np_rates: r.append(time_numpy(np_env, _NUMPY_STEPS.value))
        # numpy runs alternate with the JAX runs, so both see the same load.
        timing, loads = _time_jax(run, params, _REPEATS.value, between=numpy_run)
        work = n_envs * _N_STEPS.value
        jax_rate, jax_min, jax_max = timing.rates(work)
        row = dict(window=window, n_envs=n_envs, devices=len(devices), jax=jax_rate, jax_min=jax_min,
                   jax_max=jax_max, numpy=statistics.median(np_rates), load=statistics.median(loads),
                   compile_s=timing.first_s)
        if n_envs == TARGET_ENVS:
            floor = make_obs_floor(n_envs, _N_STEPS.value, window, devices)
            row["obs_floor"] = _time_jax(floor, params, _REPEATS.value)[0].rates(work)[0]
        rows.append(row)
        print(f"  W={window:>2} {n_envs:>6} envs on {len(devices)} device(s): {row['jax']:>12,.0f} steps/s "
              f"(min {row['jax_min']:,.0f}, "
              f"max {row['jax_max']:,.0f}), numpy {row['numpy']:,.0f} steps/s, ratio "
              f"{row['jax'] / row['numpy']:,.1f}x, load {row['load']:.1f}, "
              f"compile+first run {row['compile_s']:.1f}s"
              + (f"; observation alone (slice + sum): {row['obs_floor']:,.0f} steps/s" if "obs_floor" in row
                 else ""), flush=True)
    return rows


def bench_options(n_envs_list: list[int]) -> list[dict]:
    """The options env on S&P 500 + VIX (2014-2016 train split), random allowed actions."""
    from jaxtrade import envs
    from jaxtrade.data import load_dataset, split

    md = load_dataset("sp500-vix")
    data = split(md, train=("2014-05-01", "2016-12-31"), lookback=30).train.to_device()
    env, params = envs.make("options", data, {"fee_mode": "flat", "episode_length": _EPISODE.value})
    print(f"{common.machine_line()}; options env: {data.n_rows} rows, {env.action_dim} actions, obs "
          f"{dict((k, v.shape) for k, v in env.obs_spec.entries)}; {_N_STEPS.value} steps per scan, medians "
          f"of {_REPEATS.value}, load average at start {common.load():.1f}")
    print("| envs | devices | env steps/s (median) | min | max | compile + first run (s) | load |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    rows = []
    for n_envs in n_envs_list:
        devices = devices_for(n_envs)
        run = make_scan(env, n_envs, _N_STEPS.value, devices, masked=True)
        timing, loads = _time_jax(run, params, _REPEATS.value)
        rate, lo, hi = timing.rates(n_envs * _N_STEPS.value)
        print(f"| {n_envs:,} | {len(devices)} | {rate:,.0f} | {lo:,.0f} | {hi:,.0f} | {timing.first_s:.1f} | "
              f"{statistics.median(loads):.1f} |", flush=True)
        rows.append({"env": "options", "n_envs": n_envs, "devices": len(devices), "jax": rate, "min": lo,
                     "max": hi, "compile_s": timing.first_s, "load": statistics.median(loads)})
    return rows


def main(_):
    n_cpu = common.n_cpu_devices(_CPU_DEVICES.value)
    common.use_cpu_cores(n_cpu)
    import jax

    common.check_cpu_devices(n_cpu)
    if _ENV.value == "options":
        rows = bench_options([int(n) for n in _N_ENVS.value])
        print("\nJSON " + json.dumps(rows))         # the last line: what benchmarks/device_check.sh reads
        return
    windows = [int(w) for w in _WINDOWS.value]
    data = common.load_env_data(_DATASET.value, lookback=max(windows))
    d = data.features.shape[1] * data.features.shape[2] + data.market.shape[1]
    print(f"{common.machine_line()}, "
          f"data: {data.n_rows} rows x {data.n_assets} assets, features {tuple(data.features.shape[2:])}, "
          f"market {data.market.shape[1]}; obs window W x {d}; {_N_STEPS.value} steps per scan, "
          f"medians of {_REPEATS.value}, load average at start {common.load():.1f}")
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
    print("\nJSON " + json.dumps([dict(r, env="portfolio", backend=jax.default_backend()) for r in rows]))


if __name__ == "__main__":
    app.run(main)
