"""`policy_from_spec`: a trained `QNetwork` as the unbatched `Policy` evaluators run, rebuilt from a
model config, an action spec and params alone (no env, no dqn config: model artifacts use it).

1. act (deterministic): the argmax of the masked Q values (disallowed actions never chosen).
2. dist(carry, obs) -> ({"logits": masked Q [A]}, carry): read as a distribution, that is the
   Boltzmann (softmax) policy over Q at temperature 1 in the reward's units, which is what an
   ensemble's weighted mode averages. Q gaps of a few reward units give a near-greedy distribution;
   the small gaps of log-return rewards (0.01) a near-uniform one, so such a member votes weakly there
   (a majority vote or a winner uses its argmax and is unaffected). act with deterministic=False
   samples from that same Boltzmann distribution (the training-time epsilon is not part of a model).
3. The network is memoryless (models/q_network.py): init() is the empty carry () and act/dist return
   it unchanged.
4. Whether the head is dueling is read off the params (`q_adv` present), so the spec needs nothing more.
"""

from __future__ import annotations

import functools
import json

import jax
import jax.numpy as jnp
from jax.tree_util import Partial

from jaxtrade.envs.base import Policy
from jaxtrade.models import make_q_network, mask_q, model_config_dict


@functools.lru_cache(maxsize=64)
def _policy_fns(model_json: str, action_spec, dueling: bool, deterministic: bool):
    """(init, act, dist) for one architecture, the same function objects every call, so evaluators that
    jit a policy with its functions static reuse one compile for every checkpoint of it."""
    net = make_q_network(json.loads(model_json), action_spec, dueling=dueling)

    def init():
        return ()

    def dist(params, carry, obs):
        batched = jax.tree.map(lambda x: jnp.asarray(x)[None], obs)
        q = mask_q(net.apply({"params": params}, batched), batched)[0]
        return {"logits": q}, carry

    def act(params, key, carry, obs):
        d, carry = dist(params, carry, obs)
        q = d["logits"]
        action = jnp.argmax(q, axis=-1) if deterministic else jax.random.categorical(key, q)
        return action.astype(jnp.int32), carry

    return init, act, dist


def policy_from_spec(model_config, action_spec, params, deterministic: bool = True) -> Policy:
    """model_config: plain dict (or ConfigDict) of the `model` section; params: one (unreplicated) copy
    of the online network's params. Policy.act(key, carry, obs) -> (int32 action, carry) for one
    unbatched observation; Policy.dist(carry, obs) -> ({"logits": masked Q [A]}, carry)."""
    if isinstance(params, dict) and set(params) == {"params"}:
        params = params["params"]
    model_json = json.dumps(model_config_dict(model_config), sort_keys=True, default=list)
    init, act, dist = _policy_fns(model_json, action_spec, "q_adv" in params, bool(deterministic))
    params = jax.tree.map(jnp.asarray, params)
    return Policy(Partial(init), Partial(act, params), Partial(dist, params))
