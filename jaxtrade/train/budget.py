"""How long a run trains and how many environments fit: resolved once, printed at start."""

from __future__ import annotations

import dataclasses
import logging
import math

log = logging.getLogger("jaxtrade")


@dataclasses.dataclass(frozen=True)
class Budget:
    """iterations: training iterations to run; steps_per_iteration: env steps of one iteration
    over all devices; source: which config field decided (total_timesteps | episodes | iterations)."""

    iterations: int
    steps_per_iteration: int
    source: str

    @property
    def total_timesteps(self) -> int:
        return self.iterations * self.steps_per_iteration

    def describe(self) -> str:
        return (f"{self.iterations:,} iterations x {self.steps_per_iteration:,} env steps = "
                f"{self.total_timesteps:,} env steps (set by train.{self.source})")


def resolve_budget(*, total_timesteps, episodes, iterations, n_envs: int, n_steps: int,
                   n_devices: int, episode_length: int) -> Budget:
    """The first of total_timesteps, episodes (x episode_length), iterations that is set (> 0) wins.

    `n_envs` is per device. Raises ValueError when none is set.
    """
    per_iteration = n_envs * n_steps * n_devices
    for source, value, steps in (("total_timesteps", total_timesteps, lambda v: v),
                                 ("episodes", episodes, lambda v: v * episode_length),
                                 ("iterations", iterations, None)):
        if value is not None and value > 0:
            its = int(value) if steps is None else math.ceil(steps(int(value)) / per_iteration)
            return Budget(max(1, its), per_iteration, source)
    raise ValueError("set one of train.total_timesteps, train.episodes or train.iterations (> 0)")


def cap_n_envs(n_envs: int, *, max_gb: float | None, fixed_bytes: float, bytes_per_env: float,
               multiple_of: int = 1) -> int:
    """Largest n_envs <= the configured one whose measured footprint fits in `max_gb` per device.

    The footprint is fixed_bytes + bytes_per_env * n_envs, fitted from two compiled sizes. Warns
    when it cuts; raises when not even `multiple_of` environments fit.
    """
    if not max_gb:
        return n_envs
    budget = max_gb * 2**30
    fit = int((budget - fixed_bytes) // max(bytes_per_env, 1.0))
    fit -= fit % multiple_of
    if fit < multiple_of:
        raise ValueError(f"train.max_device_memory_gb={max_gb} leaves room for no environment "
                         f"(fixed {fixed_bytes / 2**30:.2f} GiB, {bytes_per_env / 2**20:.2f} MiB each)")
    if fit < n_envs:
        log.warning("max_device_memory_gb=%.2f: n_envs cut from %d to %d per device "
                    "(%.3f MiB per environment, %.2f GiB fixed)", max_gb, n_envs, fit,
                    bytes_per_env / 2**20, fixed_bytes / 2**30)
        return fit
    return n_envs
