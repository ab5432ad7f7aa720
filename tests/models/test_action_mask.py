"""Masked discrete actions: the policy's distribution is the unmasked one renormalized over the
allowed actions, samples never fall on a masked action, and gradients stay finite."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxtrade.envs.base import DiscreteSpec
from jaxtrade.models import make_model

CFG = dict(encoder="mlp", core="gru", hidden_dim=8, n_layers=1, encoder_layers=1, dropout=0.0)


def _obs(mask):
    T, B = 1, mask.shape[0]
    return {"window": jnp.ones((T, B, 2, 3)), "state": jnp.ones((T, B, 2)),
            "action_mask": jnp.asarray(mask)[None]}


def test_masked_policy_is_the_renormalized_unmasked_one_and_never_samples_a_masked_action():
    A = 7
    mask = np.array([[1, 0, 1, 0, 0, 1, 0], [1, 1, 1, 1, 1, 1, 1]], bool)
    model = make_model(CFG, DiscreteSpec(A, masked=True))
    carry = model.initialize_carry((2,))
    obs, reset = _obs(mask), jnp.zeros((1, 2), bool)
    params = model.init(jax.random.key(0), carry, obs, reset)
    _, dist, _ = jax.jit(model.apply)(params, carry, obs, reset)
    # The same forward pass before the mask is applied (the encoder also reads the mask as an input),
    # renormalized over the allowed set.
    unmasked = lambda m, c, o, r: m.heads(m.features(c, o, r)[1])[0]
    free = jax.jit(lambda p, c, o, r: model.apply(p, c, o, r, method=unmasked))(params, carry, obs, reset)
    p_free = np.asarray(jax.nn.softmax(free.logits[0], -1))
    p = np.asarray(jax.nn.softmax(dist.logits[0], -1))
    want = np.where(mask, p_free, 0.0) / np.where(mask, p_free, 0.0).sum(-1, keepdims=True)
    np.testing.assert_allclose(p, want, rtol=1e-5, atol=1e-7)
    assert (p[~mask] == 0).all()
    ent = np.asarray(dist.entropy()[0])
    np.testing.assert_allclose(ent, -(want * np.log(np.where(want > 0, want, 1))).sum(-1), rtol=1e-5)
    samples = jax.jit(jax.vmap(dist.sample))(jax.random.split(jax.random.key(1), 500))    # [500, 1, 2]
    assert mask[0][np.asarray(samples[:, 0, 0])].all() and mask[0][np.asarray(dist.mode()[0, 0])]

    def loss(p):
        _, d, _ = model.apply(p, carry, obs, reset)
        return -(d.log_prob(jnp.array([[0, 3]])).sum() + d.entropy().sum())

    grads = jax.jit(jax.grad(loss))(params)
    assert all(bool(jnp.isfinite(g).all()) for g in jax.tree.leaves(grads))
