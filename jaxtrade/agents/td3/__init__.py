"""TD3 and DDPG (one package, two registrations: agent.py's docstring says why) on the agent frame."""

from jaxtrade.agents.td3.agent import (
    DIAGNOSTICS,
    TD3Agent,
    make,
    make_ddpg,
    make_optimizer,
    optimizer_step,
    params_identical_across_devices,
)
from jaxtrade.agents.td3.config import (
    TD3HParams,
    TracedHParams,
    ddpg_section_config,
    default_config,
    section_config,
)
from jaxtrade.agents.td3.losses import actor_loss, target_action, twin_target

__all__ = ["DIAGNOSTICS", "TD3Agent", "TD3HParams", "TracedHParams", "actor_loss", "ddpg_section_config",
           "default_config", "make", "make_ddpg", "make_optimizer", "optimizer_step",
           "params_identical_across_devices", "section_config", "target_action", "twin_target"]
