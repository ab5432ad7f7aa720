"""gymnax environments (CartPole-v1, Pendulum-v1, Acrobot-v1, MinAtar, ...) as jaxtrade envs.

    from jaxtrade.envs.gymnax import make_gymnax
    env, params = make_gymnax("CartPole-v1")                      # EpisodeStats(AutoReset(core))
    env, params = make_gymnax("CartPole-v1", max_steps_in_episode=50)
    obs, state = env.reset(key, params)                          # obs {"state": float32 [D]}
    obs, state, reward, done, info = env.step(key, state, action, params)

So every agent can be checked against the control tasks the literature reports (benchmarks/agents.py):

1. The core steps gymnax's own `step_env` (no auto-reset) and ends an episode where gymnax does:
   `terminated` is gymnax's natural end (the pole fell), `truncated` its time limit
   (`is_truncated`: state.time >= params.max_steps_in_episode, 500 steps for CartPole-v1). An end
   that is both counts as terminated only, so nothing bootstraps from a terminal state.
   `AutoReset` restarts finished episodes, `EpisodeStats` adds info["stats"], as `envs.make` does.
2. Keys: the core passes its key to `step_env` unchanged and `reset(key)` is `reset_env(key)`, and
   `AutoReset` splits its key as gymnax's auto-resetting `step` does, so the wrapped env follows
   gymnax's own `env.step(key, ...)` trajectory bit for bit (tests/envs/test_gymnax.py checks it).
3. Observations: {"state": float32 [D]}, gymnax's observation flattened (MinAtar's [10, 10, C]
   becomes [100 C]); the MLP encoder reads a "state"-only observation (no "window"), the recurrent
   encoders (clstm, cnn_lstm) need a window and refuse it.
4. Actions: `DiscreteSpec(n)` for a gymnax Discrete space (int32 scalars), `ContinuousSpec(shape,
   low, high)` for a Box whose bounds are one number each (else ValueError).
5. `info` holds every `base.INFO_KEYS` entry with the probes' no-money shapes (N = 1): nothing is
   traded, so "episode_return" is the sum of rewards so far, "value" and "episode_growth" are that
   same return (not a financial growth), "value_before" the return before the step, "weights" all
   cash, every trade, cost and gate entry 0 / False. gymnax's own info ("discount") is not passed on.
6. `make_gymnax(name, env_kwargs=None, **params)`: `params` replace fields of gymnax's default
   `EnvParams` (an unknown field raises, naming the known ones); `env_kwargs` go to gymnax's
   constructor. Env objects compare equal by (name, env_kwargs), so jit reuses one compile for the
   same env made twice.

gymnax is part of the `dev` extra: only this module imports it, lazily, and `jaxtrade.envs` never
imports this module.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
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
from jaxtrade.envs.probes import no_trade_info  # the probes' no-money info, INFO_KEYS shapes


def _import_gymnax():
    try:
        import gymnax
    except ModuleNotFoundError as err:   # an optional dependency: say which extra brings it
        if err.name != "gymnax":         # gymnax is there but one of its own imports is not
            raise ImportError(f"gymnax is installed but importing it failed ({err}); jaxtrade's `dev` extra "
                              "installs gymnax with what it imports: pip install -e '.[dev]'") from err
        raise ImportError("jaxtrade.envs.gymnax needs the gymnax package, part of jaxtrade's `dev` extra: "
                          "pip install -e '.[dev]'") from err
    return gymnax


@struct.dataclass
class GymnaxState:
    env_state: object                           # gymnax's own EnvState
    t: jax.Array                                # int32 steps taken in this episode
    episode_return: jax.Array                   # float32 sum of rewards so far


def action_spec_of_space(space) -> DiscreteSpec | ContinuousSpec:
    """`DiscreteSpec(n)` for a gymnax Discrete space, `ContinuousSpec` for a Box with scalar bounds."""
    if hasattr(space, "n") and tuple(getattr(space, "shape", ())) == ():
        return DiscreteSpec(int(space.n))
    if hasattr(space, "low") and hasattr(space, "high"):
        bounds = []
        for name in ("low", "high"):
            values = np.unique(np.asarray(getattr(space, name), np.float64))
            if values.size != 1:
                raise ValueError(f"gymnax action space {space!r}: {name} differs across action dimensions "
                                 f"({values.tolist()}); ContinuousSpec holds one bound for all of them")
            bounds.append(float(values[0]))
        return ContinuousSpec(tuple(int(d) for d in space.shape), *bounds)
    raise TypeError(f"gymnax action space {space!r} is neither Discrete nor Box; jaxtrade agents act in "
                    "those two only")


class GymnaxCore(SpecProperties):
    """One gymnax environment, unbatched and never resetting (module docstring)."""

    def __init__(self, name: str, env_kwargs: dict | None = None):
        gymnax = _import_gymnax()
        self.name = name
        self.env_kwargs = dict(env_kwargs or {})
        if name not in gymnax.registered_envs:
            raise ValueError(f"unknown gymnax env {name!r}; gymnax has {sorted(gymnax.registered_envs)}")
        self.env, self.default_params = gymnax.make(name, **self.env_kwargs)
        self.action_spec = action_spec_of_space(self.env.action_space(self.default_params))
        obs, _ = jax.eval_shape(self.env.reset_env, jax.random.key(0), self.default_params)
        self.obs_dim = int(math.prod(obs.shape))
        self.obs_spec = ObsSpec.of({"state": ArraySpec((self.obs_dim,))})

    # Equal by name and constructor kwargs: an env object is a static jit argument.
    def _id(self):
        return (type(self), self.name, tuple(sorted((k, repr(v)) for k, v in self.env_kwargs.items())))

    def __eq__(self, other):
        return isinstance(other, GymnaxCore) and other._id() == self._id()

    def __hash__(self):
        return hash(self._id())

    def _obs(self, obs) -> dict:
        return {"state": jnp.asarray(obs, jnp.float32).reshape(self.obs_dim)}

    def _action(self, action):
        if isinstance(self.action_spec, DiscreteSpec):
            return jnp.asarray(action, jnp.int32).reshape(())
        return jnp.asarray(action, jnp.float32).reshape(self.action_spec.shape)

    def reset(self, key, params):
        obs, env_state = self.env.reset_env(key, params)
        return self._obs(obs), GymnaxState(env_state, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.float32))

    def step(self, key, state: GymnaxState, action, params):
        obs, env_state, reward, terminated, _ = self.env.step_env(key, state.env_state, self._action(action),
                                                                  params)
        reward = jnp.asarray(reward, jnp.float32).reshape(())
        terminated = jnp.asarray(terminated, bool).reshape(())
        truncated = jnp.asarray(self.env.is_truncated(env_state, params), bool).reshape(()) & ~terminated
        t = state.t + 1
        episode_return = state.episode_return + reward
        info = no_trade_info(truncated, terminated, state.episode_return, episode_return, t)
        return (self._obs(obs), GymnaxState(env_state, t, episode_return), reward, terminated | truncated,
                info)


def make_gymnax(name: str, env_kwargs: dict | None = None, **params):
    """-> (EpisodeStats(AutoReset(core)), gymnax EnvParams) for gymnax env `name` ("CartPole-v1", ...).

    params: fields of gymnax's EnvParams to replace (e.g. max_steps_in_episode=50).
    env_kwargs: keyword arguments of gymnax's env constructor.
    """
    core = GymnaxCore(name, env_kwargs)
    env_params = core.default_params
    known = set(type(env_params).__dataclass_fields__)
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"unknown {name} param(s) {unknown}; gymnax's {type(env_params).__name__} has "
                         f"{sorted(known)}")
    return EpisodeStats(AutoReset(core)), env_params.replace(**params)
