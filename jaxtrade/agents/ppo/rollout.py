"""`rollout`: `lax.scan` over `n_steps` of a batch of environments driven by the recurrent policy."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class Trajectory(NamedTuple):
    """One rollout, time-major [T, B, ...] (init_hidden and last_value: [B, ...])."""

    obs: Any                 # obs pytree, leaves [T, B, ...]
    reset: jax.Array         # bool: core state reset before obs[t] (previous step's done)
    action: jax.Array        # raw policy sample (int32 [T, B] or float32 [T, B, A])
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array        # env reward, without the truncation bootstrap
    done: jax.Array
    truncated: jax.Array
    final_value: jax.Array   # V(info["final_obs"]) from the step's recurrent state where truncated, else 0
    init_hidden: Any         # core state at the rollout's start, leaves [B, ...]
    last_value: jax.Array    # V(obs after the last step), [B]


class RolloutEnd(NamedTuple):
    env_state: Any
    obs: Any
    hidden: Any
    done: jax.Array


def env_action(action: jax.Array, *, discrete: bool, continuous_dist: str) -> jax.Array:
    """What the environment receives: the sample itself, or softmax of it (logistic-normal weights)."""
    if not discrete and continuous_dist == "logistic_normal":
        return jax.nn.softmax(action, axis=-1)
    return action


def _expand(tree):
    return jax.tree.map(lambda x: x[None], tree)


def policy_step(model, params, hidden, obs, reset):
    """One batched step, no dropout: obs leaves [B, ...] -> (hidden, dist, value [B])."""
    hidden, dist, value = model.apply(params, hidden, _expand(obs), reset[None])
    return hidden, jax.tree.map(lambda x: x[0], dist), value[0]


def rollout(env, model, params, env_state, obs, hidden, done, env_params, key, *, n_steps: int,
            env_index: jax.Array, discrete: bool, continuous_dist: str = "gaussian",
            bootstrap_truncation: bool = True):
    """Runs `n_steps` of B environments.

    params: model variables ({"params": ...}); env_state/obs/hidden/done: batched [B, ...], where
    `done` is the previous step's done (it resets the core before obs is processed).
    discrete: the action spec is discrete (from the spec, never from the env object).
    env_index: int32 [B], each environment's global index; per-step keys are
    fold_in(fold_in(key, env_index), t), so results do not depend on how envs are spread over devices.
    The env must be wrapped in `EpisodeStats` (as `envs.make` does): info["stats"] is summed.
    -> (Trajectory, RolloutEnd, stats: dict of every `TradingStats` field, float32 sums over T and B).
    """
    env_keys = jax.vmap(jax.random.fold_in, (None, 0))(key, env_index)
    vstep = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def body(carry, t):
        env_state, obs, hidden, done = carry
        step_keys = jax.vmap(jax.random.fold_in, (0, None))(env_keys, t)
        act_keys, env_keys_t = jnp.moveaxis(jax.vmap(jax.random.split)(step_keys), 1, 0)
        new_hidden, dist, value = policy_step(model, params, hidden, obs, done)
        action = jax.vmap(lambda d, k: d.sample(k))(dist, act_keys)
        log_prob = dist.log_prob(action)
        a_env = env_action(action, discrete=discrete, continuous_dist=continuous_dist)
        next_obs, next_state, reward, next_done, info = vstep(env_keys_t, env_state, a_env, env_params)
        truncated = jnp.asarray(info["truncated"]).astype(bool) & next_done
        if bootstrap_truncation:
            # V(final_obs) continues from this step's core state; only computed when some env truncated.
            final_value = jax.lax.cond(
                jnp.any(truncated),
                lambda: policy_step(model, params, new_hidden, info["final_obs"],
                                    jnp.zeros_like(next_done))[2],
                lambda: jnp.zeros_like(value))
            final_value = jnp.where(truncated, final_value, 0.0)
        else:
            final_value = jnp.zeros_like(value)
        reward = jnp.asarray(reward, jnp.float32)
        out = (obs, done, action, log_prob, value, reward, next_done, truncated, final_value,
               info["stats"])
        return (next_state, next_obs, new_hidden, next_done), out

    (env_state, obs_n, hidden_n, done_n), out = jax.lax.scan(
        body, (env_state, obs, hidden, done), jnp.arange(n_steps, dtype=jnp.int32))
    traj_obs, reset, action, log_prob, value, reward, dones, truncated, final_value, stats = out
    _, _, last_value = policy_step(model, params, hidden_n, obs_n, done_n)
    traj = Trajectory(traj_obs, reset, action, log_prob, value, reward, dones, truncated, final_value,
                      hidden, last_value)
    stats = {k: jnp.sum(v) for k, v in stats.as_dict().items()}
    return traj, RolloutEnd(env_state, obs_n, hidden_n, done_n), stats
