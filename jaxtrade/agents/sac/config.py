"""The `sac` config section; static (`SACHParams`) and traced (`TracedHParams`) hyperparameters."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
from flax import struct
from ml_collections import config_dict

from jaxtrade.agents.base import TracedFields, static_kwargs
from jaxtrade.agents.offpolicy import check_ranges, derived_sizes
from jaxtrade.models import default_model_config


def section_config() -> ml_collections.ConfigDict:
    """The `sac` section with its defaults (the agent registry's default_config for "sac")."""
    return ml_collections.ConfigDict(dict(
        n_envs=16,                   # environments per device
        n_steps=32,                  # env steps per environment and iteration
        buffer_size=65536,           # replay capacity in transitions, per device (and population member)
        batch_size=256,              # transitions per gradient step, per device (gradients pmean-ed)
        learning_starts=2048,        # transitions in a device's buffer before the first gradient step
        utd_ratio=0.0625,            # gradient steps per env step collected
        n_step=1,                    # n-step returns (dqn.nstep_returns), cut at episode ends
        gamma=0.99,
        actor_lr=3e-4,
        critic_lr=3e-4,
        alpha_lr=3e-4,               # the temperature's (log alpha's) Adam rate
        tau=0.005,                   # Polyak: target <- tau * online + (1 - tau) * target, every step
        init_alpha=0.1,              # the temperature's starting value
        target_entropy=config_dict.placeholder(float),  # None: -action_dim
        n_critics=2,                 # the soft target takes their minimum
        max_grad_norm=10.0,
        adam_eps=1e-5,
        save_buffer=True,            # the buffer is part of `latest` (exact resume)
        iterations_per_call=1,
        frozen=(),                   # top-level parameter modules never updated: actor, critic, alpha
    ))


def default_config() -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.seed = 0
    cfg.agent = ml_collections.ConfigDict(dict(name="sac"))
    cfg.model = default_model_config()
    cfg.sac = section_config()
    return cfg


@dataclasses.dataclass(frozen=True)
class SACHParams:
    """Static hyperparameters of `config.sac`: shapes, counts, switches."""

    name: str = "sac"
    n_envs: int = 16
    n_steps: int = 32
    buffer_size: int = 65536
    batch_size: int = 256
    learning_starts: int = 2048
    utd_ratio: float = 0.0625
    n_step: int = 1
    init_alpha: float = 0.1
    n_critics: int = 2
    max_grad_norm: float = 10.0
    adam_eps: float = 1e-5
    save_buffer: bool = True
    iterations_per_call: int = 1
    frozen: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config) -> SACHParams:
        hp = cls(**static_kwargs(cls, TracedHParams, config.sac, name="sac", exclude=("name",)))
        derived_sizes(hp, "sac")
        if hp.n_critics < 1 or not hp.init_alpha > 0:
            raise ValueError(f"sac.n_critics={hp.n_critics} must be >= 1 and "
                             f"sac.init_alpha={hp.init_alpha} > 0")
        return hp


@struct.dataclass
class TracedHParams(TracedFields):
    """Pytree leaves (float32 scalars, [K] for a population)."""

    actor_lr: jax.Array = struct.field(pytree_node=True, default=3e-4)
    critic_lr: jax.Array = struct.field(pytree_node=True, default=3e-4)
    alpha_lr: jax.Array = struct.field(pytree_node=True, default=3e-4)
    gamma: jax.Array = struct.field(pytree_node=True, default=0.99)
    tau: jax.Array = struct.field(pytree_node=True, default=0.005)
    target_entropy: jax.Array = struct.field(pytree_node=True, default=-1.0)

    @classmethod
    def from_config(cls, config, action_dim: int) -> TracedHParams:
        """float32 scalars from `config.sac`; target_entropy None -> -action_dim."""
        section = dict(config.sac)
        if section.get("target_entropy") is None:
            section["target_entropy"] = -float(action_dim)
        v = {n: float(section.get(n, getattr(cls, n))) for n in cls.names()}
        check_ranges(v, {"actor_lr": (v["actor_lr"] > 0, "> 0"), "critic_lr": (v["critic_lr"] > 0, "> 0"),
                         "alpha_lr": (v["alpha_lr"] > 0, "> 0"), "gamma": (0 <= v["gamma"] <= 1, "in [0, 1]"),
                         "tau": (0 < v["tau"] <= 1, "in (0, 1]")}, "sac")
        return cls(**{n: jnp.asarray(x, jnp.float32) for n, x in v.items()})
