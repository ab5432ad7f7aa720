"""TD3's (and DDPG's) targets and the shared off-policy pieces against hand-derived numbers."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxtrade.agents import offpolicy, td3
from jaxtrade.envs.base import ContinuousSpec


class TargetTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_target_action_clips_the_noise_then_the_action(self):
        # noise = clip(0.2 * [1, -3, 0.5], -0.5, 0.5) = [0.2, -0.5, 0.1]; a' = clip(a + noise, -1, 1)
        fn = self.variant(lambda a, e: td3.target_action(a, e, policy_noise=0.2, noise_clip=0.5))
        got = fn(jnp.array([[0.9, -0.2, 0.3]]), jnp.array([[1.0, -3.0, 0.5]]))
        np.testing.assert_allclose(got, [[1.0, -0.7, 0.4]], rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_twin_target_takes_the_minimum_of_the_target_critics(self):
        # min over critics [1.5, 3.0]; y = [1 + 0.9 * 1.5, 0.5 + 0 * 3.0] (the second terminated)
        y = self.variant(td3.twin_target)(jnp.array([1.0, 0.5]), jnp.array([0.9, 0.0]),
                                          jnp.array([[2.0, 3.0], [1.5, 4.0]]))
        np.testing.assert_allclose(y, [2.35, 0.5], rtol=1e-6)
        # One critic (DDPG): the plain target.
        y1 = td3.twin_target(jnp.array([1.0]), jnp.array([0.5]), jnp.array([[4.0]]))
        np.testing.assert_allclose(y1, [3.0], rtol=1e-6)


def test_critic_loss_sums_each_critics_mean_squared_error():
    # critic 0: ((1-2)^2 + (2-2)^2) / 2 = 0.5; critic 1: ((3-2)^2 + (4-2)^2) / 2 = 2.5
    loss, m = offpolicy.critic_loss(jnp.array([[1.0, 2.0], [3.0, 4.0]]), jnp.array([2.0, 2.0]))
    np.testing.assert_allclose(loss, 3.0, rtol=1e-6)
    np.testing.assert_allclose(m["q_mean"], 2.5, rtol=1e-6)


def test_actor_loss_is_minus_the_first_critics_mean():
    np.testing.assert_allclose(td3.actor_loss(jnp.array([[1.0, 3.0], [-5.0, -5.0]])), -2.0)


def test_polyak_moves_every_leaf_tau_of_the_way():
    online = {"a": jnp.array([1.0, 2.0]), "b": {"c": jnp.array(4.0)}}
    target = {"a": jnp.array([0.0, 0.0]), "b": {"c": jnp.array(0.0)}}
    got = offpolicy.polyak(online, target, 0.25)
    np.testing.assert_allclose(got["a"], [0.25, 0.5])
    np.testing.assert_allclose(got["b"]["c"], 1.0)


def test_env_action_maps_bounded_specs_affinely_and_unbounded_ones_by_the_scale():
    a = jnp.array([-1.0, 0.0, 0.5, 1.0])
    np.testing.assert_allclose(offpolicy.to_env_action(a, ContinuousSpec((4,), 0.0, 1.0)),
                               [0.0, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(offpolicy.to_env_action(a, ContinuousSpec((4,), -1.0, 1.0)), a)
    np.testing.assert_allclose(offpolicy.to_env_action(a, ContinuousSpec((4,))),
                               offpolicy.UNBOUNDED_SCALE * np.asarray(a))
    chex.assert_tree_all_finite(jax.grad(lambda x: offpolicy.to_env_action(x, ContinuousSpec((4,))).sum())(a))
