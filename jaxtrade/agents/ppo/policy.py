"""`make_policy`: a trained ActorCritic as the unbatched `Policy` evaluators run."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxtrade.agents.ppo.config import make_model
from jaxtrade.agents.ppo.rollout import env_action
from jaxtrade.envs.base import Policy


def make_policy(config, env, params, deterministic: bool = True) -> Policy:
    """params: one (unreplicated) copy of `TrainState.params`. Dropout is off; deterministic takes the
    categorical argmax or the Gaussian mean, otherwise samples with the key given to `act`.

    Policy.init() -> core state with leaves [H]; Policy.act(carry, obs, key) -> (action, carry) for one
    unbatched observation {"window": [W, D], "state": [S]}.
    """
    model = make_model(config, env)
    if isinstance(params, dict) and set(params) == {"params"}:
        params = params["params"]
    continuous_dist = config.model.get("continuous_dist", "gaussian")

    def init():
        return model.initialize_carry(())

    def act(carry, obs, key):
        obs = jax.tree.map(lambda x: jnp.asarray(x)[None], obs)
        carry, dist, _ = model.apply({"params": params}, carry, obs, jnp.zeros((1,), bool))
        dist = jax.tree.map(lambda x: x[0], dist)
        action = dist.mode() if deterministic else dist.sample(key)
        return env_action(action, discrete=env.discrete, continuous_dist=continuous_dist), carry

    return Policy(init, act)
