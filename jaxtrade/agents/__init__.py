"""Learning agents behind one registry (`jaxtrade.agents.registry`): importing anything from
`jaxtrade.agents` registers the built-in ones, so the frame asks the registry and names none."""

from jaxtrade.agents import a2c as _a2c
from jaxtrade.agents import dqn as _dqn
from jaxtrade.agents import ensemble as _ensemble
from jaxtrade.agents import ppo as _ppo
from jaxtrade.agents import registry


def _ppo_policy(spec, params, deterministic=True):
    return _ppo.policy_from_spec(spec.model, spec.action_spec, params, deterministic)


registry.register("ppo", make=_ppo.make, default_config=_ppo.section_config, policy_from_spec=_ppo_policy,
                  action_kinds=("discrete", "continuous"), lr_keys=("actor_lr", "critic_lr"),
                  summary="recurrent PPO: clipped surrogate, GAE with truncation bootstrap, critic epochs")
registry.register("a2c", make=_a2c.make, default_config=_a2c.section_config, policy_from_spec=_ppo_policy,
                  action_kinds=("discrete", "continuous"), lr_keys=("actor_lr", "critic_lr"),
                  summary="recurrent A2C: n-step or GAE returns, one gradient step per rollout, no clipping")


def _dqn_policy(spec, params, deterministic=True):
    return _dqn.policy_from_spec(spec.model, spec.action_spec, params, deterministic)


registry.register("dqn", make=_dqn.make, default_config=_dqn.section_config, policy_from_spec=_dqn_policy,
                  action_kinds=("discrete",), lr_keys=("lr",),
                  summary="double DQN: replay in device memory, n-step returns, target network, masks")
registry.register("ensemble", make=None, default_config=None, policy_from_spec=_ensemble.policy_from_spec,
                  action_kinds=("discrete", "continuous"),
                  summary="winner / weighted / majority combination of saved models (not trained)")

__all__ = ["registry"]
