"""`a2c.make(config, env) -> A2CAgent`: the `Agent` protocol (agents/base.py) for recurrent A2C.

`A2CAgent` is `PPOAgent` with the iteration and the hyperparameters swapped: the state (PPO's
`Carry`), its placement on devices, populations, params, warm starts, checkpoints and the policy are
PPO's code, unchanged. What differs: `A2CHParams` / `A2CTracedHParams` (config.py), the optimizer built
from them through PPO's path table, and `iteration.train_iteration` (one gradient step per rollout).
"""

from __future__ import annotations

from jaxtrade.agents.a2c import iteration as iteration_lib
from jaxtrade.agents.a2c.config import A2CHParams, A2CTracedHParams
from jaxtrade.agents.base import action_spec_of
from jaxtrade.agents.ppo.agent import PPOAgent
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

    static_hparams = A2CHParams
    traced_hparams = A2CTracedHParams
    train_iteration = staticmethod(iteration_lib.train_iteration)


def make(config, env) -> A2CAgent:
    """A2C for `env` from `config.model` and `config.a2c` (hyperparameters, model, optimizer: once)."""
    return A2CAgent(env, A2CHParams.from_config(config), A2CTracedHParams.from_config(config),
                    model_config_dict(config.model), action_spec_of(env), getattr(env, "obs_spec", None))
