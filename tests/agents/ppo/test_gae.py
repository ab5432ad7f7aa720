"""GAE against a plain-Python loop; the truncation bootstrap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtrade.agents.ppo import bootstrap_truncation, gae


def gae_python_loop(reward, value, done, last_value, gamma, lam):
    T, B = reward.shape
    adv = np.zeros((T, B))
    for b in range(B):
        running, next_value = 0.0, last_value[b]
        for t in reversed(range(T)):
            nonterminal = 0.0 if done[t, b] else 1.0
            delta = reward[t, b] + gamma * next_value * nonterminal - value[t, b]
            running = delta + gamma * lam * nonterminal * running
            adv[t, b] = running
            next_value = value[t, b]
    return adv


@pytest.mark.parametrize("use_jit", [False, True])
def test_gae_matches_reference_loop(use_jit):
    rng = np.random.default_rng(0)
    T, B = 8, 4
    reward = rng.normal(size=(T, B)).astype(np.float32)
    value = rng.normal(size=(T, B)).astype(np.float32)
    done = rng.random((T, B)) < 0.25
    done[3, 0] = True
    last_value = rng.normal(size=B).astype(np.float32)
    fn = jax.jit(gae, static_argnames=("gamma", "lambda_")) if use_jit else gae
    adv, targets = fn(jnp.asarray(reward), jnp.asarray(value), jnp.asarray(done), jnp.asarray(last_value),
                      gamma=0.9, lambda_=0.8)
    expected = gae_python_loop(reward, value, done, last_value, 0.9, 0.8)
    assert adv.shape == (T, B)
    np.testing.assert_allclose(adv, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(targets, expected + value, rtol=1e-6, atol=1e-6)


def test_gae_hand_derived():
    # One env, T=2, done at t=0: A_1 = r_1 + g*V_last - V_1 = 1 + 0.5*4 - 1 = 2; A_0 = r_0 - V_0 = 1 - 2 = -1.
    adv, _ = gae(jnp.array([[1.0], [1.0]]), jnp.array([[2.0], [1.0]]), jnp.array([[True], [False]]),
                 jnp.array([4.0]), gamma=0.5, lambda_=1.0)
    np.testing.assert_allclose(adv[:, 0], [-1.0, 2.0])


def test_bootstrap_truncation_adds_discounted_final_value_only_where_truncated():
    reward = jnp.ones((2, 2))
    truncated = jnp.array([[True, False], [False, False]])
    final_value = jnp.full((2, 2), 10.0)
    np.testing.assert_allclose(bootstrap_truncation(reward, truncated, final_value, gamma=0.9),
                               [[10.0, 1.0], [1.0, 1.0]])
