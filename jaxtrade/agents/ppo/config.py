"""Default `model` and `ppo` config sections; the static (`PPOHParams`) and traced (`TracedHParams`)
hyperparameters built from them once; derived sizes."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
from flax import struct

from jaxtrade.agents.base import TracedFields, static_kwargs
from jaxtrade.models import default_model_config


def default_config() -> ml_collections.ConfigDict:
    """seed, model and ppo sections (what PPO reads); full experiment configs add agent, data, env, train."""
    cfg = ml_collections.ConfigDict()
    cfg.seed = 0
    cfg.model = default_model_config()
    cfg.ppo = section_config()
    return cfg


def section_config() -> ml_collections.ConfigDict:
    """The `ppo` section with its defaults (the agent registry's default_config for "ppo")."""
    return ml_collections.ConfigDict(dict(
        n_envs=64,                   # environments per device
        n_steps=128,                 # rollout length per iteration
        update_epochs=4,
        n_minibatches=4,             # splits the env axis: n_envs * devices / n_minibatches envs each
        critic_epochs=4,             # value-head-only epochs after the PPO epochs
        gamma=0.99,
        gae_lambda=0.95,
        clip_eps=0.2,
        vf_clip=0.2,                 # value clipping range around the rollout's values; <= 0 disables
        ent_coef=0.01,
        vf_coef=0.5,
        norm_adv=True,               # per-minibatch, with statistics over all devices
        actor_lr=3e-4,               # encoder, core, policy head
        critic_lr=9e-4,              # value head
        actor_schedule="constant",   # constant | linear | cosine
        critic_schedule="constant",
        warmup_steps=0,              # linear warmup from 0, in optimizer steps of each group
        max_grad_norm=0.5,           # global-norm clip over the trainable groups (or each group's, below)
        clip_per_group=False,        # True: clip the actor's and the critic's gradient norms separately
        frozen=(),                   # parameter modules (encoder, core, policy, value) never updated
        grad_accum_steps=1,          # optax.MultiSteps: minibatches per optimizer step
        total_updates=1000,          # training iterations the schedules decay over
        iterations_per_call=1,       # k iterations lax.scan-ed inside one pmap call
        adam_eps=1e-5,
        bootstrap_truncation=True,   # reward += gamma * V(final_obs) at truncated steps
    ))


@dataclasses.dataclass(frozen=True)
class PPOHParams:
    """Static PPO hyperparameters (shapes, loop counts, schedule kinds): plain Python, hashable, built
    once from `config.ppo` by `ppo.make`. The traced ones are in `TracedHParams`."""

    n_envs: int = 64
    n_steps: int = 128
    update_epochs: int = 4
    n_minibatches: int = 4
    critic_epochs: int = 4
    norm_adv: bool = True
    actor_schedule: str = "constant"
    critic_schedule: str = "constant"
    warmup_steps: int = 0
    max_grad_norm: float = 0.5
    clip_per_group: bool = False
    frozen: tuple[str, ...] = ()
    grad_accum_steps: int = 1
    total_updates: int = 1000
    iterations_per_call: int = 1
    adam_eps: float = 1e-5
    bootstrap_truncation: bool = True
    continuous_dist: str = "gaussian"

    @classmethod
    def from_config(cls, config) -> PPOHParams:
        """From `config.ppo` (its traced keys are left to `TracedHParams`; an unknown key raises)."""
        kwargs = static_kwargs(cls, TracedHParams, config.ppo, name="ppo", exclude=("continuous_dist",))
        model = config.get("model", None)
        if model is not None and "continuous_dist" in model:
            kwargs["continuous_dist"] = model["continuous_dist"]
        hp = cls(**kwargs)
        derived_sizes(hp)
        return hp


@struct.dataclass
class TracedHParams(TracedFields):
    """Hyperparameters that are pytree leaves (float32 scalars, or [K] for a population): carried in
    the agent state, so `jax.vmap` runs K settings in one compile. Learning rates are the peak
    (post-warmup) rates of each group's schedule; the optimizer reads them through
    `optax.inject_hyperparams`."""

    actor_lr: jax.Array = struct.field(pytree_node=True, default=3e-4)     # encoder, core, policy head
    critic_lr: jax.Array = struct.field(pytree_node=True, default=9e-4)    # value head
    clip_eps: jax.Array = struct.field(pytree_node=True, default=0.2)
    vf_clip: jax.Array = struct.field(pytree_node=True, default=0.2)       # <= 0 disables value clipping
    ent_coef: jax.Array = struct.field(pytree_node=True, default=0.01)
    vf_coef: jax.Array = struct.field(pytree_node=True, default=0.5)
    gamma: jax.Array = struct.field(pytree_node=True, default=0.99)
    gae_lambda: jax.Array = struct.field(pytree_node=True, default=0.95)

    @classmethod
    def from_config(cls, config) -> TracedHParams:
        """float32 scalars from `config.ppo` (defaults where a key is absent)."""
        ppo = dict(config.ppo)
        return cls(**{n: jnp.asarray(ppo.get(n, getattr(cls, n)), jnp.float32) for n in cls.names()})

    def learning_rates(self) -> dict:
        return {"actor": self.actor_lr, "critic": self.critic_lr}


def derived_sizes(hp: PPOHParams) -> dict:
    """Minibatch sizes and optimizer steps per iteration; checks divisibility, never writes the config."""
    if hp.n_envs % hp.n_minibatches:
        raise ValueError(f"ppo.n_envs={hp.n_envs} (per device) must be divisible by "
                         f"ppo.n_minibatches={hp.n_minibatches}")
    for name, epochs in (("update_epochs", hp.update_epochs), ("critic_epochs", hp.critic_epochs)):
        if (epochs * hp.n_minibatches) % hp.grad_accum_steps:
            raise ValueError(f"ppo.{name} * ppo.n_minibatches = {epochs * hp.n_minibatches} must be divisible"
                             f" by ppo.grad_accum_steps={hp.grad_accum_steps}")
    if hp.iterations_per_call < 1:
        raise ValueError("ppo.iterations_per_call must be >= 1")
    actor_steps = hp.update_epochs * hp.n_minibatches // hp.grad_accum_steps
    critic_steps = (hp.update_epochs + hp.critic_epochs) * hp.n_minibatches // hp.grad_accum_steps
    return {"minibatch_envs": hp.n_envs // hp.n_minibatches, "actor_steps_per_iteration": actor_steps,
            "critic_steps_per_iteration": critic_steps}
