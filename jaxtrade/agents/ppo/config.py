"""Default `model` and `ppo` config sections, the frozen hyperparameters built from them, derived sizes."""

from __future__ import annotations

import dataclasses

import ml_collections

from jaxtrade.models import ActorCritic


def default_config() -> ml_collections.ConfigDict:
    """seed, model and ppo sections. Full experiment configs add data, env, train; PPO reads only these."""
    cfg = ml_collections.ConfigDict()
    cfg.seed = 0
    cfg.model = ml_collections.ConfigDict(dict(
        encoder="mlp",               # mlp | clstm
        core="gru",                  # gru | lstm | mlp (memoryless control)
        hidden_dim=256,
        n_layers=2,                  # recurrent core layers
        encoder_layers=2,            # MLP encoder layers
        head_layers=1,               # hidden layers of each head
        dropout=0.1,                 # encoder dropout in update passes only (rollouts are deterministic)
        n_heads=8,                   # clstm attention heads
        compute_dtype="float32",     # float32 | bfloat16; parameters stay float32
        init_log_std=-0.5,           # continuous actions: initial log std of the Gaussian
        continuous_dist="gaussian",  # gaussian | logistic_normal (env sees softmax of the Gaussian sample)
    ))
    cfg.ppo = ml_collections.ConfigDict(dict(
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
        max_grad_norm=0.5,
        grad_accum_steps=1,          # optax.MultiSteps: minibatches per optimizer step
        total_updates=1000,          # training iterations the schedules decay over
        iterations_per_call=1,       # k iterations lax.scan-ed inside one pmap call
        adam_eps=1e-5,
        bootstrap_truncation=True,   # reward += gamma * V(final_obs) at truncated steps
    ))
    return cfg


@dataclasses.dataclass(frozen=True)
class PPOHParams:
    """Plain-Python PPO hyperparameters, built once from `config.ppo`; hashable, so it can be static."""

    n_envs: int = 64
    n_steps: int = 128
    update_epochs: int = 4
    n_minibatches: int = 4
    critic_epochs: int = 4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    vf_clip: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    norm_adv: bool = True
    actor_lr: float = 3e-4
    critic_lr: float = 9e-4
    actor_schedule: str = "constant"
    critic_schedule: str = "constant"
    warmup_steps: int = 0
    max_grad_norm: float = 0.5
    grad_accum_steps: int = 1
    total_updates: int = 1000
    iterations_per_call: int = 1
    adam_eps: float = 1e-5
    bootstrap_truncation: bool = True
    continuous_dist: str = "gaussian"

    @classmethod
    def from_config(cls, config) -> PPOHParams:
        fields = {f.name for f in dataclasses.fields(cls)}
        ppo = {k: v for k, v in dict(config.ppo).items() if k in fields}
        model = config.get("model", None)
        if model is not None and "continuous_dist" in model:
            ppo["continuous_dist"] = model.continuous_dist
        hp = cls(**ppo)
        derived_sizes(hp)
        return hp


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


def make_model(config, env) -> ActorCritic:
    """The `ActorCritic` described by `config.model` for `env`'s action space."""
    m = config.model
    return ActorCritic(action_dim=env.action_dim, discrete=bool(env.discrete), encoder_type=m.encoder,
                       core_type=m.core, hidden_dim=m.hidden_dim, n_layers=m.n_layers,
                       encoder_layers=m.get("encoder_layers", m.n_layers),
                       head_layers=m.get("head_layers", 1),
                       dropout=m.dropout, n_heads=m.n_heads, init_log_std=m.get("init_log_std", -0.5),
                       compute_dtype=m.compute_dtype)
