"""Advantages and value targets of one rollout: the truncation bootstrap, then GAE (PPO's functions).

With gae_lambda = 1 (the default) GAE is the n-step return: the target of step t is
r_t + gamma r_{t+1} + ... up to the rollout's end, bootstrapped there from V(last obs), cut at a
termination, and continued through gamma * V(final obs) at a truncation (time limit).
"""

from __future__ import annotations

import jax

from jaxtrade.agents.ppo.gae import bootstrap_truncation, gae
from jaxtrade.agents.ppo.rollout import Trajectory


def advantages_and_targets(traj: Trajectory, *, gamma, lambda_,
                           bootstrap: bool = True) -> tuple[jax.Array, jax.Array]:
    """traj: reward, value, done, truncated, final_value [T, B] and last_value [B] (the other fields
    are not read). gamma, lambda_: Python numbers or traced scalars. bootstrap: add
    gamma * V(final_obs) at truncated steps (else a truncation counts as a termination).
    -> (advantages, targets), both float32 [T, B]; targets = advantages + value."""
    reward = traj.reward
    if bootstrap:
        reward = bootstrap_truncation(reward, traj.truncated, traj.final_value, gamma=gamma)
    return gae(reward, traj.value, traj.done, traj.last_value, gamma=gamma, lambda_=lambda_)
