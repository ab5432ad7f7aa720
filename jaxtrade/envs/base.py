"""The environment contract shared by every environment, the auto-reset wrapper and `Policy`.

Every environment is a pure, jittable pair of functions over pytrees (gymnax style):

    obs, state = env.reset(key, params)
    obs, state, reward, done, info = env.step(key, state, action, params)

for one unbatched environment; batch with `jax.vmap`, run time with `jax.lax.scan`.

- `obs` is a dict {"window": float32 [W, D], "state": float32 [S]}: the last W rows (< t) of
  market features, flattened per row, and the agent's own portfolio state.
- Discrete actions are int32 scalars in [0, env.action_dim); continuous actions float32 [action_dim].
- `info` holds fixed-shape arrays: "truncated", "terminated" (bool), "final_obs" (obs pytree: the
  observation the finished episode ended on, set by `AutoReset`), "episode_return",
  "episode_length" (valid where done), "trade_closed", "trade_pnl", "costs", "turnover",
  "value", "gate" (the turbulence gate acted).
  Shapes and units in the market envs (`jaxtrade.envs.market`): "trade_closed" bool [N] and
  "trade_pnl" float32 [N] per asset (N = 1 for `single`; reduce over the last axis), PnL, "costs"
  and "value" in quote currency, "turnover" = traded value / value before the trade; they also add
  "episode_growth" = log(final value / initial value) (valid where done), which stays a financial
  return when the reward is shaped or scaled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

Obs = dict  # {"window": [W, D], "state": [S]}


class Env(Protocol):
    """What PPO and the evaluators need from an environment object (which holds no arrays)."""

    discrete: bool        # True: int32 actions in [0, action_dim); False: float32 vectors [action_dim]
    action_dim: int

    def reset(self, key: jax.Array, params: Any) -> tuple[Obs, Any]: ...

    def step(self, key: jax.Array, state: Any, action: jax.Array, params: Any
             ) -> tuple[Obs, Any, jax.Array, jax.Array, dict]: ...


class Policy(NamedTuple):
    """A policy as evaluators see it, learned or not.

    init(): the policy's initial carry (a pytree, e.g. a recurrent hidden state; None if stateless).
    act(carry, obs, key) -> (action, carry): one unbatched step.
    """

    init: Callable[[], Any]
    act: Callable[[Any, Obs, jax.Array], tuple[jax.Array, Any]]


def select_tree(pred: jax.Array, on_true, on_false):
    """Leaf-wise `jnp.where(pred, a, b)` over two pytrees of the same structure."""
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


class AutoReset:
    """Wraps a core environment whose `step` never resets: finished episodes restart inside `step`.

    The returned obs/state are the new episode's where `done`; `info["final_obs"]` keeps the
    observation the finished episode ended on, so PPO can bootstrap a truncated episode from it.
    """

    def __init__(self, env):
        self._env = env

    def __getattr__(self, name):
        return getattr(self._env, name)

    @property
    def unwrapped(self):
        return self._env

    def reset(self, key, params):
        return self._env.reset(key, params)

    def step(self, key, state, action, params):
        step_key, reset_key = jax.random.split(key)
        obs, next_state, reward, done, info = self._env.step(step_key, state, action, params)
        reset_obs, reset_state = self._env.reset(reset_key, params)
        info = dict(info, final_obs=obs)
        return (select_tree(done, reset_obs, obs), select_tree(done, reset_state, next_state),
                reward, done, info)
