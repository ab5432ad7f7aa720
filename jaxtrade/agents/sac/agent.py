"""`sac.make(config, env) -> SACAgent`: soft actor-critic with twin critics and a learned temperature on
the agent frame (buffers, collection, checkpoints and policy shared with TD3: agents/offpolicy.py).

1. Parameters: {"actor", "critic", "log_alpha"}: the squashed-Gaussian actor (models/continuous.py,
   with its `log_std` head), `n_critics` Q networks, and log alpha (a float32 scalar starting at
   log(init_alpha)). Three optimizer groups of the same names (log alpha's: "alpha").
2. Gradient step (pmean-ed over devices): the critics on the soft target (losses.py) with the
   temperature of before the step; then the actor with the updated critics; then log alpha on the
   actor's fresh log-probabilities; then Polyak targets (tau) over every parameter (the target
   actor and log alpha are carried along unused).
3. Exploration: a sample of the tanh-Gaussian; the env gets `offpolicy.to_env_action(a)`.
4. Traced (population) hyperparameters: actor_lr, critic_lr, alpha_lr, gamma, tau, target_entropy
   (default -action_dim).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxtrade.agents import offpolicy
from jaxtrade.agents.sac import losses
from jaxtrade.agents.sac.config import SACHParams, TracedHParams
from jaxtrade.agents.td3.agent import make_optimizer, optimizer_step

DIAGNOSTICS = ("critic_loss", "actor_loss", "alpha", "entropy", "q_mean", "td_error", "grad_norm",
               "buffer_size", "updates", "any_nonfinite")
TABLE = {"actor": "actor", "critic": "critic", "log_alpha": "alpha"}


class SACAgent(offpolicy.OffPolicyAgent):
    """SAC (module docstring)."""

    name = "sac"
    diagnostics = DIAGNOSTICS
    metric_names = ("critic_loss", "actor_loss", "alpha", "entropy", "q_mean", "td_error", "grad_norm")
    static_hparams = SACHParams
    traced_hparams = TracedHParams
    stochastic = True

    @staticmethod
    def make_optimizer(hp):
        return make_optimizer(hp, TABLE)

    @staticmethod
    def learning_rates(h):
        return {"actor": h.actor_lr, "critic": h.critic_lr, "alpha": h.alpha_lr}

    def init_extra_params(self) -> dict:
        return {"log_alpha": jnp.asarray(math.log(self.hp.init_alpha), jnp.float32)}

    def hparams_from(self, config):
        return TracedHParams.from_config(config, self.action_dim)

    def _sample(self, actor_params, obs, key):
        mu, log_std = self.actor.apply({"params": actor_params}, obs)
        return offpolicy.tanh_gaussian(mu, log_std, jax.random.normal(key, mu.shape))

    def explore(self, params, h, keys, obs):
        mu, log_std = self.actor.apply({"params": params["actor"]}, obs)
        eps = offpolicy.env_normals(keys, mu.shape[1:])
        return offpolicy.tanh_gaussian(mu, log_std, eps)[0]

    def grad_step(self, params, target, opt_state, n_updates, batch, key, h, axis_name):
        critic = self.critic
        lrs = self.learning_rates(h)
        next_key, pi_key = jax.random.split(key)
        alpha = jnp.exp(params["log_alpha"])
        a_next, logp_next = self._sample(params["actor"], batch.next_obs, next_key)
        q_next = critic.apply({"params": target["critic"]}, batch.next_obs, a_next)
        y = losses.soft_target(batch.ret, batch.discount, q_next, logp_next, alpha)

        def critic_fn(p):
            return offpolicy.critic_loss(critic.apply({"params": p["critic"]}, batch.obs, batch.action), y)

        params, opt_state, c_loss, aux, c_norm = optimizer_step(self.opt, critic_fn, params, opt_state, lrs,
                                                                "critic", axis_name)

        def actor_fn(p):
            a, logp = self._sample(p["actor"], batch.obs, pi_key)
            q = critic.apply({"params": p["critic"]}, batch.obs, a)
            return losses.actor_loss(q, logp, alpha), logp

        params, opt_state, a_loss, logp, _ = optimizer_step(self.opt, actor_fn, params, opt_state, lrs,
                                                            "actor", axis_name)

        def alpha_fn(p):
            return losses.temperature_loss(p["log_alpha"], logp, h.target_entropy), ()

        params, opt_state, _, _, _ = optimizer_step(self.opt, alpha_fn, params, opt_state, lrs, "alpha",
                                                    axis_name)
        target = offpolicy.polyak(params, target, h.tau)
        metrics = dict(aux, critic_loss=c_loss, actor_loss=a_loss, grad_norm=c_norm, alpha=alpha,
                       entropy=-jnp.mean(logp), nonfinite=~(jnp.isfinite(c_loss) & jnp.isfinite(a_loss)))
        return (params, target, opt_state, n_updates + 1), metrics


def make(config, env) -> SACAgent:
    """SAC for `env` from `config.model` and `config.sac` (hyperparameters, networks, optimizer: once)."""
    spec, model_config = offpolicy.check_env(config, env, "sac")
    hparams = TracedHParams.from_config(config, int(spec.shape[0]))
    return SACAgent(env, SACHParams.from_config(config), hparams, model_config, spec,
                    getattr(env, "obs_spec", None))
