"""The environment contract shared by every environment, the auto-reset wrapper and `Policy`.

Every environment is a pure, jittable pair of functions over pytrees (gymnax style):

    obs, state = env.reset(key, params)
    obs, state, reward, done, info = env.step(key, state, action, params)

for one unbatched environment; batch with `jax.vmap`, run time with `jax.lax.scan`.

- `obs` is a dict {"window": float32 [W, D], "state": float32 [S]}: the last W rows (< t) of
  market features, flattened per row, and the agent's own portfolio state.
- `env.action_spec` (`DiscreteSpec`: int32 scalar actions in [0, n); `ContinuousSpec`: float32
  [shape]) and `env.obs_spec` (`ObsSpec`) describe them; `env.discrete` and `env.action_dim` are
  derived from the action spec (`SpecProperties`). Wrappers forward all four.
- `info` is the whole contract with the outside (nobody reads env state); fixed-shape entries:
    "truncated", "terminated"   bool; the time limit ended the episode / ruin did
    "episode_return"            float32, sum of rewards so far (valid where done)
    "episode_length"            int32 steps so far
    "episode_growth"            float32 log(value / initial value), a financial return even when
                                the reward is shaped or scaled
    "value_before", "value"     float32 value before the step's trade (at close[t]) / after the
                                step (at close[t+1], costs paid), quote currency
    "weights"                   float32 [N+1] right after the trade, at close[t]; cash last
    "weights_marked"            float32 [N+1] the same holdings marked at close[t+1]
    "turnover", "costs"         float32 traded value / value_before; costs paid (quote currency)
    "gate"                      bool, the turbulence gate overrode the action
    "turbulence"                float32 turbulence[t-1], what the gate compared
    "turbulence_next"           float32 turbulence[t], what the next step's gate compares
    "trade_closed", "trade_pnl" bool [N] / float32 [N]: a position's trade closed, its net PnL
  (N = 1 for `single` and the probes), plus "action_mask" where the action spec is masked;
  `AutoReset` adds "final_obs" (the observation the finished episode ended on) and
  `EpisodeStats` adds "stats" (that step's `TradingStats`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
from flax import struct

Obs = dict  # {"window": [W, D], "state": [S]}

# What every environment's step puts in `info` (the module docstring gives shapes and units).
INFO_KEYS = ("truncated", "terminated", "episode_return", "episode_length", "episode_growth",
             "value_before", "value", "weights", "weights_marked", "turnover", "costs", "gate",
             "turbulence", "turbulence_next", "trade_closed", "trade_pnl")


# SPECS: what an environment's actions and observations look like, as hashable, JSON-able records.
# Models are built from specs (never from an env object), and model artifacts store them.

@dataclasses.dataclass(frozen=True)
class DiscreteSpec:
    """int32 scalar actions in [0, n). masked: the env puts a bool [n] `info["action_mask"]` (and
    `obs["action_mask"]`) of the actions allowed at the next step; a masked action never executes."""

    n: int
    masked: bool = False

    def to_json(self) -> dict:
        return {"kind": "discrete", "n": int(self.n), "masked": bool(self.masked)}


@dataclasses.dataclass(frozen=True)
class ContinuousSpec:
    """float32 actions of `shape` in [low, high] (inf = unbounded)."""

    shape: tuple[int, ...]
    low: float = -math.inf
    high: float = math.inf

    def to_json(self) -> dict:
        enc = lambda x: None if not math.isfinite(x) else float(x)
        return {"kind": "continuous", "shape": [int(d) for d in self.shape], "low": enc(self.low),
                "high": enc(self.high)}


ActionSpec = DiscreteSpec | ContinuousSpec


@dataclasses.dataclass(frozen=True)
class ArraySpec:
    """One observation entry of one unbatched environment."""

    shape: tuple[int, ...]
    dtype: str = "float32"

    def to_json(self) -> dict:
        return {"shape": [int(d) for d in self.shape], "dtype": self.dtype}


@dataclasses.dataclass(frozen=True)
class ObsSpec:
    """The observation pytree: a dict of named arrays, `entries` sorted by name."""

    entries: tuple[tuple[str, ArraySpec], ...]

    @classmethod
    def of(cls, mapping: dict) -> ObsSpec:
        return cls(tuple(sorted((str(k), v) for k, v in mapping.items())))

    @classmethod
    def from_obs(cls, obs: dict) -> ObsSpec:
        """The spec of one unbatched observation (arrays or ShapeDtypeStructs)."""
        return cls.of({k: ArraySpec(tuple(int(d) for d in jnp.shape(v)), str(jnp.asarray(v).dtype)
                                    if not hasattr(v, "dtype") else str(v.dtype)) for k, v in obs.items()})

    def as_dict(self) -> dict[str, ArraySpec]:
        return dict(self.entries)

    def to_json(self) -> dict:
        return {k: v.to_json() for k, v in self.entries}


def action_spec_from_json(d: dict) -> ActionSpec:
    if d["kind"] == "discrete":
        return DiscreteSpec(int(d["n"]), bool(d.get("masked", False)))
    if d["kind"] == "continuous":
        dec = lambda x, inf: inf if x is None else float(x)
        return ContinuousSpec(tuple(int(x) for x in d["shape"]), dec(d["low"], -math.inf),
                              dec(d["high"], math.inf))
    raise ValueError(f"unknown action spec kind {d.get('kind')!r}; expected discrete or continuous")


def obs_spec_from_json(d: dict) -> ObsSpec:
    return ObsSpec.of({k: ArraySpec(tuple(int(x) for x in v["shape"]), str(v["dtype"]))
                       for k, v in d.items()})


# TRADING STATISTICS: the one typed record of per-step trading sums that every agent reports and
# the host metrics read by field name (`EpisodeStats` fills it from `info`; nothing defaults to 0).

@struct.dataclass
class TradingStats:
    """float32 sums over the steps (and environments) they cover."""

    episodes: jax.Array              # finished episodes
    episode_return_sum: jax.Array    # sum of finished episodes' returns
    episode_return_sq_sum: jax.Array
    episodes_profitable: jax.Array   # finished episodes with return > 0
    trades_closed: jax.Array
    trades_won: jax.Array            # closed trades with net PnL > 0
    costs_sum: jax.Array             # quote currency
    turnover_sum: jax.Array
    reward_sum: jax.Array
    reward_sq_sum: jax.Array

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, d: dict) -> TradingStats:
        """From a mapping holding every field (KeyError naming the first missing one otherwise)."""
        missing = [n for n in cls.names() if n not in d]
        if missing:
            raise KeyError(f"trading statistics lack {missing}; every agent must report all of "
                           f"{list(cls.names())} (wrap the env in EpisodeStats)")
        return cls(**{n: d[n] for n in cls.names()})

    def as_dict(self) -> dict:
        return {n: getattr(self, n) for n in self.names()}


def action_dim_of(spec: ActionSpec) -> int:
    """Discrete: n; continuous: the last axis of its shape (1 for a scalar)."""
    if isinstance(spec, DiscreteSpec):
        return int(spec.n)
    return int(spec.shape[-1]) if spec.shape else 1


class SpecProperties:
    """Mixin for env objects that set `action_spec`: `discrete` and `action_dim` derive from it."""

    @property
    def discrete(self) -> bool:
        return isinstance(self.action_spec, DiscreteSpec)

    @property
    def action_dim(self) -> int:
        return action_dim_of(self.action_spec)


class Env(Protocol):
    """What PPO and the evaluators need from an environment object (which holds no arrays)."""

    action_spec: ActionSpec
    obs_spec: ObsSpec
    discrete: bool        # == isinstance(action_spec, DiscreteSpec)
    action_dim: int       # discrete: n; continuous: shape[-1]

    def reset(self, key: jax.Array, params: Any) -> tuple[Obs, Any]: ...

    def step(self, key: jax.Array, state: Any, action: jax.Array, params: Any
             ) -> tuple[Obs, Any, jax.Array, jax.Array, dict]: ...


class Policy(NamedTuple):
    """A policy as evaluators see it, learned or not. Key first, one unbatched step.

    init(): the policy's initial carry (a pytree, e.g. a recurrent hidden state; None if stateless).
    act(key, carry, obs) -> (action, carry).
    dist(carry, obs) -> (params, carry): the action distribution's parameters, {"logits": [n]} or
        {"mean": [A], "log_std": [A]} (so ensembles can average probabilities); None for policies
        without one (schedules, random).
    """

    init: Callable[[], Any]
    act: Callable[[jax.Array, Any, Obs], tuple[jax.Array, Any]]
    dist: Callable[[Any, Obs], tuple[dict, Any]] | None = None


def select_tree(pred: jax.Array, on_true, on_false):
    """Leaf-wise `jnp.where(pred, a, b)` over two pytrees of the same structure."""
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


class Wrapper:
    """Base of env wrappers: forwards every attribute (specs included) to the wrapped env;
    `unwrapped` is the core env under every wrapper."""

    def __init__(self, env):
        self._env = env

    def __getattr__(self, name):
        if name == "_env":            # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self._env, name)

    # Equal by type and wrapped env, so that jit (env objects are static arguments) reuses one
    # compile for the same env made again, e.g. for every walk-forward fold.
    def __eq__(self, other):
        return type(other) is type(self) and other._env == self._env

    def __hash__(self):
        return hash((type(self), self._env))

    @property
    def unwrapped(self):
        return getattr(self._env, "unwrapped", self._env)

    def reset(self, key, params):
        return self._env.reset(key, params)


class AutoReset(Wrapper):
    """The one auto-reset wrapper of every env: wraps a core environment whose `step` never resets;
    finished episodes restart inside `step`.

    The returned obs/state are the new episode's where `done`; `info["final_obs"]` keeps the
    observation the finished episode ended on, so agents can bootstrap a truncated episode from it.

    A core env that offers `step_and_reset(key, state, action, params) -> (next_state, reward, done,
    info, fresh_state)` and `observe(state, params)` (the market and options envs) takes the fast path:
    one draw of randomness serves the step and the reset row, and the observation is computed once,
    from the selected state (`final_obs` only where the caller reads it: XLA drops it otherwise).
    Any other env is stepped and reset with split keys.
    """

    def step(self, key, state, action, params):
        env = self._env
        if hasattr(env, "step_and_reset"):
            next_state, reward, done, info, fresh = env.step_and_reset(key, state, action, params)
            new_state = select_tree(done, fresh, next_state)
            info = dict(info, final_obs=env.observe(next_state, params))
            return env.observe(new_state, params), new_state, reward, done, info
        step_key, reset_key = jax.random.split(key)
        obs, next_state, reward, done, info = env.step(step_key, state, action, params)
        reset_obs, reset_state = env.reset(reset_key, params)
        info = dict(info, final_obs=obs)
        return (select_tree(done, reset_obs, obs), select_tree(done, reset_state, next_state),
                reward, done, info)


def step_stats(reward: jax.Array, done: jax.Array, info: dict) -> TradingStats:
    """One unbatched step's `TradingStats` from `info` (KeyError names a key the env must emit).

    Needs info["episode_return"] (valid where done), info["trade_closed"] (bool [N] or scalar),
    info["trade_pnl"] (same shape), info["costs"], info["turnover"].
    """
    f32 = lambda x: jnp.asarray(x).astype(jnp.float32)
    for k in ("episode_return", "trade_closed", "trade_pnl", "costs", "turnover"):
        if k not in info:
            raise KeyError(f"EpisodeStats needs info[{k!r}] from the environment; it emits {sorted(info)}")
    ep_ret = f32(info["episode_return"])
    closed = jnp.asarray(info["trade_closed"]).astype(bool)
    pnl = f32(info["trade_pnl"])
    reward = f32(reward)
    return TradingStats(
        episodes=f32(done), episode_return_sum=jnp.where(done, ep_ret, 0.0),
        episode_return_sq_sum=jnp.where(done, ep_ret * ep_ret, 0.0),
        episodes_profitable=f32(done & (ep_ret > 0)), trades_closed=jnp.sum(f32(closed)),
        trades_won=jnp.sum(f32(closed & (pnl > 0))), costs_sum=f32(info["costs"]),
        turnover_sum=f32(info["turnover"]), reward_sum=reward, reward_sq_sum=reward * reward)


class EpisodeStats(Wrapper):
    """Wraps an (auto-resetting) environment: `info["stats"]` is that step's `TradingStats`.

    Every agent sums `info["stats"]` over its rollout; the host metrics read it by field name.
    """

    def step(self, key, state, action, params):
        obs, state, reward, done, info = self._env.step(key, state, action, params)
        return obs, state, reward, done, dict(info, stats=step_stats(reward, done, info))
