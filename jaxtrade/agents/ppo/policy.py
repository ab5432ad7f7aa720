"""`make_policy`: a trained ActorCritic as the unbatched `Policy` evaluators run."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax.tree_util import Partial

from jaxtrade.agents.ppo.config import make_model
from jaxtrade.agents.ppo.rollout import env_action
from jaxtrade.envs.base import Policy


@functools.lru_cache(maxsize=64)
def _policy_fns(model, discrete: bool, continuous_dist: str, deterministic: bool):
    """(init, act) for one architecture, the same function objects every call.

    Evaluators jit a policy with its functions as static arguments and its params as traced ones
    (`jax.tree_util.Partial`), so a new checkpoint of the same architecture reuses the compiled
    backtest instead of compiling it again.
    """

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


def make_policy(config, env, params, deterministic: bool = True) -> Policy:
    """params: one (unreplicated) copy of `TrainState.params`. Dropout is off; deterministic takes the
    categorical argmax or the Gaussian mean, otherwise samples with the key given to `act`.

    Policy.init() -> core state with leaves [H]; Policy.act(key, carry, obs) -> (action, carry) for one
    unbatched observation {"window": [W, D], "state": [S]}.
    """
    if isinstance(params, dict) and set(params) == {"params"}:
        params = params["params"]
    init, act, dist = _policy_fns(make_model(config, env), bool(env.discrete),
                                  config.model.get("continuous_dist", "gaussian"), bool(deterministic))
    params = jax.tree.map(jnp.asarray, params)
    return Policy(Partial(init), Partial(act, params), Partial(dist, params))
