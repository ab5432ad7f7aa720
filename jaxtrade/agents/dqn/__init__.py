"""Double DQN with a target network, n-step returns, epsilon-greedy acting over allowed actions and
a replay buffer in device memory (`agents/replay.py`); `DQNAgent` implements the Agent protocol."""

from jaxtrade.agents.dqn.agent import DIAGNOSTICS, DQNAgent, make, params_identical_across_devices
from jaxtrade.agents.dqn.collect import Transition, collect, epsilon_greedy, example_transition
from jaxtrade.agents.dqn.config import (
    DQNHParams,
    TracedHParams,
    default_config,
    derived_sizes,
    epsilon,
    section_config,
)
from jaxtrade.agents.dqn.iteration import Carry, TrainState, train_iteration, update
from jaxtrade.agents.dqn.losses import nstep_returns, q_loss, td_target
from jaxtrade.agents.dqn.optim import Q_TABLE, make_optimizer
from jaxtrade.agents.dqn.policy import policy_from_spec

__all__ = ["DIAGNOSTICS", "Q_TABLE", "Carry", "DQNAgent", "DQNHParams", "TracedHParams",
           "TrainState", "Transition", "collect", "default_config", "derived_sizes", "epsilon",
           "epsilon_greedy", "example_transition", "make", "make_optimizer", "nstep_returns",
           "params_identical_across_devices", "policy_from_spec", "q_loss", "section_config", "td_target",
           "train_iteration", "update"]
