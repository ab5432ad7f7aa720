"""Epsilon-greedy acting over allowed actions, and `collect`: `lax.scan` over `n_steps` of a batch of
environments, turned into n-step `Transition`s for the replay buffer."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxtrade.agents.dqn.losses import nstep_returns
from jaxtrade.models import mask_q
from jaxtrade.models.actor_critic import MASKED_LOGIT


class Transition(NamedTuple):
    """What the replay buffer holds, one per env step (leaves [...] unbatched, [N, ...] batched)."""

    obs: Any                 # the observation acted on
    action: jax.Array        # int32 (DQN); float32 [A] squashed, in [-1, 1] (agents/offpolicy.py)
    ret: jax.Array           # float32 n-step return (losses.nstep_returns) ...
    discount: jax.Array      # ... and float32 gamma^m (0 where terminated): gamma as at collection
    next_obs: Any            # the observation the return bootstraps from


def example_transition(obs) -> Transition:
    """One unbatched transition shaped like observation `obs` (arrays or ShapeDtypeStructs)."""
    scalar = lambda dtype: jax.ShapeDtypeStruct((), dtype)
    return Transition(obs, scalar(jnp.int32), scalar(jnp.float32), scalar(jnp.float32), obs)


def epsilon_greedy(key, q, obs, epsilon):
    """One env: q [A] -> int32 action. With probability epsilon an action drawn uniformly from the
    allowed ones (obs["action_mask"]), otherwise the masked argmax."""
    explore_key, random_key = jax.random.split(key)
    masked = mask_q(q, obs)
    uniform = jnp.where(masked > MASKED_LOGIT, 0.0, MASKED_LOGIT)      # equal logits on allowed actions
    random_action = jax.random.categorical(random_key, uniform)
    greedy = jnp.argmax(masked, axis=-1)
    explore = jax.random.uniform(explore_key) < epsilon
    return jnp.where(explore, random_action, greedy).astype(jnp.int32)


def collect(env, net, params, env_state, obs, env_params, key, *, n_steps: int, env_index, epsilon,
            gamma, n_step: int):
    """Runs `n_steps` of B environments with the epsilon-greedy policy of `params` (network params):
    `collect_with` of that policy (its docstring for keys, shapes and what comes back)."""
    egreedy = jax.vmap(epsilon_greedy, in_axes=(0, 0, 0, None))

    def act(keys, obs):
        return egreedy(keys, net.apply({"params": params}, obs), obs, epsilon)

    return collect_with(env, act, env_state, obs, env_params, key, n_steps=n_steps, env_index=env_index,
                        gamma=gamma, n_step=n_step)


def collect_with(env, act, env_state, obs, env_params, key, *, n_steps: int, env_index, gamma, n_step: int,
                 env_action=None):
    """Runs `n_steps` of B environments acting with `act(keys [B], obs [B, ...]) -> actions [B, ...]`
    (what the buffer stores; the env gets `env_action(actions)` when given: the continuous agents'
    squashed actions, agents/offpolicy.py).

    env_state/obs: batched [B, ...]; env_index: int32 [B] global env indices: step t of env g acts
    and steps with the two halves of fold_in(fold_in(key, g), t), so collection does not depend on
    how envs are spread over devices. The env must be auto-reset (info["final_obs"]) and wrapped in
    `EpisodeStats` (info["stats"] is summed).
    -> (transitions: `Transition` leaves [n_steps * B, ...] (time-major order), (env_state, obs)
    after the last step, stats: every `TradingStats` field summed over T and B).
    """
    env_keys = jax.vmap(jax.random.fold_in, (None, 0))(key, env_index)
    vstep = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def body(carry, t):
        env_state, obs = carry
        step_keys = jax.vmap(jax.random.fold_in, (0, None))(env_keys, t)
        act_keys, env_keys_t = jnp.moveaxis(jax.vmap(jax.random.split)(step_keys), 1, 0)
        action = act(act_keys, obs)
        to_env = action if env_action is None else env_action(action)
        next_obs, env_state, reward, done, info = vstep(env_keys_t, env_state, to_env, env_params)
        done = jnp.asarray(done).astype(bool)
        terminated = done & ~jnp.asarray(info["truncated"]).astype(bool)
        out = (obs, action, jnp.asarray(reward, jnp.float32), done, terminated, info["final_obs"],
               info["stats"])
        return (env_state, next_obs), out

    end, (obs_t, action, reward, done, terminated, final_obs, stats) = jax.lax.scan(
        body, (env_state, obs), jnp.arange(n_steps, dtype=jnp.int32))
    ret, discount, last = nstep_returns(reward, done, terminated, gamma=gamma, n=n_step)
    batch = jnp.arange(reward.shape[1])[None, :]
    next_obs = jax.tree.map(lambda x: x[last, batch], final_obs)      # the obs after step `last`
    flat = lambda x: x.reshape((-1,) + x.shape[2:])
    transitions = jax.tree.map(flat, Transition(obs_t, action, ret, discount, next_obs))
    stats = {k: jnp.sum(v) for k, v in stats.as_dict().items()}
    return transitions, end, stats
