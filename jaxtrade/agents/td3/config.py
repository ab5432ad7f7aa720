"""The `td3` and `ddpg` config sections (one package, two registrations); static (`TD3HParams`) and
traced (`TracedHParams`) hyperparameters built from a section once."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
from flax import struct

from jaxtrade.agents.base import TracedFields, static_kwargs
from jaxtrade.agents.offpolicy import check_ranges, derived_sizes
from jaxtrade.models import default_model_config


def section_config(ddpg: bool = False) -> ml_collections.ConfigDict:
    """The `td3` section with its defaults; `ddpg=True`: the `ddpg` section (one critic, no target
    smoothing, no delay)."""
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
        tau=0.005,                   # Polyak: target <- tau * online + (1 - tau) * target
        exploration_noise=0.1,       # std of the Gaussian added to tanh(mu) when collecting, in [-1, 1] units
        policy_noise=0.2,            # std of the target policy smoothing noise ...
        noise_clip=0.5,              # ... clipped to +- noise_clip
        n_critics=1 if ddpg else 2,  # twin critics: the target takes their minimum
        smooth_targets=not ddpg,     # target policy smoothing on/off
        policy_delay=1 if ddpg else 2,  # actor and target updates every policy_delay critic steps
        max_grad_norm=10.0,
        adam_eps=1e-5,
        save_buffer=True,            # the buffer is part of `latest` (exact resume)
        iterations_per_call=1,
        frozen=(),                   # top-level parameter modules never updated: actor, critic
    ))


def ddpg_section_config() -> ml_collections.ConfigDict:
    return section_config(ddpg=True)


def default_config(name: str = "td3") -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.seed = 0
    cfg.agent = ml_collections.ConfigDict(dict(name=name))
    cfg.model = default_model_config()
    cfg[name] = section_config(ddpg=name == "ddpg")
    return cfg


@dataclasses.dataclass(frozen=True)
class TD3HParams:
    """Static hyperparameters of `config.<name>` (td3 or ddpg): shapes, counts, switches."""

    name: str = "td3"
    n_envs: int = 16
    n_steps: int = 32
    buffer_size: int = 65536
    batch_size: int = 256
    learning_starts: int = 2048
    utd_ratio: float = 0.0625
    n_step: int = 1
    n_critics: int = 2
    smooth_targets: bool = True
    policy_delay: int = 2
    max_grad_norm: float = 10.0
    adam_eps: float = 1e-5
    save_buffer: bool = True
    iterations_per_call: int = 1
    frozen: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config, name: str = "td3") -> TD3HParams:
        hp = cls(name=name, **static_kwargs(cls, TracedHParams, config[name], name=name, exclude=("name",)))
        derived_sizes(hp, name)
        if hp.n_critics < 1 or hp.policy_delay < 1:
            raise ValueError(f"{name}.n_critics={hp.n_critics} and {name}.policy_delay={hp.policy_delay} "
                             "must be >= 1")
        return hp


@struct.dataclass
class TracedHParams(TracedFields):
    """Pytree leaves (float32 scalars, [K] for a population)."""

    actor_lr: jax.Array = struct.field(pytree_node=True, default=3e-4)
    critic_lr: jax.Array = struct.field(pytree_node=True, default=3e-4)
    gamma: jax.Array = struct.field(pytree_node=True, default=0.99)
    tau: jax.Array = struct.field(pytree_node=True, default=0.005)
    exploration_noise: jax.Array = struct.field(pytree_node=True, default=0.1)
    policy_noise: jax.Array = struct.field(pytree_node=True, default=0.2)
    noise_clip: jax.Array = struct.field(pytree_node=True, default=0.5)

    @classmethod
    def from_config(cls, config, name: str = "td3") -> TracedHParams:
        section = dict(config[name])
        v = {n: float(section.get(n, getattr(cls, n))) for n in cls.names()}
        check_ranges(v, {"actor_lr": (v["actor_lr"] > 0, "> 0"), "critic_lr": (v["critic_lr"] > 0, "> 0"),
                         "gamma": (0 <= v["gamma"] <= 1, "in [0, 1]"),
                         "tau": (0 < v["tau"] <= 1, "in (0, 1]"),
                         "exploration_noise": (v["exploration_noise"] >= 0, ">= 0"),
                         "policy_noise": (v["policy_noise"] >= 0, ">= 0"),
                         "noise_clip": (v["noise_clip"] >= 0, ">= 0")}, name)
        return cls(**{n: jnp.asarray(x, jnp.float32) for n, x in v.items()})
