"""Recurrent PPO: rollout, GAE, losses, update, one pmapped training iteration."""

from jaxtrade.agents.ppo.config import PPOHParams, default_config, derived_sizes, make_model
from jaxtrade.agents.ppo.gae import bootstrap_truncation, gae
from jaxtrade.agents.ppo.iteration import (
    Carry,
    explained_variance,
    init_carry,
    init_train_state,
    make_train_iteration,
    params_identical_across_devices,
    train_iteration,
)
from jaxtrade.agents.ppo.losses import ppo_loss, value_loss
from jaxtrade.agents.ppo.optim import make_optimizer, make_schedules, param_labels
from jaxtrade.agents.ppo.policy import make_policy
from jaxtrade.agents.ppo.rollout import Trajectory, rollout
from jaxtrade.agents.ppo.update import TrainState, maybe_pmean, minibatch_indices, update

__all__ = ["Carry", "PPOHParams", "TrainState", "Trajectory", "bootstrap_truncation", "default_config",
           "derived_sizes", "explained_variance", "gae", "init_carry", "init_train_state", "make_model",
           "make_optimizer", "make_policy", "make_schedules", "make_train_iteration", "maybe_pmean",
           "minibatch_indices", "param_labels", "params_identical_across_devices", "ppo_loss",
           "rollout", "train_iteration", "update", "value_loss"]
