"""Soft actor-critic (squashed Gaussian, twin critics, learned temperature) on the agent frame."""

from jaxtrade.agents.sac.agent import DIAGNOSTICS, SACAgent, make
from jaxtrade.agents.sac.config import SACHParams, TracedHParams, default_config, section_config
from jaxtrade.agents.sac.losses import actor_loss, soft_target, temperature_loss

__all__ = ["DIAGNOSTICS", "SACAgent", "SACHParams", "TracedHParams", "actor_loss", "default_config", "make",
           "section_config", "soft_target", "temperature_loss"]
