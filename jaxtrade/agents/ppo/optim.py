"""One optimizer for actor and critic: global-norm clipping, then `optax.multi_transform` with an
`actor` group (encoder, core, policy head) and a `critic` group (value head), each Adam with its own
learning rate and schedule, all inside `optax.MultiSteps` for gradient accumulation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxtrade.agents.ppo.config import PPOHParams, derived_sizes


def _group(path, _):
    """Value head -> critic; encoder, core, policy -> actor. Only the top-level name counts (an
    attention layer inside the encoder also has a `value` submodule)."""
    keys = [k.key for k in path if hasattr(k, "key")]
    if keys and keys[0] == "params":
        keys = keys[1:]
    return "critic" if keys and keys[0] == "value" else "actor"


def param_labels(params):
    """Pytree of "actor" / "critic" labels with the structure of `params`."""
    return jax.tree_util.tree_map_with_path(_group, params)


def make_schedule(kind: str, lr: float, warmup_steps: int, total_steps: int) -> optax.Schedule:
    """constant | linear (to 0) | cosine (to 0) over total_steps, after a linear warmup from 0."""
    decay_steps = max(int(total_steps) - int(warmup_steps), 1)
    if kind == "constant":
        main = optax.constant_schedule(lr)
    elif kind == "linear":
        main = optax.linear_schedule(lr, 0.0, decay_steps)
    elif kind == "cosine":
        main = optax.cosine_decay_schedule(lr, decay_steps)
    else:
        raise ValueError(f"unknown schedule {kind!r}; expected constant, linear or cosine")
    if warmup_steps <= 0:
        return main
    warmup = optax.linear_schedule(0.0, lr, int(warmup_steps))
    return optax.join_schedules([warmup, main], [int(warmup_steps)])


def make_schedules(hp: PPOHParams) -> dict:
    """{"actor": schedule, "critic": schedule}, each over that group's own optimizer steps."""
    sizes = derived_sizes(hp)
    return {"actor": make_schedule(hp.actor_schedule, hp.actor_lr, hp.warmup_steps,
                                   hp.total_updates * sizes["actor_steps_per_iteration"]),
            "critic": make_schedule(hp.critic_schedule, hp.critic_lr, hp.warmup_steps,
                                    hp.total_updates * sizes["critic_steps_per_iteration"])}


def make_optimizer(hp: PPOHParams) -> optax.GradientTransformation:
    schedules = make_schedules(hp)
    groups = {name: optax.adam(schedule, eps=hp.adam_eps) for name, schedule in schedules.items()}
    tx = optax.chain(optax.clip_by_global_norm(hp.max_grad_norm), optax.multi_transform(groups, param_labels))
    if hp.grad_accum_steps == 1:   # MultiSteps with k=1 is the identity plus a cond: skip it, compiles faster
        return tx
    return optax.MultiSteps(tx, every_k_schedule=hp.grad_accum_steps)


def keep_actor_state(old_state, new_state):
    """`new_state` with the actor group's inner state (Adam moments, step counts) taken from `old_state`.

    Critic epochs feed zero actor gradients; without this, Adam's momentum would still move the actor
    and its schedule would advance.
    """
    def pick(path, old, new):
        names = [getattr(k, "name", getattr(k, "key", None)) for k in path]
        in_actor = any(a == "inner_states" and b == "actor" for a, b in zip(names, names[1:], strict=False))
        return old if in_actor else new
    return jax.tree_util.tree_map_with_path(pick, old_state, new_state)


def zero_actor(tree, params):
    """Zeroes the actor group's leaves of a params-shaped tree (updates or gradients)."""
    return jax.tree.map(lambda label, x: jnp.zeros_like(x) if label == "actor" else x,
                        param_labels(params), tree)
