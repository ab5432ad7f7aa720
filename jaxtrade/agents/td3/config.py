"""The `td3` and `ddpg` config sections (one package, two registrations); static (`TD3HParams`) and
traced (`TracedHParams`) hyperparameters built from a section once."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
from flax import struct

from jaxtrade.agents.base import TracedFields
from jaxtrade.agents.offpolicy import OffPolicyHParams, check_ranges, common_section
from jaxtrade.models import default_model_config


def section_config(ddpg: bool = False) -> ml_collections.ConfigDict:
    """The `td3` section with its defaults (`offpolicy.common_section` and TD3's own); `ddpg=True`: the
    `ddpg` section (one critic, no target smoothing, no delay)."""
    return ml_collections.ConfigDict(dict(
        common_section(),
        exploration_noise=0.1,       # std of the Gaussian added to tanh(mu) when collecting, in [-1, 1] units
        policy_noise=0.2,            # std of the target policy smoothing noise ...
        noise_clip=0.5,              # ... clipped to +- noise_clip
        n_critics=1 if ddpg else 2,  # twin critics: the target takes their minimum
        smooth_targets=not ddpg,     # target policy smoothing on/off
        policy_delay=1 if ddpg else 2,  # actor and target updates every policy_delay critic steps
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
class TD3HParams(OffPolicyHParams):
    """Static hyperparameters of `config.<name>` (td3 or ddpg): the common ones and TD3's switches."""

    name: str = "td3"
    smooth_targets: bool = True
    policy_delay: int = 2

    @classmethod
    def from_config(cls, config, name: str = "td3") -> TD3HParams:
        hp = cls.from_section(config, name, TracedHParams)
        if hp.policy_delay < 1:
            raise ValueError(f"{name}.policy_delay={hp.policy_delay} must be >= 1")
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
