"""`a2c.make(config, env) -> A2CAgent`: the `Agent` protocol (agents/base.py) for recurrent A2C.

`A2CAgent` is `PPOAgent` with the iteration and the hyperparameters swapped: the state (PPO's
`Carry`), its placement on devices, populations, params, warm starts, checkpoints and the policy are
PPO's code, unchanged. What differs: `A2CHParams` / `A2CTracedHParams` (config.py), the optimizer built
from them through PPO's path table, and `iteration.train_iteration` (one gradient step per rollout).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxtrade.agents import devices as devices_lib
from jaxtrade.agents.a2c import iteration as iteration_lib
from jaxtrade.agents.a2c.config import A2CHParams, A2CTracedHParams
from jaxtrade.agents.base import action_spec_of
from jaxtrade.agents.ppo.agent import PPOAgent
from jaxtrade.agents.ppo.iteration import repeat_iterations
from jaxtrade.models import model_config_dict

# Health metrics: for logs, never for model selection.
DIAGNOSTICS = ("policy_loss", "value_loss", "entropy", "explained_variance", "grad_norm", "loss",
               "any_nonfinite")


class A2CAgent(PPOAgent):
    """Recurrent synchronous advantage actor-critic over one env: a `PPOAgent` whose iteration is
    `a2c.iteration.train_iteration` and whose hyperparameters are `A2CHParams` (static, `hp`) and
    `A2CTracedHParams` (traced, `hparams`). Every other protocol member is PPOAgent's."""

    name = "a2c"
    diagnostics = DIAGNOSTICS

    # CONFIGURATION
    def hparam_names(self) -> tuple[str, ...]:
        return A2CTracedHParams.names()

    def stack_hparams(self, members) -> A2CTracedHParams:
        return A2CTracedHParams.stack(members)

    @staticmethod
    def static_key(config):
        """Configs with equal static keys share one agent (and its compiled iteration)."""
        return A2CHParams.from_config(config)

    @staticmethod
    def hparams_from(config) -> A2CTracedHParams:
        return A2CTracedHParams.from_config(config)

    # STATE
    def init_population(self, keys, env_params, hparams: A2CTracedHParams, devices=None):
        """K members: keys [K] (jax.random keys), hparams leaves [K] (`A2CTracedHParams.stack`).
        -> Carry with leaves [n_devices, K, ...], placed on `devices`. Built member by member and
        stacked, for the reason PPOAgent.init_population gives."""
        devices = self._use(devices)
        self._fill_obs_spec(env_params)
        k = len(keys)
        bad = [n for n in self.hparam_names() if jnp.shape(getattr(hparams, n)) != (k,)]
        if bad:
            raise ValueError(f"init_population: hparams {bad} must have shape [K={k}] like keys "
                             "(use A2CTracedHParams.stack)")
        first = devices_lib.global_env_offset(self.hp.n_envs, devices)
        members = [self._build_jit(keys[i], env_params, jax.tree.map(lambda x, i=i: x[i], hparams),
                                   len(devices), first) for i in range(k)]
        return devices_lib.put_sharded(jax.tree.map(lambda *xs: jnp.stack(xs, axis=1), *members), devices)

    # ITERATIONS
    def _step(self):
        step = repeat_iterations(functools.partial(
            iteration_lib.train_iteration, env=self.env, model=self.model, opt=self.opt, hp=self.hp,
            discrete=self.discrete, axis_name=devices_lib.AXIS), self.hp.iterations_per_call)

        def traced(state, env_params):
            self.compiles += 1                # Python runs only while jax traces: once per compile
            return step(state, env_params)

        return traced


def make(config, env) -> A2CAgent:
    """A2C for `env` from `config.model` and `config.a2c` (hyperparameters, model, optimizer: once)."""
    return A2CAgent(env, A2CHParams.from_config(config), A2CTracedHParams.from_config(config),
                    model_config_dict(config.model), action_spec_of(env), getattr(env, "obs_spec", None))
