"""The PPO optimizer: parameter groups from a path table, one Adam state per trainable group.

1. `PATH_TABLE` maps each top-level parameter module to its group: encoder, core and the policy head
   -> "actor", the value head -> "critic". `ppo.frozen` moves modules to "frozen", whose updates are
   `optax.set_to_zero()` and which carry no state; their parameters are never touched.
2. Each trainable group is `optax.inject_hyperparams` over (optional per-group `clip_by_global_norm`
   -> Adam with the group's schedule, scaled by the injected peak learning rate), inside
   `optax.MultiSteps` when gradients are accumulated. The optimizer state is a plain dict
   {group: that group's state}: our own structure, so nothing matches optax's field names.
3. Without per-group clipping, the gradients of the groups being stepped are clipped together by
   their global norm first (the first slice's `chain(clip_by_global_norm, multi_transform)`; with
   `grad_accum_steps > 1` the clip now acts on each minibatch's gradient before accumulation).
4. `update(..., groups=("critic",))` steps only the critic: the actor's parameters, Adam moments and
   step counts are not read or written (critic-only epochs), because they live in another entry of
   the dict.
5. The learning rates are `TracedHParams` leaves: every update writes them into each group's
   `InjectHyperparamsState.hyperparams["learning_rate"]` (optax's public way to change one), so a
   population of K rates shares one compiled update.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from jaxtrade.agents.ppo.config import PPOHParams, derived_sizes

PATH_TABLE = {"encoder": "actor", "core": "actor", "policy": "actor", "value": "critic"}
TRAINABLE = ("actor", "critic")


def _strip(params):
    return params["params"] if set(params) == {"params"} else params


def group_of(name: str, frozen=(), table=None) -> str:
    """The group of a top-level parameter module ("actor", "critic" or "frozen") in `table` (default:
    PPO's and A2C's `PATH_TABLE`; DQN passes its own, whose Q heads are the group "q")."""
    table = PATH_TABLE if table is None else table
    if name not in table:
        raise ValueError(f"parameter module {name!r} has no optimizer group; the path table knows "
                         f"{sorted(table)}")
    return "frozen" if name in frozen else table[name]


def param_labels(params, frozen=()):
    """Pytree of "actor" / "critic" / "frozen" labels with the structure of `params` (only the
    top-level name counts: an attention layer inside the encoder also has a `value` submodule)."""
    params = _strip(params)
    out = {}
    for name, sub in params.items():
        group = group_of(name, frozen)
        out[name] = jax.tree.map(lambda _, g=group: g, sub)
    return out


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
    """{"actor": shape, "critic": shape}: each group's schedule for a peak rate of 1, over that group's
    own optimizer steps (the learning rate is peak * shape(step))."""
    sizes = derived_sizes(hp)
    return {"actor": make_schedule(hp.actor_schedule, 1.0, hp.warmup_steps,
                                   hp.total_updates * sizes["actor_steps_per_iteration"]),
            "critic": make_schedule(hp.critic_schedule, 1.0, hp.warmup_steps,
                                    hp.total_updates * sizes["critic_steps_per_iteration"])}


def group_tx(learning_rate, *, shape, eps, clip, accum):
    tx = optax.adam(lambda count: learning_rate * shape(count), eps=eps)
    if clip is not None:
        tx = optax.chain(optax.clip_by_global_norm(clip), tx)
    return tx if accum == 1 else optax.MultiSteps(tx, every_k_schedule=accum)


@dataclasses.dataclass(frozen=True, eq=False)
class Optimizer:
    """Grouped optimizer (module docstring). State: {group: optax state} for the trainable groups
    present in the params."""

    txs: dict                      # group -> GradientTransformation (inject_hyperparams)
    frozen: tuple[str, ...] = ()
    max_grad_norm: float = 0.5
    clip_per_group: bool = False
    table: dict | None = None      # module -> group (default: PATH_TABLE)

    def groups(self, params) -> dict[str, list[str]]:
        """{trainable group: its top-level module names} (groups with no module are left out)."""
        out: dict[str, list[str]] = {}
        for name in sorted(_strip(params)):
            g = group_of(name, self.frozen, self.table)
            if g != "frozen":
                out.setdefault(g, []).append(name)
        return out

    def init(self, params, learning_rates: dict) -> dict:
        params = _strip(params)
        state = {g: self.txs[g].init({n: params[n] for n in names})
                 for g, names in self.groups(params).items()}
        return set_learning_rates(state, learning_rates)

    def update(self, grads, state: dict, params, learning_rates: dict, groups=None):
        """-> (updates with the structure of params, state). Only `groups` (default: every trainable
        group of the table) step; the rest get zeros."""
        grads, params = _strip(grads), _strip(params)
        groups = self.txs.keys() if groups is None else groups
        members = {g: names for g, names in self.groups(params).items() if g in groups}
        sub = {g: {n: grads[n] for n in names} for g, names in members.items()}
        if not self.clip_per_group:
            sub, _ = optax.clip_by_global_norm(self.max_grad_norm).update(sub, optax.EmptyState())
        state = set_learning_rates(state, learning_rates)
        updates = {}
        new_state = dict(state)
        for g, names in members.items():
            u, new_state[g] = self.txs[g].update(sub[g], state[g], {n: params[n] for n in names})
            updates.update(u)
        rest = {n: grads[n] for n in grads if n not in updates}
        updates.update(optax.set_to_zero().update(rest, optax.EmptyState())[0])
        return {n: updates[n] for n in grads}, new_state

    def apply(self, params, updates, groups=None):
        """params + updates for the modules of `groups` only (default: every trainable group; frozen
        modules stay bit-identical)."""
        groups = self.txs.keys() if groups is None else groups
        stepped = {n for g, names in self.groups(params).items() if g in groups for n in names}
        return {n: optax.apply_updates(p, updates[n]) if n in stepped else p for n, p in params.items()}


def set_learning_rates(state: dict, learning_rates: dict) -> dict:
    """Each group's injected "learning_rate" set to learning_rates[group] (float32 scalar)."""
    def put(s, lr):
        return s._replace(hyperparams=dict(s.hyperparams, learning_rate=jnp.asarray(lr, jnp.float32)))
    return {g: put(s, learning_rates[g]) for g, s in state.items()}


def make_optimizer(hp: PPOHParams) -> Optimizer:
    """The grouped optimizer for `hp` (built once by `ppo.make`)."""
    bad = sorted(set(hp.frozen) - set(PATH_TABLE))
    if bad:
        raise ValueError(f"ppo.frozen names {bad}, which are not parameter modules; choose from "
                         f"{sorted(PATH_TABLE)}")
    shapes = make_schedules(hp)
    clip = hp.max_grad_norm if hp.clip_per_group else None
    txs = {g: optax.inject_hyperparams(group_tx, static_args=("shape", "eps", "clip", "accum"))(
               learning_rate=1.0, shape=shapes[g], eps=hp.adam_eps, clip=clip, accum=hp.grad_accum_steps)
           for g in TRAINABLE}
    return Optimizer(txs, tuple(hp.frozen), hp.max_grad_norm, hp.clip_per_group)
