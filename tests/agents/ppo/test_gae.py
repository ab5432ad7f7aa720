"""GAE against a plain-Python loop; the truncation bootstrap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtrade.agents.ppo import bootstrap_truncation, gae, rollout
from jaxtrade.envs.probes import make_probe
from jaxtrade.models.distributions import Categorical


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


class _KnownValue:
    """A stand-in for the actor-critic (the `model.apply` the rollout calls) with a known critic:
    V(obs) = 1 + 10 * obs["state"][0], uniform logits, the core state passed through. On the constant
    probe state[0] = t / L is 1 on the observation a truncated episode ends on (V = 11) and 0 on the
    reset observation that replaces it (V = 1), so the bootstrap shows which one it read."""

    def apply(self, params, hidden, obs, reset):
        state = obs["state"]                                   # [1, B, 2]
        return hidden, Categorical(jnp.zeros(state.shape[:-1] + (2,))), 1.0 + 10.0 * state[..., 0]


def test_truncation_bootstrap_uses_the_final_observation():
    L, T, gamma, lam = 3, 7, 0.9, 0.8
    env, env_params = make_probe("constant", episode_length=L)
    obs, state = jax.vmap(env.reset, (0, None))(jax.random.split(jax.random.key(0), 2), env_params)
    obs1, state1, *_ = jax.vmap(env.step, (0, 0, 0, None))(jax.random.split(jax.random.key(1), 2), state,
                                                          jnp.zeros(2, jnp.int32), env_params)
    second = jnp.array([False, True])                          # env 1 starts one step into its episode
    pick = lambda a, b: jnp.where(second.reshape((2,) + (1,) * (a.ndim - 1)), b, a)
    state, obs = jax.tree.map(pick, state, state1), jax.tree.map(pick, obs, obs1)
    run = jax.jit(lambda s, o: rollout(env, _KnownValue(), {}, s, o, jnp.zeros((2, 1)), jnp.zeros(2, bool),
                                       env_params, jax.random.key(2), n_steps=T, env_index=jnp.arange(2),
                                       discrete=True)[0])
    traj = run(state, obs)

    # By hand: env b at rollout step k is at episode step (k + b) % L; it truncates at episode step L-1.
    step = (np.arange(T)[:, None] + np.arange(2)[None]) % L
    truncated = step == L - 1
    value = 1.0 + 10.0 * step / L
    np.testing.assert_array_equal(traj.truncated, truncated)
    np.testing.assert_array_equal(traj.done, truncated)
    np.testing.assert_allclose(traj.value, value, rtol=1e-6)
    np.testing.assert_allclose(traj.final_value, np.where(truncated, 11.0, 0.0), rtol=1e-6)   # V(final_obs)
    reward = bootstrap_truncation(traj.reward, traj.truncated, traj.final_value, gamma=gamma)
    adv, targets = gae(reward, traj.value, traj.done, traj.last_value, gamma=gamma, lambda_=lam)
    # A truncated step's target is r + gamma * V(final obs) = 1 + 0.9 * 11 = 10.9 (reset obs: 1.9).
    np.testing.assert_allclose(np.asarray(targets)[truncated], 10.9, rtol=1e-6)
    last_value = 1.0 + 10.0 * ((T + np.arange(2)) % L) / L
    want = gae_python_loop(np.where(truncated, 1.0 + gamma * 11.0, 1.0), value, truncated, last_value,
                           gamma, lam)
    np.testing.assert_allclose(adv, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(targets, want + value, rtol=1e-5, atol=1e-5)
