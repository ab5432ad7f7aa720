"""`update`: one A2C gradient step over the whole rollout of one device's envs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxtrade.agents.a2c.config import A2CHParams, A2CTracedHParams
from jaxtrade.agents.a2c.losses import a2c_loss
from jaxtrade.agents.ppo.optim import Optimizer
from jaxtrade.agents.ppo.rollout import Trajectory
from jaxtrade.agents.ppo.update import TrainState, all_finite, maybe_pmean, normalize, sequence_forward
from jaxtrade.models import ActorCritic


def update(model: ActorCritic, opt: Optimizer, train_state: TrainState, traj: Trajectory,
           advantages: jax.Array, targets: jax.Array, key: jax.Array, *, hp: A2CHParams,
           hparams: A2CTracedHParams, env_offset=0, axis_name=None) -> tuple[TrainState, dict]:
    """One optimizer step on `a2c_loss` over every env sequence of the rollout.

    traj/advantages/targets: this device's [T, B] batch; env_offset: global index of its first env.
    The core re-runs each sequence from `traj.init_hidden` (recurrent cores, like PPO) with the
    network the rollout ran, no dropout: the policy gradient grad log pi(a|s) is that of the policy
    that sampled a (a thinned network's gradient would be an uncorrected off-policy one). `key` is
    unused (the signature is PPO's update's).
    Gradients, losses and metrics are pmean-ed over `axis_name` (equal batches per device: the
    gradient of the global mean loss), so parameters stay identical on every device.
    -> (train_state with step unchanged, metrics: policy_loss, value_loss, entropy, loss, grad_norm
    (before clipping), any_nonfinite).
    """
    if hp.norm_adv:
        advantages = normalize(advantages, axis_name)

    def loss_fn(p):
        dist, value = sequence_forward(model, p, traj.init_hidden, traj.obs, traj.reset)
        return a2c_loss(dist, value, traj.action, advantages, targets, ent_coef=hparams.ent_coef,
                        vf_coef=hparams.vf_coef)

    params = train_state.params
    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    grads, loss, metrics = maybe_pmean((grads, loss, metrics), axis_name)
    grad_norm = optax.tree.norm(grads)
    updates, opt_state = opt.update(grads, train_state.opt_state, params, hparams.learning_rates())
    params = opt.apply(params, updates)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm) & all_finite(params)
    metrics = dict(metrics, loss=loss, grad_norm=grad_norm, any_nonfinite=~finite)
    return TrainState(params, opt_state, train_state.step), metrics
