"""`policy_from_spec`: a trained ActorCritic as the unbatched `Policy` evaluators run, rebuilt from a
model config, an action spec and params alone (no env: model artifacts use it)."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax.tree_util import Partial

from jaxtrade.agents.ppo.rollout import env_action
from jaxtrade.envs.base import Policy
from jaxtrade.models import action_head, make_model, model_config_dict


def _hashable(model_config) -> tuple:
    d = model_config_dict(model_config)
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in d.items()))


@functools.lru_cache(maxsize=64)
def _policy_fns(model_config: tuple, action_spec, deterministic: bool):
    """(init, act, dist) for one architecture, the same function objects every call.

    Evaluators jit a policy with its functions as static arguments and its params as traced ones
    (`jax.tree_util.Partial`), so a new checkpoint of the same architecture reuses the compiled
    backtest instead of compiling it again.
    """
    config = dict(model_config)
    model = make_model(config, action_spec)
    _, discrete = action_head(action_spec)
    continuous_dist = config.get("continuous_dist", "gaussian")

    def init():
        return model.initialize_carry(())

    def dist(params, carry, obs):
        obs = jax.tree.map(lambda x: jnp.asarray(x)[None], obs)
        carry, d, _ = model.apply({"params": params}, carry, obs, jnp.zeros((1,), bool))
        return jax.tree.map(lambda x: x[0], d), carry

    def act(params, key, carry, obs):
        d, carry = dist(params, carry, obs)
        action = d.mode() if deterministic else d.sample(key)
        return env_action(action, discrete=discrete, continuous_dist=continuous_dist), carry

    def dist_params(params, carry, obs):
        d, carry = dist(params, carry, obs)
        return {f.name: getattr(d, f.name) for f in dataclasses.fields(d)}, carry

    return init, act, dist_params


def policy_from_spec(model_config, action_spec, params, deterministic: bool = True) -> Policy:
    """model_config: plain dict (or ConfigDict) of the `model` section; params: one (unreplicated)
    copy of `TrainState.params`. Dropout is off; deterministic takes the categorical argmax or the
    Gaussian mean, otherwise samples with the key given to `act`.

    Policy.init() -> core state with leaves [H]; Policy.act(key, carry, obs) -> (action, carry) for one
    unbatched observation; Policy.dist(carry, obs) -> ({"logits"} or {"mean", "log_std"}, carry).
    """
    if isinstance(params, dict) and set(params) == {"params"}:
        params = params["params"]
    init, act, dist = _policy_fns(_hashable(model_config), action_spec, bool(deterministic))
    params = jax.tree.map(jnp.asarray, params)
    return Policy(Partial(init), Partial(act, params), Partial(dist, params))
