"""Recurrent A2C (synchronous advantage actor-critic) on PPO's rollout, returns, optimizer path table,
devices and populations: n-step or GAE returns, one gradient step per rollout, no ratio clipping."""

from jaxtrade.agents.a2c.agent import DIAGNOSTICS, A2CAgent, make
from jaxtrade.agents.a2c.config import A2CHParams, A2CTracedHParams, default_config, section_config
from jaxtrade.agents.a2c.iteration import train_iteration
from jaxtrade.agents.a2c.losses import a2c_loss
from jaxtrade.agents.a2c.returns import advantages_and_targets
from jaxtrade.agents.a2c.update import update
from jaxtrade.agents.ppo.policy import policy_from_spec

__all__ = ["DIAGNOSTICS", "A2CAgent", "A2CHParams", "A2CTracedHParams", "a2c_loss", "advantages_and_targets",
           "default_config", "make", "policy_from_spec", "section_config", "train_iteration", "update"]
