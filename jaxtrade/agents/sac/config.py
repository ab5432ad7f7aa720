"""The `sac` config section; static (`SACHParams`) and traced (`TracedHParams`) hyperparameters."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
from flax import struct
from ml_collections import config_dict

from jaxtrade.agents.base import TracedFields
from jaxtrade.agents.offpolicy import OffPolicyHParams, check_ranges, common_section
from jaxtrade.models import default_model_config


def section_config() -> ml_collections.ConfigDict:
    """The `sac` section with its defaults (`offpolicy.common_section` and SAC's own; the registry's
    default_config for "sac")."""
    return ml_collections.ConfigDict(dict(
        common_section(),
        alpha_lr=3e-4,               # the temperature's (log alpha's) Adam rate
        init_alpha=0.1,              # the temperature's starting value
        target_entropy=config_dict.placeholder(float),  # None: -action_dim
        frozen=(),                   # top-level parameter modules never updated: actor, critic, log_alpha
    ))


def default_config() -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.seed = 0
    cfg.agent = ml_collections.ConfigDict(dict(name="sac"))
    cfg.model = default_model_config()
    cfg.sac = section_config()
    return cfg


@dataclasses.dataclass(frozen=True)
class SACHParams(OffPolicyHParams):
    """Static hyperparameters of `config.sac`: the common ones and the starting temperature."""

    name: str = "sac"
    init_alpha: float = 0.1

    @classmethod
    def from_config(cls, config) -> SACHParams:
        hp = cls.from_section(config, "sac", TracedHParams)
        if not hp.init_alpha > 0:
            raise ValueError(f"sac.init_alpha={hp.init_alpha} must be > 0")
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
