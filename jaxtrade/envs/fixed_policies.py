"""Fixed (not learned) policies that envs name as their baselines and constant rules: the same action
every step, one action first and another after, a schedule of targets. Pure JAX, `Partial` over
arrays, so new schedules of the same shape reuse a compiled backtest."""

from __future__ import annotations

import jax.numpy as jnp
from jax.tree_util import Partial

from jaxtrade.envs.base import Policy


def stateless_init():
    return None


def _constant_act(action, key, carry, obs):
    del key, obs
    return action, carry


def constant_policy(action, dtype=jnp.int32) -> Policy:
    """The same action every step (discrete by default: `single` holds one target position). A continuous
    action takes `jnp.result_type(float)`: float32, float64 under `jax.enable_x64` (the float64 ledgers)."""
    return Policy(init=stateless_init, act=Partial(_constant_act, jnp.asarray(action, dtype)))


def step_count_init():
    return jnp.zeros((), jnp.int32)


def _enter_then_act(first, then, key, carry, obs):
    del key
    flat = obs["state"][-1] >= 1.0 - 1e-4               # the book is all cash: at reset, or gated out
    return jnp.where(flat, first, then), carry


def enter_then_policy(first, then) -> Policy:
    """Action `first` whenever the book is all cash (`obs["state"]`, the weights with cash last: the
    first step, and the day after the turbulence gate emptied it), `then` otherwise: "choose and hold"
    that gets back in after a gated day, as the agent can."""
    return Policy(init=stateless_init, act=Partial(_enter_then_act, jnp.asarray(first), jnp.asarray(then)))


def _schedule_act(targets, keep, key, i, obs):
    del obs, key
    action = jnp.concatenate([targets[i], keep[i][None].astype(targets.dtype)])
    return action, i + 1


def schedule_policy(targets, keep) -> Policy:
    """A target-weights policy that plays step i's targets [n_steps, N + 1], or no trade where keep[i]
    (the action of `portfolio_baselines.TargetEnv`). Its carry is the step count."""
    targets = jnp.asarray(targets, jnp.result_type(float))   # float32; float64 under jax.enable_x64
    keep = jnp.asarray(keep, bool)
    return Policy(init=step_count_init, act=Partial(_schedule_act, targets, keep))


def _action_schedule_act(actions, key, i, obs):
    del obs, key
    return actions[jnp.minimum(i, actions.shape[0] - 1)], i + 1


def action_schedule_policy(actions) -> Policy:
    """The discrete action `actions[i]` (int32 [n_steps]) at step i of the episode (the last one after
    the schedule ends): a rule computed on the host from rows < t (e.g. moving averages), played in the
    agent's env. Its carry is the step count; schedules of one length share a compiled backtest."""
    return Policy(init=step_count_init, act=Partial(_action_schedule_act, jnp.asarray(actions, jnp.int32)))
