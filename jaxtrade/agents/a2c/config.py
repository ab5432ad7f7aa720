"""Default `a2c` config section; the static (`A2CHParams`) and traced (`A2CTracedHParams`)
hyperparameters built from it once.

Defaults follow stable-baselines3's A2C (gamma 0.99, gae_lambda 1.0, i.e. n-step returns, vf_coef 0.5,
max_grad_norm 0.5, learning rate 7e-4, eps 1e-5, no advantage normalization) with three departures,
stated here: 64 envs x 16 steps per device instead of SB3's 5 steps (our episodes are hundreds of
steps long, and 16-step segments carry more of them per gradient), ent_coef 0.01 (the A3C paper's;
SB3's 0.0 lets a trading policy collapse onto one action early), and Adam instead of RMSprop (the
one optimizer path table every on-policy agent shares, `ppo.optim`).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import ml_collections
from flax import struct

from jaxtrade.agents.base import TracedFields, static_kwargs
from jaxtrade.agents.ppo.optim import PATH_TABLE
from jaxtrade.models import default_model_config


def default_config() -> ml_collections.ConfigDict:
    """seed, model and a2c sections (what A2C reads); experiment configs add agent, data, env, train."""
    cfg = ml_collections.ConfigDict()
    cfg.seed = 0
    cfg.model = default_model_config()
    cfg.a2c = section_config()
    return cfg


def section_config() -> ml_collections.ConfigDict:
    """The `a2c` section with its defaults (the agent registry's default_config for "a2c")."""
    return ml_collections.ConfigDict(dict(
        n_envs=64,                   # environments per device
        n_steps=16,                  # rollout length per iteration (SB3: 5; our episodes are longer)
        iterations_per_call=1,       # k iterations lax.scan-ed inside one pmap call
        # Returns and loss (traced: a population may vary them).
        gamma=0.99,
        gae_lambda=1.0,              # 1.0: n-step returns bootstrapped from the rollout's last value
        bootstrap_truncation=True,   # reward += gamma * V(final_obs) at truncated steps
        ent_coef=0.01,
        vf_coef=0.5,
        norm_adv=False,              # SB3's default; True: moments over every device's whole rollout
        # The optimizer: ppo.optim's path table, one Adam per group, one step per iteration.
        actor_lr=7e-4,               # encoder, core, policy head
        critic_lr=7e-4,              # value head (equal rates: one shared learning rate)
        max_grad_norm=0.5,           # global-norm clip over the trainable groups (or each group's, below)
        clip_per_group=False,
        adam_eps=1e-5,
        actor_schedule="constant",   # constant | linear | cosine, decaying over total_updates iterations
        critic_schedule="constant",
        warmup_steps=0,              # linear warmup from 0, in iterations
        total_updates=1000,
        frozen=(),                   # parameter modules (encoder, core, policy, value) never updated
    ))


@dataclasses.dataclass(frozen=True)
class A2CHParams:
    """Static A2C hyperparameters: plain Python, hashable, built once from `config.a2c` by `a2c.make`.

    One gradient step per iteration over the whole rollout: to the shared optimizer path
    (`ppo.optim.make_optimizer`, `ppo.config.derived_sizes`) that is one epoch of one minibatch, no
    critic-only epochs and no accumulation -- the class constants below, which are not config keys."""

    update_epochs: ClassVar[int] = 1
    n_minibatches: ClassVar[int] = 1
    critic_epochs: ClassVar[int] = 0
    grad_accum_steps: ClassVar[int] = 1

    n_envs: int = 64
    n_steps: int = 16
    iterations_per_call: int = 1
    bootstrap_truncation: bool = True
    norm_adv: bool = False
    max_grad_norm: float = 0.5
    clip_per_group: bool = False
    adam_eps: float = 1e-5
    actor_schedule: str = "constant"
    critic_schedule: str = "constant"
    warmup_steps: int = 0
    total_updates: int = 1000
    frozen: tuple[str, ...] = ()
    continuous_dist: str = "gaussian"        # from config.model (the rollout's action transform)

    @classmethod
    def from_config(cls, config) -> A2CHParams:
        """From `config.a2c` (its traced keys are left to `A2CTracedHParams`; an unknown key raises)."""
        kwargs = static_kwargs(cls, A2CTracedHParams, config.a2c, name="a2c", exclude=("continuous_dist",))
        kwargs["continuous_dist"] = dict(config.get("model", None) or {}).get("continuous_dist",
                                                                              cls.continuous_dist)
        hp = cls(**kwargs)
        if hp.n_envs < 1 or hp.n_steps < 1:
            raise ValueError(f"a2c.n_envs={hp.n_envs} and a2c.n_steps={hp.n_steps} must both be >= 1")
        if hp.iterations_per_call < 1:
            raise ValueError(f"a2c.iterations_per_call={hp.iterations_per_call} must be >= 1")
        bad = sorted(set(hp.frozen) - set(PATH_TABLE))
        if bad:
            raise ValueError(f"a2c.frozen names {bad}, which are not parameter modules; choose from "
                             f"{sorted(PATH_TABLE)}")
        return hp


@struct.dataclass
class A2CTracedHParams(TracedFields):
    """Hyperparameters that are pytree leaves (float32 scalars, or [K] for a population): carried in
    the agent state, so `jax.vmap` runs K settings in one compile. Learning rates are each group's
    peak rate; the optimizer reads them through `optax.inject_hyperparams`."""

    actor_lr: jax.Array = struct.field(pytree_node=True, default=7e-4)     # encoder, core, policy head
    critic_lr: jax.Array = struct.field(pytree_node=True, default=7e-4)    # value head
    ent_coef: jax.Array = struct.field(pytree_node=True, default=0.01)
    vf_coef: jax.Array = struct.field(pytree_node=True, default=0.5)
    gamma: jax.Array = struct.field(pytree_node=True, default=0.99)
    gae_lambda: jax.Array = struct.field(pytree_node=True, default=1.0)

    @classmethod
    def from_config(cls, config) -> A2CTracedHParams:
        """float32 scalars from `config.a2c` (defaults where a key is absent)."""
        section = dict(config.a2c)
        return cls(**{n: jnp.asarray(section.get(n, getattr(cls, n)), jnp.float32) for n in cls.names()})

    def learning_rates(self) -> dict:
        return {"actor": self.actor_lr, "critic": self.critic_lr}
