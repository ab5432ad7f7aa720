"""`update`: PPO epochs over minibatches of whole environment sequences, then value-head-only epochs."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxtrade.agents.ppo.config import PPOHParams, TracedHParams
from jaxtrade.agents.ppo.losses import ppo_loss, value_loss
from jaxtrade.agents.ppo.optim import Optimizer
from jaxtrade.agents.ppo.rollout import Trajectory
from jaxtrade.models import ActorCritic


class TrainState(NamedTuple):
    params: dict             # the ActorCritic's "params" collection: encoder, core, policy, value
    opt_state: dict          # {group: optax state}, see `optim.Optimizer`
    step: jax.Array          # int32 training iterations done


def maybe_pmean(tree, axis_name):
    """pmean over `axis_name`; identity when None (unit tests, single-process code)."""
    return tree if axis_name is None else jax.lax.pmean(tree, axis_name)


def minibatch_indices(key: jax.Array, n_envs: int, n_minibatches: int, env_offset) -> jax.Array:
    """int32 [n_minibatches, n_envs // n_minibatches] local env indices of each minibatch.

    Global envs form blocks of `n_minibatches` consecutive indices; block b sends one env to each
    minibatch, in the order of permutation(fold_in(key, b)). Every device therefore holds an equal
    share of every minibatch, and the global minibatches (the union over devices) are the same however
    many devices the envs are spread over: pmean of per-device means == the one-device mean.
    """
    n_blocks = n_envs // n_minibatches
    block_ids = env_offset // n_minibatches + jnp.arange(n_blocks)
    perms = jax.vmap(lambda b: jax.random.permutation(jax.random.fold_in(key, b), n_minibatches))(block_ids)
    inverse = jnp.argsort(perms, axis=1)           # inverse[j, m]: the env of block j in minibatch m
    return (jnp.arange(n_blocks)[:, None] * n_minibatches + inverse).T.astype(jnp.int32)


def sequence_forward(model: ActorCritic, params, init_hidden, obs, reset):
    """Re-runs whole sequences from their initial core state, one vmap lane per env, with the network
    exactly as the rollout ran it (no dropout: `update` docstring). init_hidden leaves [M, ...]; obs
    leaves [T, M, ...]; reset [T, M]. -> (dist [T, M], value [T, M])."""
    def one(hidden, obs_e, reset_e):
        _, dist, value = model.apply({"params": params}, hidden, obs_e, reset_e)
        return dist, value
    return jax.vmap(one, in_axes=(0, 1, 1), out_axes=1)(init_hidden, obs, reset)


def sequence_features(model: ActorCritic, params, init_hidden, obs, reset):
    """Deterministic core outputs [T, M, H] for whole sequences (what the value head sees)."""
    def one(hidden, obs_e, reset_e):
        return model.apply({"params": params}, hidden, obs_e, reset_e, method=ActorCritic.features)[1]
    return jax.vmap(one, in_axes=(0, 1, 1), out_axes=1)(init_hidden, obs, reset)


def normalize(x: jax.Array, axis_name=None) -> jax.Array:
    """(x - mean) / std with moments over every device's x (equal sizes per device)."""
    mean = maybe_pmean(jnp.mean(x), axis_name)
    var = maybe_pmean(jnp.mean(jnp.square(x - mean)), axis_name)
    return (x - mean) / (jnp.sqrt(var) + 1e-8)


def _take(tree, idx, axis):
    return jax.tree.map(lambda x: jnp.take(x, idx, axis=axis), tree)


def all_finite(tree) -> jax.Array:
    """bool scalar: every element of every leaf is finite (True for an empty tree)."""
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def update(model: ActorCritic, opt: Optimizer, train_state: TrainState, traj: Trajectory,
           advantages: jax.Array, targets: jax.Array, key: jax.Array, *, hp: PPOHParams,
           hparams: TracedHParams, env_offset=0, axis_name=None) -> tuple[TrainState, dict]:
    """`update_epochs` x `n_minibatches` PPO steps, then `critic_epochs` x `n_minibatches` value-only steps.

    traj/advantages/targets: this device's [T, B] batch; env_offset: global index of its first env.
    hparams: the traced coefficients and learning rates. Critic-only steps step the optimizer's
    "critic" group alone (`Optimizer.update(groups=("critic",))`): the actor's parameters and Adam
    state are not touched.
    No dropout: every pass runs the network the rollout ran (`model.dropout` is not applied), because
    the ratio pi_new(a|s) / pi_old(a|s) must compare the policy that sampled the actions with itself:
    before the first step every ratio is exactly 1. Masks drawn here would move ratios of unchanged
    params off 1 (spurious clipping and KL) and optimise a thinned network that never acts.
    Gradients, losses and metrics are pmean-ed over `axis_name`, so parameters stay identical.
    -> (train_state with step unchanged, metrics of scalars).
    """
    n_envs = traj.reward.shape[1]
    ppo_key, critic_key = jax.random.split(key)
    lrs = hparams.learning_rates()

    def ppo_step(carry, idx):
        params, opt_state = carry
        obs, reset = _take(traj.obs, idx, 1), traj.reset[:, idx]
        action, old_log_prob, old_value = traj.action[:, idx], traj.log_prob[:, idx], traj.value[:, idx]
        adv, target = advantages[:, idx], targets[:, idx]
        if hp.norm_adv:
            adv = normalize(adv, axis_name)
        init_hidden = _take(traj.init_hidden, idx, 0)

        def loss_fn(p):
            dist, value = sequence_forward(model, p, init_hidden, obs, reset)
            return ppo_loss(dist, value, action, old_log_prob, old_value, adv, target,
                            clip_eps=hparams.clip_eps, vf_clip=hparams.vf_clip, ent_coef=hparams.ent_coef,
                            vf_coef=hparams.vf_coef)

        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        grads, loss, metrics = maybe_pmean((grads, loss, metrics), axis_name)
        grad_norm = optax.tree.norm(grads)
        updates, opt_state = opt.update(grads, opt_state, params, lrs)
        params = opt.apply(params, updates)
        metrics = dict(metrics, loss=loss, grad_norm=grad_norm,
                       nonfinite=~(jnp.isfinite(loss) & jnp.isfinite(grad_norm)))
        return (params, opt_state), metrics

    def ppo_epoch(carry, epoch):
        epoch_key = jax.random.fold_in(ppo_key, epoch)
        perm_key, _ = jax.random.split(epoch_key)      # the second half drew dropout masks once
        idx = minibatch_indices(perm_key, n_envs, hp.n_minibatches, env_offset)
        return jax.lax.scan(ppo_step, carry, idx)

    carry = (train_state.params, train_state.opt_state)
    metric_names = ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_frac", "loss", "grad_norm")
    if hp.update_epochs > 0:
        carry, ppo_metrics = jax.lax.scan(ppo_epoch, carry, jnp.arange(hp.update_epochs))
        nonfinite = jnp.any(ppo_metrics.pop("nonfinite"))
        metrics = {k: jnp.mean(v) for k, v in ppo_metrics.items()}
    else:
        nonfinite = jnp.array(False)
        metrics = {k: jnp.zeros((), jnp.float32) for k in metric_names}

    # Critic epochs: encoder and core are frozen, so their outputs are computed once.
    if hp.critic_epochs > 0:
        feats = jax.lax.stop_gradient(
            sequence_features(model, carry[0], traj.init_hidden, traj.obs, traj.reset))

        def critic_step(carry, idx):
            params, opt_state = carry
            f, old_value, target = feats[:, idx], traj.value[:, idx], targets[:, idx]

            def loss_fn(p):
                value = model.apply({"params": p}, f, method=ActorCritic.value_from_features)
                return value_loss(value, old_value, target, vf_clip=hparams.vf_clip)

            loss, grads = jax.value_and_grad(loss_fn)(params)
            grads, loss = maybe_pmean((grads, loss), axis_name)
            updates, opt_state = opt.update(grads, opt_state, params, lrs, groups=("critic",))
            params = opt.apply(params, updates, groups=("critic",))
            return (params, opt_state), (loss, ~(jnp.isfinite(loss) & all_finite(grads)))

        def critic_epoch(carry, epoch):
            epoch_key = jax.random.fold_in(critic_key, epoch)
            idx = minibatch_indices(epoch_key, n_envs, hp.n_minibatches, env_offset)
            return jax.lax.scan(critic_step, carry, idx)

        carry, (critic_loss, critic_nonfinite) = jax.lax.scan(critic_epoch, carry,
                                                              jnp.arange(hp.critic_epochs))
        metrics["critic_value_loss"] = jnp.mean(critic_loss)
        nonfinite = nonfinite | jnp.any(critic_nonfinite)
    else:
        metrics["critic_value_loss"] = jnp.zeros((), jnp.float32)

    params, opt_state = carry
    metrics["any_nonfinite"] = nonfinite | ~all_finite(params)
    return TrainState(params, opt_state, train_state.step), metrics
