"""A gymnasium adapter for any jaxtrade env, so gymnasium users (stable-baselines3, ...) can plug it in.

    from jaxtrade.envs.gym import GymEnv
    env = GymEnv(*envs.make("portfolio", data), seed=0)   # a gymnasium.Env
    obs, info = env.reset(seed=1)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())

1. It steps the core env (`env.unwrapped`): no auto-reset inside; when an episode ends the user
   calls `reset`, as gymnasium expects (stepping a finished episode raises RuntimeError).
2. `reset` and `step` are jitted once per core env object (adapters over the same env share them);
   params (the data included) are arguments, so new params of the same shapes reuse the compiled code.
3. Keys: `reset(seed=s)` restarts the key chain at `jax.random.key(s)`; `reset()` continues it (the
   first one starts from the constructor's `seed`). Each reset and step splits one key off the
   chain, so the same seed and actions give the same trajectory.
4. observation_space: a `spaces.Dict` of unbounded Boxes, from `env.obs_spec` if the env has one,
   else from `jax.eval_shape(env.reset, ...)`. action_space: `spaces.Discrete(n)` or a `spaces.Box`,
   from `env.action_spec` if present, else from `env.discrete` / `env.action_dim`.
5. Observations and info are numpy; `terminated` and `truncated` are read from `info`.

gymnasium is a dev / peer extra: only this module imports it, and `jaxtrade.envs` never imports this
module.
"""

from __future__ import annotations

import weakref
from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium import spaces

from jaxtrade.envs.base import ContinuousSpec, DiscreteSpec, ObsSpec

_JITTED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # core env -> (reset, step)


def _jitted(core):
    if core not in _JITTED:
        _JITTED[core] = (jax.jit(core.reset), jax.jit(core.step))
    return _JITTED[core]


def _obs_spec(core, params) -> ObsSpec:
    spec = getattr(core, "obs_spec", None)
    if spec is not None:
        return spec
    obs, _ = jax.eval_shape(core.reset, jax.random.key(0), params)
    return ObsSpec.from_obs(obs)


def _action_spec(core):
    spec = getattr(core, "action_spec", None)
    if spec is not None:
        return spec
    if core.discrete:
        return DiscreteSpec(int(core.action_dim))
    return ContinuousSpec((int(core.action_dim),))


def observation_space(spec: ObsSpec) -> spaces.Dict:
    """A Dict of unbounded Boxes, one per observation entry of `spec`."""
    return spaces.Dict({name: spaces.Box(-np.inf, np.inf, shape=a.shape, dtype=np.dtype(a.dtype))
                        for name, a in spec.entries})


def action_space(spec) -> spaces.Space:
    """Discrete(n) for a `DiscreteSpec`, a float32 Box for a `ContinuousSpec`."""
    if isinstance(spec, DiscreteSpec):
        return spaces.Discrete(int(spec.n))
    if isinstance(spec, ContinuousSpec):
        return spaces.Box(spec.low, spec.high, shape=tuple(spec.shape), dtype=np.float32)
    raise TypeError(f"unknown action spec {spec!r}; expected DiscreteSpec or ContinuousSpec")


class GymEnv(gymnasium.Env):
    """One unbatched jaxtrade env as a `gymnasium.Env` (see the module docstring)."""

    metadata = {"render_modes": []}
    render_mode = None

    def __init__(self, env, params, seed: int = 0):
        self.core = getattr(env, "unwrapped", env)
        self.params = params
        self.obs_spec = _obs_spec(self.core, params)
        self.action_spec = _action_spec(self.core)
        self.observation_space = observation_space(self.obs_spec)
        self.action_space = action_space(self.action_spec)
        self._reset, self._step = _jitted(self.core)
        self._seed = int(seed)
        self._key = None
        self._state = None
        self._done = True

    def _next_key(self) -> jax.Array:
        self._key, key = jax.random.split(self._key)
        return key

    def _action(self, action) -> jax.Array:
        if isinstance(self.action_spec, DiscreteSpec):
            return jnp.asarray(int(np.asarray(action).reshape(())), jnp.int32)
        return jnp.asarray(np.asarray(action, np.float32).reshape(self.action_spec.shape))

    @staticmethod
    def _numpy(tree) -> Any:
        return jax.tree.map(np.asarray, jax.device_get(tree))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """(obs, info): a new episode. seed: restart the key chain at `jax.random.key(seed)`."""
        super().reset(seed=seed)
        if seed is not None or self._key is None:
            self._key = jax.random.key(self._seed if seed is None else int(seed))
        obs, self._state = self._reset(self._next_key(), self.params)
        self._done = False
        return self._numpy(obs), {}

    def step(self, action):
        """(obs, reward, terminated, truncated, info) of one step of the core env (no auto-reset)."""
        if self._done:
            raise RuntimeError("the episode has ended (or reset was never called): call reset() before "
                               "step()")
        obs, self._state, reward, done, info = self._step(self._next_key(), self._state, self._action(action),
                                                          self.params)
        info = self._numpy(info)
        for k in ("terminated", "truncated"):
            if k not in info:
                raise KeyError(f"GymEnv needs info[{k!r}] from the environment; it emits {sorted(info)}")
        terminated, truncated = bool(info["terminated"]), bool(info["truncated"])
        self._done = bool(done) or terminated or truncated
        return self._numpy(obs), float(reward), terminated, truncated, info
