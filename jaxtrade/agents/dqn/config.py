"""The `dqn` config section; the static (`DQNHParams`) and traced (`TracedHParams`) hyperparameters
built from it once; derived sizes and the epsilon schedule."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
from flax import struct

from jaxtrade.agents.base import TracedFields, static_kwargs
from jaxtrade.models import default_model_config


def default_config() -> ml_collections.ConfigDict:
    """seed, model and dqn sections (what DQN reads); full experiment configs add agent, data, env, train."""
    cfg = ml_collections.ConfigDict()
    cfg.seed = 0
    cfg.model = default_model_config()
    cfg.dqn = section_config()
    return cfg


def section_config() -> ml_collections.ConfigDict:
    """The `dqn` section with its defaults (the agent registry's default_config for "dqn")."""
    return ml_collections.ConfigDict(dict(
        n_envs=16,                   # environments per device
        n_steps=32,                  # env steps per environment and iteration
        buffer_size=65536,           # replay capacity in transitions, per device (and population member)
        batch_size=256,              # transitions per gradient step, per device (gradients pmean-ed)
        learning_starts=2048,        # transitions in a device's buffer before the first gradient step
        utd_ratio=0.0625,            # gradient steps per env step collected: utd * n_envs * n_steps a call
        gamma=0.99,
        n_step=3,                    # n-step returns, cut at episode ends and at the iteration's end
        lr=3e-4,                     # Adam's peak rate; every module is in the optimizer group "q"
        lr_schedule="constant",      # constant | linear | cosine (to 0 over total_updates iterations)
        tau=0.005,                   # target <- tau * online + (1 - tau) * target ...
        target_period=1,             # ... every target_period gradient steps (tau=1: periodic copies)
        double=True,                 # double DQN: online argmax, target value
        dueling=False,               # dueling head: q_value + q_adv
        epsilon_start=1.0,
        epsilon_end=0.05,
        epsilon_fraction=0.1,        # linear decay over this fraction of total_updates ...
        epsilon_decay_iterations=0,  # ... or over this many iterations when > 0
        total_updates=1000,          # training iterations the lr schedule and epsilon_fraction span
        huber_delta=1.0,             # Huber loss on the TD error (quadratic within +- delta)
        max_grad_norm=10.0,          # global-norm clip of the gradients
        adam_eps=1e-5,
        save_buffer=True,            # the buffer is part of `latest` (exact resume); False: see agent.py
        iterations_per_call=1,       # k iterations lax.scan-ed inside one pmap call
        frozen=(),                   # parameter modules (encoder, core, q, q_value, q_adv) never updated
    ))


@dataclasses.dataclass(frozen=True)
class DQNHParams:
    """Static DQN hyperparameters (shapes, loop counts, switches): plain Python, hashable, built once
    from `config.dqn` by `dqn.make`. The traced ones are in `TracedHParams`."""

    n_envs: int = 16
    n_steps: int = 32
    buffer_size: int = 65536
    batch_size: int = 256
    learning_starts: int = 2048
    utd_ratio: float = 0.0625
    lr_schedule: str = "constant"
    n_step: int = 3
    target_period: int = 1
    double: bool = True
    dueling: bool = False
    epsilon_fraction: float = 0.1
    epsilon_decay_iterations: int = 0
    total_updates: int = 1000
    huber_delta: float = 1.0
    max_grad_norm: float = 10.0
    adam_eps: float = 1e-5
    save_buffer: bool = True
    iterations_per_call: int = 1
    frozen: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config) -> DQNHParams:
        """From `config.dqn` (its traced keys are left to `TracedHParams`; an unknown key raises)."""
        hp = cls(**static_kwargs(cls, TracedHParams, config.dqn, name="dqn"))
        derived_sizes(hp)
        return hp


@struct.dataclass
class TracedHParams(TracedFields):
    """DQN hyperparameters that are pytree leaves (float32 scalars, or [K] for a population): carried
    in the agent state, so `jax.vmap` trains K settings in one compile."""

    lr: jax.Array = struct.field(pytree_node=True, default=3e-4)
    gamma: jax.Array = struct.field(pytree_node=True, default=0.99)
    tau: jax.Array = struct.field(pytree_node=True, default=0.005)
    epsilon_start: jax.Array = struct.field(pytree_node=True, default=1.0)
    epsilon_end: jax.Array = struct.field(pytree_node=True, default=0.05)

    @classmethod
    def from_config(cls, config) -> TracedHParams:
        """float32 scalars from `config.dqn` (defaults where a key is absent); checks their ranges."""
        section = dict(config.dqn)
        values = {n: float(section.get(n, getattr(cls, n))) for n in cls.names()}
        ranges = {"lr": (values["lr"] > 0, "> 0"), "gamma": (0 <= values["gamma"] <= 1, "in [0, 1]"),
                  "tau": (0 < values["tau"] <= 1, "in (0, 1]"),
                  "epsilon_start": (0 <= values["epsilon_start"] <= 1, "in [0, 1]"),
                  "epsilon_end": (0 <= values["epsilon_end"] <= 1, "in [0, 1]")}
        for name, (ok, rule) in ranges.items():
            if not ok:
                raise ValueError(f"dqn.{name}={values[name]} must be {rule}")
        return cls(**{n: jnp.asarray(v, jnp.float32) for n, v in values.items()})



def replay_checks(hp, name: str) -> tuple:
    """(ok, message) pairs every replay agent's sizes must pass (section `name`: dqn, ddpg, td3, sac):
    envs and steps, n-step horizon, buffer, batch, learning start, gradient steps, iterations a call."""
    per_iteration = hp.n_envs * hp.n_steps
    updates = round(hp.utd_ratio * per_iteration)
    return (
        (hp.n_envs >= 1 and hp.n_steps >= 1,
         f"{name}.n_envs={hp.n_envs} and {name}.n_steps={hp.n_steps} must be >= 1"),
        (1 <= hp.n_step <= hp.n_steps,
         f"{name}.n_step={hp.n_step} must be between 1 and {name}.n_steps={hp.n_steps}"),
        (per_iteration <= hp.buffer_size,
         f"{name}.buffer_size={hp.buffer_size} must hold one iteration's transitions per device, "
         f"{name}.n_envs * {name}.n_steps = {per_iteration}"),
        (1 <= hp.batch_size <= hp.buffer_size,
         f"{name}.batch_size={hp.batch_size} must be between 1 and {name}.buffer_size={hp.buffer_size}"),
        (hp.learning_starts <= hp.buffer_size,
         f"{name}.learning_starts={hp.learning_starts} is never reached with "
         f"{name}.buffer_size={hp.buffer_size}"),
        (updates >= 1,
         f"{name}.utd_ratio={hp.utd_ratio} * {name}.n_envs * {name}.n_steps = {hp.utd_ratio * per_iteration} "
         f"rounds to no gradient step per iteration; raise {name}.utd_ratio"),
        (hp.iterations_per_call >= 1, f"{name}.iterations_per_call={hp.iterations_per_call} must be >= 1"),
    )


def replay_sizes(hp, checks) -> dict:
    """Raise the first failed check's message; -> transitions and gradient steps per iteration and the
    learning start (a gradient step waits for max(learning_starts, 1) written transitions per device)."""
    for ok, message in checks:
        if not ok:
            raise ValueError(message)
    per_iteration = hp.n_envs * hp.n_steps
    return {"transitions_per_iteration": per_iteration,
            "updates_per_iteration": round(hp.utd_ratio * per_iteration),
            "learning_starts": max(hp.learning_starts, 1)}


def derived_sizes(hp: DQNHParams) -> dict:
    """Gradient steps per iteration and the epsilon decay length; checks every size against the others
    and never writes the config. ValueError naming the dqn keys and the constraint."""
    checks = replay_checks(hp, "dqn") + (
        (hp.target_period >= 1, f"dqn.target_period={hp.target_period} must be >= 1"),
        (hp.epsilon_decay_iterations >= 0 and 0 < hp.epsilon_fraction <= 1,
         f"dqn.epsilon_fraction={hp.epsilon_fraction} must be in (0, 1] and dqn.epsilon_decay_iterations="
         f"{hp.epsilon_decay_iterations} >= 0"),
    )
    sizes = replay_sizes(hp, checks)
    decay = hp.epsilon_decay_iterations or max(1, round(hp.epsilon_fraction * hp.total_updates))
    return dict(sizes, epsilon_decay_iterations=decay)


def epsilon(step, hparams: TracedHParams, decay_iterations: int) -> jax.Array:
    """Exploration rate of iteration `step` (int32): epsilon_start -> epsilon_end linearly over
    `decay_iterations` iterations, then epsilon_end."""
    frac = jnp.clip(jnp.asarray(step, jnp.float32) / decay_iterations, 0.0, 1.0)
    return hparams.epsilon_start + frac * (hparams.epsilon_end - hparams.epsilon_start)
