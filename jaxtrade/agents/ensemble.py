"""`ensemble_policy`: one `Policy` made of member policies (pure JAX; asks the env registry for hold actions).

    policy = ensemble_policy(members, "weighted", action_spec=spec, weights=softmax_weights(sharpe, 1.0))

1. Every member sees the same observation every step. The ensemble's carry is (the tuple of every
   member's carry, an int32 step counter), so a recurrent member keeps a continuous state whether or
   not it is the one trading.
2. Modes (`MODES`):
   winner    acts with member schedule[min(step, S - 1)] (schedule: int32 [S] member indices, one per
             step; a single index is a fixed winner); dist: that member's (None if a member has none).
   weighted  w: [K] non-negative weights summing to 1, normally `softmax_weights(val_sharpe,
             temperature)`. Discrete: the mixture p = sum_i w_i softmax(logits_i) (members' `dist`
             already masks their logits, so masked actions keep probability 0); deterministic: argmax p
             (the lowest action on ties), else a sample of p; dist: {"logits": log p}. Continuous: the
             mixture mean sum_i w_i mean_i, then the members' shared `env_action` transform
             (`continuous_dist`); stochastic: member i drawn with probability w_i, then its Gaussian
             sampled; dist: None (a Gaussian mixture is no single Gaussian).
   majority  discrete only: each member's deterministic action (the argmax of its logits) is one vote;
             the most voted action wins and a tie goes to `hold_action`, which the caller passes
             (`hold_action(env_config)` reads it from the env config; there is no default); dist: None.
3. The functions are module-level (one set per mode and static settings, cached) wrapped in
   `jax.tree_util.Partial` over the members and arrays, like `ppo.policy_from_spec`: `eval.backtest`
   hashes the functions as static and traces the params, so an ensemble compiles once per
   architecture, whatever its members' params, weights or schedule values.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import Partial

from jaxtrade import envs
from jaxtrade.agents import registry
from jaxtrade.agents.ppo.rollout import env_action
from jaxtrade.envs.base import ActionSpec, DiscreteSpec, Policy

MODES = ("winner", "weighted", "majority")


def softmax_weights(val_sharpe, temperature: float = 1.0) -> np.ndarray:
    """float32 [K] softmax(val_sharpe / temperature), computed in float64 (max subtracted)."""
    s = np.asarray(val_sharpe, np.float64)
    if s.ndim != 1 or not s.size or not np.all(np.isfinite(s)):
        raise ValueError(f"ensemble val_sharpe must be K finite numbers, got {s.tolist()}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"ensemble temperature must be a finite number > 0, got {temperature}")
    x = s / temperature
    e = np.exp(x - x.max())
    return (e / e.sum()).astype(np.float32)


def hold_action(env_config: dict) -> int:
    """The discrete action that ties go to in majority mode: the env's own hold action, which its
    registration knows (portfolio regimes: HOLD; options: the hold row; single: the flat position);
    ValueError (naming the env) where it has none."""
    return int(envs.hook(env_config.get("name"), "hold_action")(env_config))


def shared_continuous_dist(models) -> str:
    """The `continuous_dist` every member model config (plain dicts) uses; ValueError naming the first
    member that differs (their actions would map to the env differently)."""
    dists = [m.get("continuous_dist", "gaussian") for m in models]
    for k, d in enumerate(dists):
        if d != dists[0]:
            raise ValueError(f"ensemble member {k} has model.continuous_dist={d!r} but member 0 has "
                             f"{dists[0]!r}; members must map actions to the env alike")
    return dists[0]


# THE COMBINATOR: module-level functions of (members, arrays, key, carry, obs), one cached set per mode.

def _init(members):
    return tuple(m.init() for m in members), jnp.zeros((), jnp.int32)


def _dists(members, carry, obs):
    carries, step = carry
    out = [m.dist(c, obs) for m, c in zip(members, carries, strict=True)]
    return [d for d, _ in out], (tuple(c for _, c in out), step + 1)


def _pick(trees, index):
    return jax.tree.map(lambda *x: jnp.stack(x)[index], *trees)


def _scheduled(schedule, step):
    return schedule[jnp.minimum(step, schedule.shape[0] - 1)]


def _mixture(weights, dists):
    """[n] sum_i w_i softmax(logits_i)."""
    probs = jnp.stack([jax.nn.softmax(d["logits"], axis=-1) for d in dists])
    return jnp.tensordot(weights, probs, axes=1)


@functools.lru_cache(maxsize=64)
def _fns(mode: str, discrete: bool, continuous_dist: str, deterministic: bool, hold: int | None):
    """(act, dist) of one mode and static settings, the same function objects every call."""

    def act_winner(members, schedule, key, carry, obs):
        carries, step = carry
        keys = jax.random.split(key, len(members))
        out = [m.act(k, c, obs) for m, k, c in zip(members, keys, carries, strict=True)]
        action = _pick([a for a, _ in out], _scheduled(schedule, step))
        return action, (tuple(c for _, c in out), step + 1)

    def dist_winner(members, schedule, carry, obs):
        dists, carry_next = _dists(members, carry, obs)
        return _pick(dists, _scheduled(schedule, carry[1])), carry_next

    def act_weighted(members, weights, key, carry, obs):
        dists, carry = _dists(members, carry, obs)
        if discrete:
            p = _mixture(weights, dists)
            action = jnp.argmax(p) if deterministic else jax.random.categorical(key, jnp.log(p))
            return action.astype(jnp.int32), carry
        means = jnp.stack([d["mean"] for d in dists])                      # [K, A]
        if deterministic:
            raw = jnp.tensordot(weights, means, axes=1)
        else:
            pick_key, noise_key = jax.random.split(key)
            i = jax.random.categorical(pick_key, jnp.log(weights))
            std = jnp.exp(jnp.stack([d["log_std"] for d in dists]))[i]
            raw = means[i] + std * jax.random.normal(noise_key, means.shape[1:], means.dtype)
        return env_action(raw, discrete=False, continuous_dist=continuous_dist), carry

    def dist_weighted(members, weights, carry, obs):
        dists, carry = _dists(members, carry, obs)
        return {"logits": jnp.log(_mixture(weights, dists))}, carry

    def act_majority(members, key, carry, obs):
        dists, carry = _dists(members, carry, obs)
        n = dists[0]["logits"].shape[-1]
        votes = sum(jax.nn.one_hot(jnp.argmax(d["logits"]), n, dtype=jnp.int32) for d in dists)
        tie = jnp.sum(votes == jnp.max(votes)) > 1
        return jnp.where(tie, hold, jnp.argmax(votes)).astype(jnp.int32), carry

    return {"winner": (act_winner, dist_winner),
            "weighted": (act_weighted, dist_weighted if discrete else None),
            "majority": (act_majority, None)}[mode]


def ensemble_policy(members, mode: str, *, action_spec: ActionSpec, weights=None, schedule=None,
                    hold_action: int | None = None, continuous_dist: str = "gaussian",
                    deterministic: bool = True) -> Policy:
    """The ensemble `Policy` of `members` (a sequence of K `Policy`, all for `action_spec`); see the
    module docstring for the modes.

    winner: schedule, an int or int [S] of member indices per step (the last one holds after S steps).
    weighted: weights, [K] >= 0 summing to 1 (`softmax_weights`); continuous_dist: the members' shared
        one (`shared_continuous_dist`); deterministic: argmax / mixture mean, else a mixture sample.
    majority: hold_action, the discrete action ties go to (`hold_action(env_config)`).
    Policy.init() -> (member carries, step); act(key, carry, obs) -> (action, carry).
    """
    members = tuple(members)
    if mode not in MODES:
        raise ValueError(f"ensemble mode {mode!r} is not one of {MODES}")
    if not members or not all(isinstance(m, Policy) for m in members):
        raise ValueError("an ensemble needs one or more member Policy objects")
    given = {"weights": weights, "schedule": schedule, "hold_action": hold_action}
    needed = {"winner": "schedule", "weighted": "weights", "majority": "hold_action"}[mode]
    extra = [k for k, v in given.items() if v is not None and k != needed]
    if given[needed] is None or extra:
        raise ValueError(f"ensemble mode {mode!r} needs {needed}=..."
                         + (f" and takes no {extra}" if extra else ""))
    discrete = isinstance(action_spec, DiscreteSpec)
    if mode != "winner":
        no_dist = [k for k, m in enumerate(members) if m.dist is None]
        if no_dist:
            raise ValueError(f"ensemble members {no_dist} have no Policy.dist, which mode {mode!r} needs")
    k = len(members)
    if mode == "winner":
        arrays = jnp.asarray(np.asarray(schedule, np.int64).reshape(-1), jnp.int32)
        if not arrays.size or int(arrays.min()) < 0 or int(arrays.max()) >= k:
            raise ValueError(f"ensemble schedule must hold member indices in [0, {k}), got {schedule}")
    elif mode == "weighted":
        w = np.asarray(weights, np.float64)
        if w.shape != (k,) or not np.all(np.isfinite(w)) or np.any(w < 0) or abs(w.sum() - 1) > 1e-5:
            raise ValueError(f"ensemble weights must be {k} non-negative numbers summing to 1, got "
                             f"{w.tolist()} (use softmax_weights(val_sharpe, temperature))")
        arrays = jnp.asarray(w, jnp.float32)
    else:
        if not discrete:
            raise ValueError("ensemble mode 'majority' needs discrete actions (votes); for continuous "
                             "actions use 'weighted' or 'winner'")
        if not 0 <= int(hold_action) < action_spec.n:
            raise ValueError(f"hold_action={hold_action} is not an action of {action_spec}")
        hold_action = int(hold_action)
    act, dist = _fns(mode, discrete, str(continuous_dist), bool(deterministic),
                     hold_action if mode == "majority" else None)
    if any(m.dist is None for m in members):
        dist = None                                  # winner over members without a distribution
    args = (members,) if mode == "majority" else (members, arrays)
    return Policy(Partial(_init, members), Partial(act, *args),
                  None if dist is None else Partial(dist, *args))


def ensemble_from_spec(members, model: dict, *, action_spec: ActionSpec, env_config: dict,
                       continuous_dist: str = "gaussian", deterministic: bool = True,
                       schedule=None) -> Policy:
    """The ensemble Policy an ensemble artifact's `model` section describes ({"mode", "temperature",
    "val_sharpe", "active", ...}): winner trades `schedule` (default: the fixed winner "active"),
    weighted uses softmax(val_sharpe / temperature), majority breaks ties to `hold_action(env_config)`."""
    mode = model["mode"]
    if len(model["val_sharpe"]) != len(members):
        raise ValueError(f"the ensemble lists {len(model['val_sharpe'])} validation Sharpes for "
                         f"{len(members)} members")
    kw = {"winner": lambda: {"schedule": model["active"] if schedule is None else schedule},
          "weighted": lambda: {"weights": softmax_weights(model["val_sharpe"], model["temperature"])},
          "majority": lambda: {"hold_action": hold_action(env_config)}}
    if mode not in kw:
        raise ValueError(f"ensemble mode {mode!r} is not one of {MODES}")
    return ensemble_policy(members, mode, action_spec=action_spec, continuous_dist=continuous_dist,
                           deterministic=deterministic, **kw[mode]())


def policy_from_spec(spec, members, deterministic: bool = True, *, schedule=None) -> Policy:
    """The Policy of an ensemble artifact's `spec` (agent "ensemble") over `members`, a list of
    (member ModelSpec, member params): each member is rebuilt through the agent registry (any agent),
    then combined as `spec.model` says (the registry's rebuild for "ensemble")."""
    policies, specs = [], []
    for k, (m_spec, m_params) in enumerate(members):
        if m_spec.agent == "ensemble":
            raise ValueError(f"ensemble member {k} is itself an ensemble, which is not supported; build one "
                             "ensemble from the inner ensemble's members")
        policies.append(registry.policy_from_spec(m_spec, m_params, deterministic))
        specs.append(m_spec)
    dist = shared_continuous_dist([m.model for m in specs])
    return ensemble_from_spec(policies, spec.model, action_spec=spec.action_spec, env_config=spec.env,
                              continuous_dist=dist, deterministic=deterministic, schedule=schedule)
