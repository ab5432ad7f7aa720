"""Learning agents behind one registry (`jaxtrade.agents.registry`): importing anything from
`jaxtrade.agents` registers the built-in ones, so the frame asks the registry and names none."""

from jaxtrade.agents import a2c as _a2c
from jaxtrade.agents import dqn as _dqn
from jaxtrade.agents import ensemble as _ensemble
from jaxtrade.agents import offpolicy as _offpolicy
from jaxtrade.agents import ppo as _ppo
from jaxtrade.agents import registry
from jaxtrade.agents import sac as _sac
from jaxtrade.agents import td3 as _td3


def _ppo_policy(spec, params, deterministic=True):
    return _ppo.policy_from_spec(spec.model, spec.action_spec, params, deterministic)


registry.register("ppo", make=_ppo.make, default_config=_ppo.section_config, policy_from_spec=_ppo_policy,
                  action_kinds=("discrete", "continuous"), lr_keys=("actor_lr", "critic_lr"),
                  search_space=dict(actor_lr="log:3e-5:3e-3", critic_lr="log:1e-4:1e-2",
                                    ent_coef="log:1e-4:5e-2", clip_eps="float:0.1:0.3"),
                  summary="recurrent PPO: clipped surrogate, GAE with truncation bootstrap, critic epochs")
registry.register("a2c", make=_a2c.make, default_config=_a2c.section_config, policy_from_spec=_ppo_policy,
                  action_kinds=("discrete", "continuous"), lr_keys=("actor_lr", "critic_lr"),
                  search_space=dict(actor_lr="log:3e-5:3e-3", critic_lr="log:1e-4:1e-2",
                                    ent_coef="log:1e-4:5e-2"),
                  summary="recurrent A2C: n-step or GAE returns, one gradient step per rollout, no clipping")


def _dqn_policy(spec, params, deterministic=True):
    return _dqn.policy_from_spec(spec.model, spec.action_spec, params, deterministic)


registry.register("dqn", make=_dqn.make, default_config=_dqn.section_config, policy_from_spec=_dqn_policy,
                  action_kinds=("discrete",), lr_keys=("lr",),
                  search_space=dict(lr="log:3e-5:3e-3", tau="log:1e-3:5e-2"),
                  summary="double DQN: replay in device memory, n-step returns, target network, masks")


def _offpolicy_policy(spec, params, deterministic=True):
    return _offpolicy.policy_from_spec(spec.model, spec.action_spec, params, deterministic)


registry.register("ddpg", make=_td3.make_ddpg, default_config=_td3.ddpg_section_config,
                  policy_from_spec=_offpolicy_policy, action_kinds=("continuous",),
                  lr_keys=("actor_lr", "critic_lr"),
                  search_space=dict(actor_lr="log:3e-5:3e-3", critic_lr="log:1e-4:1e-2", tau="log:1e-3:5e-2",
                                    exploration_noise="float:0.05:0.4"),
                  summary="DDPG: deterministic tanh actor, one critic, Gaussian exploration, Polyak targets")
registry.register("td3", make=_td3.make, default_config=_td3.section_config,
                  policy_from_spec=_offpolicy_policy,
                  action_kinds=("continuous",), lr_keys=("actor_lr", "critic_lr"),
                  search_space=dict(actor_lr="log:3e-5:3e-3", critic_lr="log:1e-4:1e-2", tau="log:1e-3:5e-2",
                                    exploration_noise="float:0.05:0.4"),
                  summary="TD3: DDPG with twin critics, target policy smoothing, delayed actor and targets")
registry.register("sac", make=_sac.make, default_config=_sac.section_config,
                  policy_from_spec=_offpolicy_policy,
                  action_kinds=("continuous",), lr_keys=("actor_lr", "critic_lr", "alpha_lr"),
                  search_space=dict(actor_lr="log:3e-5:3e-3", critic_lr="log:1e-4:1e-2",
                                    alpha_lr="log:1e-4:1e-2", tau="log:1e-3:5e-2"),
                  summary="SAC: tanh-Gaussian actor, twin critics, learned temperature, Polyak targets")
registry.register("ensemble", make=None, default_config=None, policy_from_spec=_ensemble.policy_from_spec,
                  action_kinds=("discrete", "continuous"),
                  summary="winner / weighted / majority combination of saved models (not trained)")

__all__ = ["registry"]
