"""What every benchmark shares, written once: the env factory, the CPU device split, timing, workers.

1. `make_env(name, data, **config)` is the benchmarks' only call of `jaxtrade.envs.make`.
2. `use_cpu_cores(n)` splits the host into n XLA CPU devices through XLA_FLAGS, which jax reads when
   it starts its backends: call it before anything imports jax, then `check_cpu_devices(n)` after.
   `cpu_devices_env(n)` is the same flag for a subprocess's environment.
3. `time_calls(fn, repeats)` runs `fn` once as a warm-up (compilation), then `repeats` timed calls;
   `Timing` gives the median, min and max. `timed(fn)` is one timed call.
4. `spawn_worker(module, args, ...)` runs `python -m module args` in a fresh process (its own jax,
   device split and peak RSS) and returns the JSON object its last `{...}` stdout line holds;
   the worker prints it with `emit(result)`.
5. `peak_rss_mb()` is this process's peak resident memory; `machine_line()` describes the machine.

Nothing here imports jax at module level, so importing it never starts a backend.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

_DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"


# ------------------------------------------------------------------------------------------ envs


def make_env(name: str, data, **config):
    """(env, params) = `jaxtrade.envs.make(name, data, ...)`: the one place the benchmarks build envs.

    config: the env settings the benchmarks vary (window, episode_length, action_space, ...).
    """
    from jaxtrade import envs

    return envs.make(name, data, config)


def load_env_data(dataset: str = "sp500-20", *, lookback: int = 30, train=("1997-01-01", "2014-12-31")):
    """The training split (default 1997-2014: the dated fee schedule starts 1996-10-11) of a bundled
    dataset, as device `EnvData`."""
    from jaxtrade.data import load_dataset, split

    return split(load_dataset(dataset), train=train, lookback=lookback).train.to_device()


# ---------------------------------------------------------------------------------- device split


def n_cpu_devices(requested: int = 0) -> int:
    """`requested` XLA CPU devices, or one per core when 0."""
    return requested or (os.cpu_count() or 1)


def _with_device_count(xla_flags: str, n: int) -> str:
    kept = [f for f in xla_flags.split() if not f.startswith(_DEVICE_COUNT_FLAG)]
    return " ".join([*kept, f"{_DEVICE_COUNT_FLAG}={n}"])


def cpu_devices_env(n: int, env: dict | None = None) -> dict:
    """A copy of `env` (default os.environ) whose XLA_FLAGS ask for `n` CPU devices (GPUs ignore it)."""
    env = dict(os.environ if env is None else env)
    env["XLA_FLAGS"] = _with_device_count(env.get("XLA_FLAGS", ""), n)
    return env


def use_cpu_cores(n: int) -> None:
    """Split this process's host into `n` XLA CPU devices; before jax starts its backends."""
    os.environ["XLA_FLAGS"] = _with_device_count(os.environ.get("XLA_FLAGS", ""), n)


def check_cpu_devices(n: int) -> None:
    """RuntimeError unless jax (on the CPU) has the `n` devices `use_cpu_cores(n)` asked for."""
    import jax

    if jax.default_backend() == "cpu" and len(jax.local_devices()) != n:
        raise RuntimeError(f"asked for {n} CPU devices, jax has {len(jax.local_devices())}: XLA_FLAGS "
                           "was read before use_cpu_cores (was a jax backend started at import?)")


# ---------------------------------------------------------------------------------------- timing


@dataclasses.dataclass(frozen=True)
class Timing:
    """Seconds of a warm-up call (compilation included) and of each timed call after it."""

    first_s: float
    times: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def min(self) -> float:
        return min(self.times)

    @property
    def max(self) -> float:
        return max(self.times)

    def rates(self, work: float) -> tuple[float, float, float]:
        """(median, min, max) of `work` per second."""
        return work / self.median, work / self.max, work / self.min


def _block(out):
    if "jax" in sys.modules:
        import jax

        return jax.block_until_ready(out)
    return out


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """(seconds, result) of one call; jax results are waited for."""
    t0 = time.perf_counter()
    out = _block(fn())
    return time.perf_counter() - t0, out


def time_calls(fn: Callable[[], object], repeats: int, *, warmup: bool = True,
               between: Callable[[int], object] | None = None) -> Timing:
    """One warm-up call of `fn` (unless warmup=False), then `repeats` timed calls.

    between(i): called after timed call i, outside the timing (e.g. a side-by-side reference run, so
    both see the same machine load).
    """
    first = timed(fn)[0] if warmup else 0.0
    times = []
    for i in range(repeats):
        times.append(timed(fn)[0])
        if between is not None:
            between(i)
    return Timing(first, tuple(times))


# ------------------------------------------------------------------------------ worker processes


def spawn_worker(module: str, args: Sequence[str], *, env: dict | None = None, timeout: float = 1800,
                 label: str = "") -> dict | None:
    """The JSON object a `python -m module args` subprocess prints last (`emit`), or None.

    A timeout or failure is printed (with the tail of stderr) and gives None, so one bad
    configuration does not stop a sweep.
    """
    label = label or " ".join(args)
    cmd = [sys.executable, "-m", module, *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        print(f"  {label}: timed out after {timeout}s", flush=True)
        return None
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        print(f"  {label}: failed (rc={proc.returncode})\n{proc.stderr[-2000:]}", flush=True)
        return None
    return json.loads(lines[-1])


def emit(result: dict) -> None:
    """A worker's result: one JSON line on stdout, read by `spawn_worker`."""
    print(json.dumps(result), flush=True)


# ------------------------------------------------------------------------------- machine and RSS


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def load() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def machine_line() -> str:
    """'backend cpu (cpu), 2 CPUs, jax 0.10.2, Linux x86_64': what the figures were measured on."""
    import jax

    return (f"backend {jax.default_backend()} ({jax.devices()[0].device_kind}), {os.cpu_count()} CPUs, "
            f"jax {jax.__version__}, {platform.system()} {platform.machine()}")
