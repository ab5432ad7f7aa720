"""SAC's soft target, actor and temperature losses and the tanh-Gaussian log-density against
hand-derived numbers and a float64 numpy oracle."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxtrade.agents import offpolicy, sac


def _tanh_gaussian_numpy(mu, std, eps):
    """float64 oracle: density of a = tanh(u), u ~ N(mu, std), by the change of variables
    p(a) = N(u; mu, std) / |da/du| with da/du = 1 - tanh(u)^2."""
    mu, std, eps = (np.asarray(x, np.float64) for x in (mu, std, eps))
    u = mu + std * eps
    log_normal = -0.5 * ((u - mu) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
    return np.tanh(u), np.sum(log_normal - np.log(1.0 - np.tanh(u) ** 2), axis=-1)


class TanhGaussianTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_log_prob_includes_the_tanh_correction(self):
        mu = np.array([[0.3, -1.0], [0.0, 2.0]], np.float32)
        std = np.array([[0.5, 1.5], [1.0, 0.2]], np.float32)
        eps = np.array([[1.2, 0.1], [-0.7, 0.4]], np.float32)
        a, logp = self.variant(offpolicy.tanh_gaussian)(mu, np.log(std), eps)
        want_a, want_logp = _tanh_gaussian_numpy(mu, std, eps)
        np.testing.assert_allclose(a, want_a, rtol=1e-5)
        np.testing.assert_allclose(logp, want_logp, rtol=1e-5)
        # The first row by hand: u = 0.3 + 0.5 * 1.2 = 0.9 and u = -1 + 0.15 = -0.85;
        # log N = -0.5 * eps^2 - log std - 0.5 log 2 pi; correction -log(1 - tanh(u)^2)
        by_hand = sum(-0.5 * e * e - np.log(s) - 0.5 * np.log(2 * np.pi) - np.log(1 - np.tanh(u) ** 2)
                      for e, s, u in ((1.2, 0.5, 0.9), (0.1, 1.5, -0.85)))
        np.testing.assert_allclose(logp[0], by_hand, rtol=1e-5)

    def test_saturated_samples_stay_finite_and_match_the_float64_oracle(self):
        a, logp = offpolicy.tanh_gaussian(jnp.array([[9.0]]), jnp.log(jnp.array([[0.5]])), jnp.array([[1.0]]))
        _, want = _tanh_gaussian_numpy([[9.0]], [[0.5]], [[1.0]])           # u = 9.5
        chex.assert_tree_all_finite((a, logp))
        np.testing.assert_allclose(logp, want, rtol=1e-4)
        grads = jax.grad(lambda m: offpolicy.tanh_gaussian(m, jnp.zeros((1, 1)), jnp.ones((1, 1)))[1].sum())(
            jnp.array([[12.0]]))
        chex.assert_tree_all_finite(grads)


def test_soft_target_subtracts_alpha_logp_from_the_minimum():
    # min Q = [1.0, 3.0]; y = [1 + 0.5 * (1.0 - 0.5 * -0.4), 2 + 0 * ...] = [1.6, 2.0]
    y = sac.soft_target(jnp.array([1.0, 2.0]), jnp.array([0.5, 0.0]), jnp.array([[2.0, 3.0], [1.0, 5.0]]),
                        jnp.array([-0.4, 7.0]), 0.5)
    np.testing.assert_allclose(y, [1.6, 2.0], rtol=1e-6)


def test_actor_loss_is_alpha_logp_minus_the_minimum():
    # min Q = [0, 2]; mean(0.1 * 0.5 - 0, 0.1 * -0.5 - 2) = mean(0.05, -2.05) = -1.0
    loss = sac.actor_loss(jnp.array([[1.0, 2.0], [0.0, 5.0]]), jnp.array([0.5, -0.5]), 0.1)
    np.testing.assert_allclose(loss, -1.0, rtol=1e-6)


def test_temperature_loss_and_its_gradient_shrink_alpha_when_entropy_is_above_target():
    # logp = [-1, -3] (entropy 2), target entropy -1: logp + target = [-2, -4], mean -3:
    # loss = -log_alpha * -3 = 3 log 0.2; d loss / d log_alpha = 3 > 0: descent lowers alpha.
    log_alpha = jnp.log(0.2)
    logp = jnp.array([-1.0, -3.0])
    np.testing.assert_allclose(sac.temperature_loss(log_alpha, logp, -1.0), 3 * np.log(0.2), rtol=1e-6)
    grad = jax.grad(sac.temperature_loss)(log_alpha, logp, -1.0)
    np.testing.assert_allclose(grad, 3.0, rtol=1e-6)
    # entropy below the target: the gradient flips and alpha grows
    assert float(jax.grad(sac.temperature_loss)(log_alpha, jnp.array([2.0, 2.0]), -1.0)) < 0
