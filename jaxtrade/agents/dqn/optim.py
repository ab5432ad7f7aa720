"""DQN's optimizer: PPO's grouped `Optimizer` (agents/ppo/optim.py) over DQN's own path table.

1. `Q_TABLE` maps every top-level module of a `QNetwork` to the group "q": the Q heads (`q`, or
   `q_value` and `q_adv`) are their own group, trained together with the encoder and core they read.
   `dqn.frozen` moves modules out of it (`optax.set_to_zero()`, no optimizer state).
2. The group is PPO's group transformation (`inject_hyperparams` over Adam whose rate is the injected
   peak rate times the `dqn.lr_schedule` shape: constant, linear or cosine to 0 over
   `dqn.total_updates` iterations of gradient steps). `TracedHParams.lr` is written into the injected
   "learning_rate" at every step (`ppo.optim.set_learning_rates`), so a population of K rates shares
   one compiled update. Gradients are clipped by their global norm first.
3. It is PPO's `Optimizer` itself, given `Q_TABLE` as its path table.
"""

from __future__ import annotations

import optax

from jaxtrade.agents.dqn.config import DQNHParams, derived_sizes
from jaxtrade.agents.ppo.optim import Optimizer, group_tx, make_schedule

Q_TABLE = {"encoder": "q", "core": "q", "q": "q", "q_value": "q", "q_adv": "q"}
TRAINABLE = ("q",)


def make_optimizer(hp: DQNHParams) -> Optimizer:
    """The optimizer for `hp` (built once by `dqn.make`)."""
    bad = sorted(set(hp.frozen) - set(Q_TABLE))
    if bad:
        raise ValueError(f"dqn.frozen names {bad}, which are not parameter modules; choose from "
                         f"{sorted(Q_TABLE)}")
    adam = optax.inject_hyperparams(group_tx, static_args=("shape", "eps", "clip", "accum"))(
        learning_rate=1.0, shape=lr_shape(hp), eps=hp.adam_eps, clip=None, accum=1)
    return Optimizer({"q": adam}, tuple(hp.frozen), hp.max_grad_norm, clip_per_group=False, table=Q_TABLE)


def lr_shape(hp: DQNHParams) -> optax.Schedule:
    """The learning rate's shape for a peak of 1, over gradient steps (rate = lr * shape(step))."""
    steps = hp.total_updates * derived_sizes(hp)["updates_per_iteration"]
    return make_schedule(hp.lr_schedule, 1.0, 0, steps)
