"""`td3.make(config, env)`: TD3 (Fujimoto et al. 2018) and DDPG (Lillicrap et al. 2016) on the agent
frame, sharing buffers, collection, checkpoints and the policy with SAC (agents/offpolicy.py).

1. TD3 is DDPG plus three changes: twin critics whose minimum forms the target (clipped double Q),
   target policy smoothing (clipped noise on the target action) and delayed actor and target updates
   (every `policy_delay` critic steps). With the three off (`n_critics=1`, `smooth_targets=False`,
   `policy_delay=1`) the update is exactly DDPG's, so DDPG is a second registration of this package
   with those defaults in its own section (`config.ddpg`), not a second copy of the code.
2. Gradient step: the critics regress on the target of `losses.py`; the critics' optimizer group
   steps every time, the actor's (and the Polyak targets, tau, over every parameter) only at steps
   whose count is a multiple of `policy_delay`, using the just-updated critics. Gradients are pmean-ed
   over the devices inside each step.
3. Exploration: a = clip(tanh(mu(s)) + exploration_noise * eps, -1, 1); the env gets
   `offpolicy.to_env_action(a)`.
4. Traced (population) hyperparameters: actor_lr, critic_lr, gamma, tau, exploration_noise,
   policy_noise, noise_clip.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxtrade.agents import devices as devices_lib
from jaxtrade.agents import offpolicy
from jaxtrade.agents.ppo.optim import Optimizer, group_tx, make_schedule
from jaxtrade.agents.ppo.update import maybe_pmean
from jaxtrade.agents.td3 import losses
from jaxtrade.agents.td3.config import TD3HParams, TracedHParams

DIAGNOSTICS = ("critic_loss", "actor_loss", "q_mean", "td_error", "grad_norm", "buffer_size", "updates",
               "any_nonfinite")
TABLE = {"actor": "actor", "critic": "critic"}


def make_optimizer(hp, table=TABLE) -> Optimizer:
    """PPO's grouped `Optimizer` over `table` (top-level param module -> group), one Adam per group
    with an injected (traced) learning rate; gradients clipped by global norm per step."""
    bad = sorted(set(hp.frozen) - set(table))
    if bad:
        raise ValueError(f"{hp.name}.frozen names {bad}, which are not parameter modules; choose from "
                         f"{sorted(table)}")
    tx = optax.inject_hyperparams(group_tx, static_args=("shape", "eps", "clip", "accum"))(
        learning_rate=1.0, shape=make_schedule("constant", 1.0, 0, 1), eps=hp.adam_eps, clip=None, accum=1)
    return Optimizer({g: tx for g in set(table.values())}, tuple(hp.frozen), hp.max_grad_norm,
                     clip_per_group=False, table=table)


def optimizer_step(opt, loss_fn, params, opt_state, lrs, group: str, axis_name):
    """One step of `group` on loss_fn(params) -> (loss, aux): gradients pmean-ed over `axis_name`.
    -> (params, opt_state, loss, aux, grad norm)."""
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    grads, loss, aux = maybe_pmean((grads, loss, aux), axis_name)
    updates, opt_state = opt.update(grads, opt_state, params, lrs, groups=(group,))
    norm = optax.tree.norm({n: grads[n] for n in opt.groups(params).get(group, ())})
    return opt.apply(params, updates, groups=(group,)), opt_state, loss, aux, norm


class TD3Agent(offpolicy.OffPolicyAgent):
    """TD3, or DDPG with `name="ddpg"` (module docstring)."""

    diagnostics = DIAGNOSTICS
    metric_names = ("critic_loss", "actor_loss", "q_mean", "td_error", "grad_norm")
    static_hparams = TD3HParams
    traced_hparams = TracedHParams
    stochastic = False

    def __init__(self, env, hp: TD3HParams, hparams: TracedHParams, model_config, action_spec, obs_spec=None):
        self.name = hp.name
        super().__init__(env, hp, hparams, model_config, action_spec, obs_spec)

    @staticmethod
    def make_optimizer(hp):
        return make_optimizer(hp)

    @staticmethod
    def learning_rates(h):
        return {"actor": h.actor_lr, "critic": h.critic_lr}

    def static_key(self, config):
        return TD3HParams.from_config(config, self.name)

    def hparams_from(self, config):
        return TracedHParams.from_config(config, self.name)

    def explore(self, params, h, keys, obs):
        mu, _ = self.actor.apply({"params": params["actor"]}, obs)
        eps = offpolicy.env_normals(keys, mu.shape[1:])
        return jnp.clip(jnp.tanh(mu) + h.exploration_noise * eps, -1.0, 1.0)

    def grad_step(self, params, target, opt_state, n_updates, batch, key, h, axis_name):
        hp, actor, critic = self.hp, self.actor, self.critic
        lrs = self.learning_rates(h)
        mu_next, _ = actor.apply({"params": target["actor"]}, batch.next_obs)
        a_next = jnp.tanh(mu_next)
        if hp.smooth_targets:
            a_next = losses.target_action(a_next, jax.random.normal(key, a_next.shape),
                                          policy_noise=h.policy_noise, noise_clip=h.noise_clip)
        q_next = critic.apply({"params": target["critic"]}, batch.next_obs, a_next)
        y = losses.twin_target(batch.ret, batch.discount, q_next)

        def critic_fn(p):
            return offpolicy.critic_loss(critic.apply({"params": p["critic"]}, batch.obs, batch.action), y)

        params, opt_state, c_loss, aux, c_norm = optimizer_step(self.opt, critic_fn, params, opt_state, lrs,
                                                                "critic", axis_name)
        n_updates = n_updates + 1

        def actor_fn(p):
            mu, _ = actor.apply({"params": p["actor"]}, batch.obs)
            return losses.actor_loss(critic.apply({"params": p["critic"]}, batch.obs, jnp.tanh(mu))), ()

        def delayed(c):
            p, o, t = c
            p, o, a_loss, _, _ = optimizer_step(self.opt, actor_fn, p, o, lrs, "actor", axis_name)
            return (p, o, offpolicy.polyak(p, t, h.tau)), a_loss

        def skip(c):
            return c, jnp.zeros((), jnp.float32)

        if hp.policy_delay == 1:        # DDPG: every step updates the actor, no branch to trace
            (params, opt_state, target), a_loss = delayed((params, opt_state, target))
        else:   # under a population's vmap the predicate is batched and both branches run (BUILD_NOTES)
            (params, opt_state, target), a_loss = jax.lax.cond(n_updates % hp.policy_delay == 0, delayed,
                                                               skip, (params, opt_state, target))
        metrics = dict(aux, critic_loss=c_loss, actor_loss=a_loss, grad_norm=c_norm,
                       nonfinite=~(jnp.isfinite(c_loss) & jnp.isfinite(a_loss)))
        return (params, target, opt_state, n_updates), metrics


def make(config, env, name: str = "td3") -> TD3Agent:
    """TD3 (name="td3") or DDPG (name="ddpg") for `env` from `config.model` and `config.<name>`."""
    spec, model_config = offpolicy.check_env(config, env, name)
    return TD3Agent(env, TD3HParams.from_config(config, name), TracedHParams.from_config(config, name),
                    model_config, spec, getattr(env, "obs_spec", None))


def make_ddpg(config, env) -> TD3Agent:
    return make(config, env, "ddpg")


def params_identical_across_devices(carry) -> bool:
    ts = carry.train_state
    return devices_lib.identical_across_devices((ts.params, ts.target_params, ts.opt_state))
