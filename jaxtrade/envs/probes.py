"""Probe environments with known optimal values, following `jaxtrade.envs.base`'s contract.

- `constant`: reward 1 every step, truncated (not terminated) after `episode_length` steps; the
  state shows the elapsed fraction of the episode, so a critic that ignores truncation learns a value
  that falls towards the end. With the truncation bootstrap the true value is 1 / (1 - gamma) everywhere.
- `bandit`: one step; arm i pays `arm_rewards[i]`; terminated after the step.
- `target`: continuous, one step; action a [action_dim] pays -mean((a - 0.5)^2); terminated. The
  optimal (deterministic) action is 0.5 everywhere, return 0.
- `memory`: a cue in {0..n_cues-1} is shown only at the first step; at the last of `episode_length`
  steps, the action equal to the cue pays 1, anything else 0; terminated. Optimal return 1; a
  memoryless policy gets 1 / n_cues in expectation.
- `drift`: one asset whose log return each step is `drift + noise * eps` (eps ~ N(0, 1)); action
  0 = short, 1 = flat, 2 = long (position -1, 0, 1); changing the position pays `cost` per unit
  changed (log-return units); the episode starts flat and terminates after `episode_length` steps.
  Reward = position * return - cost * |change|.
  With episode_length * drift > cost the optimal policy under costs is known in closed form: go
  long at the first step and hold, expected return `drift_optimal_value(params)` =
  episode_length * drift - cost (every step of delay loses `drift`, every extra round trip 2 cost).
  The state shows (t / episode_length, position); the noise is never observed.
- `drift_continuous`: `drift` with a continuous position: action a [1] in [-1, 1] (clipped) is the
  position held; the same reward, cost per unit of position changed, and closed-form optimum (long
  1.0 from the first step and held: any smaller or later position earns less per step than its cost
  saves), for the continuous-action agents.

`make_probe(name, **kwargs) -> (env, params)` returns the auto-reset environment and its params.
Observations: {"window": float32 [window, 1] (zeros or noise), "state": float32 [S]}. Each probe
has `action_spec` and `obs_spec` and emits every `base.INFO_KEYS` entry with the market envs'
shapes for N = 1: no money moves, so "value" (and "episode_growth") is the return so far,
"weights" is all cash and every trade, cost and gate entry is 0 / False.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxtrade.envs.base import (
    ArraySpec,
    AutoReset,
    ContinuousSpec,
    DiscreteSpec,
    EpisodeStats,
    ObsSpec,
    SpecProperties,
)


@struct.dataclass
class ProbeParams:
    arm_rewards: jax.Array                      # bandit only; float32 [n_arms]
    episode_length: int = struct.field(pytree_node=False, default=8)
    drift: jax.Array = 0.01                     # drift only: mean log return per step
    noise: jax.Array = 0.02                     # drift only: std of the per-step return
    cost: jax.Array = 0.02                      # drift only: cost of one change of position


@struct.dataclass
class ProbeState:
    t: jax.Array                                # int32 steps taken in this episode
    cue: jax.Array                              # int32 (memory); the position 0 / 1 (drift)
    episode_return: jax.Array                   # float32


def no_trade_info(truncated, terminated, return_before, episode_return, t):
    zero = jnp.zeros((), jnp.float32)
    cash = jnp.array([0.0, 1.0], jnp.float32)
    return {"truncated": truncated, "terminated": terminated, "episode_return": episode_return,
            "episode_length": t, "episode_growth": episode_return, "value_before": return_before,
            "value": episode_return, "weights": cash, "weights_marked": cash, "turnover": zero,
            "costs": zero, "gate": jnp.zeros((), bool), "turbulence": zero, "turbulence_next": zero,
            "trade_closed": jnp.zeros((1,), bool), "trade_pnl": jnp.zeros((1,), jnp.float32)}


class _Probe(SpecProperties):
    action_spec = DiscreteSpec(2)
    window = 4
    state_dim = 2

    @property
    def obs_spec(self) -> ObsSpec:
        return ObsSpec.of({"window": ArraySpec((self.window, 1)), "state": ArraySpec((self.state_dim,))})

    def _obs(self, state, params):
        return {"window": jnp.zeros((self.window, 1), jnp.float32), "state": self._state_obs(state, params)}

    def reset(self, key, params):
        state = ProbeState(jnp.zeros((), jnp.int32), self._draw_cue(key), jnp.zeros((), jnp.float32))
        return self._obs(state, params), state

    def _draw_cue(self, key):
        return jnp.zeros((), jnp.int32)

    def step(self, key, state, action, params):
        reward, terminated, truncated = self._transition(state, action, params)
        t = state.t + 1
        episode_return = state.episode_return + reward
        next_state = ProbeState(t, state.cue, episode_return)
        done = terminated | truncated
        info = no_trade_info(truncated, terminated, state.episode_return, episode_return, t)
        return self._obs(next_state, params), next_state, reward, done, info


class ConstantReward(_Probe):
    def _state_obs(self, state, params):
        return jnp.stack([state.t / params.episode_length, jnp.ones(())]).astype(jnp.float32)

    def _transition(self, state, action, params):
        truncated = state.t + 1 >= params.episode_length
        return jnp.ones((), jnp.float32), jnp.zeros((), bool), truncated


class Bandit(_Probe):
    def __init__(self, n_arms: int = 2):
        self.action_spec = DiscreteSpec(n_arms)

    def _state_obs(self, state, params):
        return jnp.ones((self.state_dim,), jnp.float32)

    def _transition(self, state, action, params):
        return params.arm_rewards[action].astype(jnp.float32), jnp.ones((), bool), jnp.zeros((), bool)


class Memory(_Probe):
    def __init__(self, n_cues: int = 2):
        self.action_spec = DiscreteSpec(n_cues)
        self.state_dim = n_cues + 1

    def _draw_cue(self, key):
        return jax.random.randint(key, (), 0, self.action_dim, jnp.int32)

    def _state_obs(self, state, params):
        cue = jax.nn.one_hot(state.cue, self.action_dim) * (state.t == 0)
        return jnp.concatenate([cue, (state.t / params.episode_length)[None]]).astype(jnp.float32)

    def _transition(self, state, action, params):
        last = state.t + 1 >= params.episode_length
        reward = jnp.where(last & (action == state.cue), 1.0, 0.0).astype(jnp.float32)
        return reward, last, jnp.zeros((), bool)


class Target(_Probe):
    def __init__(self, action_dim: int = 3):
        self.action_spec = ContinuousSpec((action_dim,))

    def _state_obs(self, state, params):
        return jnp.ones((self.state_dim,), jnp.float32)

    def _transition(self, state, action, params):
        reward = -jnp.mean(jnp.square(action - 0.5)).astype(jnp.float32)
        return reward, jnp.ones((), bool), jnp.zeros((), bool)


class DriftHold(_Probe):
    """The `drift` probe (module docstring): the held position (-1, 0, 1) lives in `ProbeState.cue`."""

    action_spec = DiscreteSpec(3)

    def _state_obs(self, state, params):
        return jnp.stack([state.t / params.episode_length, state.cue]).astype(jnp.float32)

    def step(self, key, state, action, params):
        return self._hold(key, state, (jnp.clip(action, 0, 2) - 1).astype(jnp.int32), params)

    def _hold(self, key, state, position, params):
        """One step holding `position` (int32 here, float32 in `drift_continuous`): position x the
        bar's return, less cost x |change|; the position is kept in `ProbeState.cue`."""
        ret = params.drift + params.noise * jax.random.normal(key, (), jnp.float32)
        change = jnp.abs(position - state.cue).astype(jnp.float32)
        reward = (position * ret - params.cost * change).astype(jnp.float32)
        t = state.t + 1
        terminated = t >= params.episode_length
        episode_return = state.episode_return + reward
        next_state = ProbeState(t, position, episode_return)
        info = no_trade_info(jnp.zeros((), bool), terminated, state.episode_return, episode_return, t)
        return self._obs(next_state, params), next_state, reward, terminated, info


class DriftHoldContinuous(DriftHold):
    """`drift_continuous` (module docstring): the held position, float32 in [-1, 1], lives in
    `ProbeState.cue`."""

    action_spec = ContinuousSpec((1,), -1.0, 1.0)

    def reset(self, key, params):
        state = ProbeState(jnp.zeros((), jnp.int32), jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32))
        return self._obs(state, params), state

    def step(self, key, state, action, params):
        position = jnp.clip(jnp.asarray(action, jnp.float32).reshape(-1)[0], -1.0, 1.0)
        return self._hold(key, state, position, params)


def drift_optimal_value(params: ProbeParams) -> float:
    """The `drift` probe's optimal expected episode return under costs: long from the first step and
    held, episode_length * drift - cost (or 0, staying flat, if that is negative)."""
    return max(params.episode_length * float(params.drift) - float(params.cost), 0.0)


def drift_fraction_of_optimum(policy_of, env, params: ProbeParams, length: int):
    """jitted fn(params with leaves [K, ...]) -> [K]: the expected return of each member's policy
    (`policy_of(member params) -> Policy`, deterministic) over one `length`-step episode of the drift
    probe with its noise off, as a fraction of `drift_optimal_value`."""
    exact = params.replace(noise=jnp.float32(0.0))
    optimum = drift_optimal_value(params)

    @jax.jit
    def values(members):
        def one(p):
            policy = policy_of(p)
            obs, s = env.reset(jax.random.key(0), exact)
            carry, total = policy.init(), 0.0
            for t in range(length):
                action, carry = policy.act(jax.random.key(t), carry, obs)
                obs, s, reward, _, _ = env.step(jax.random.key(100 + t), s, action, exact)
                total = total + reward
            return total
        return jax.vmap(one)(members) / optimum

    return values


def make_probe(name: str, *, episode_length: int = 8, n_arms: int = 2, arm_rewards=None, n_cues: int = 2,
               action_dim: int = 3, drift: float = 0.01, noise: float = 0.02, cost: float = 0.02):
    """-> (AutoReset env, ProbeParams). name: constant | bandit | target | memory | drift |
    drift_continuous."""
    if name == "constant":
        env = ConstantReward()
    elif name == "bandit":
        env, episode_length = Bandit(n_arms), 1
    elif name == "target":
        env, episode_length = Target(action_dim), 1
    elif name == "memory":
        env = Memory(n_cues)
    elif name == "drift":
        env = DriftHold()
    elif name == "drift_continuous":
        env = DriftHoldContinuous()
    else:
        raise ValueError(f"unknown probe {name!r}; expected constant, bandit, target, memory, drift or "
                         "drift_continuous")
    if arm_rewards is None:
        arm_rewards = jnp.linspace(0.0, 1.0, n_arms)
    f32 = lambda x: jnp.asarray(x, jnp.float32)
    return EpisodeStats(AutoReset(env)), ProbeParams(f32(arm_rewards), episode_length, f32(drift), f32(noise),
                                                     f32(cost))
