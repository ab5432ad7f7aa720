"""Recurrent PPO: rollout, GAE, losses, update, one pmapped training iteration, the `PPOAgent`."""

from jaxtrade.agents.ppo.agent import (
    DIAGNOSTICS,
    PPOAgent,
    make,
    params_identical_across_devices,
)
from jaxtrade.agents.ppo.config import (
    PPOHParams,
    TracedHParams,
    default_config,
    derived_sizes,
    section_config,
)
from jaxtrade.agents.ppo.gae import bootstrap_truncation, gae
from jaxtrade.agents.ppo.iteration import Carry, explained_variance, train_iteration
from jaxtrade.agents.ppo.losses import ppo_loss, value_loss
from jaxtrade.agents.ppo.optim import PATH_TABLE, Optimizer, make_optimizer, make_schedules, param_labels
from jaxtrade.agents.ppo.policy import policy_from_spec
from jaxtrade.agents.ppo.rollout import Trajectory, rollout
from jaxtrade.agents.ppo.update import TrainState, all_finite, maybe_pmean, minibatch_indices, update

__all__ = ["DIAGNOSTICS", "PATH_TABLE", "Carry", "Optimizer", "PPOAgent", "PPOHParams", "TracedHParams",
           "TrainState", "Trajectory", "all_finite", "bootstrap_truncation", "default_config",
           "derived_sizes", "explained_variance", "gae", "make", "make_optimizer",
           "make_schedules", "maybe_pmean", "minibatch_indices",
           "param_labels", "params_identical_across_devices", "policy_from_spec", "ppo_loss", "rollout",
           "section_config", "train_iteration", "update", "value_loss"]
