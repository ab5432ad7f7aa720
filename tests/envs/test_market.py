"""The market core's step randomness: `step_uniforms` (slippage draws and the auto-reset row)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from jaxtrade.envs import market


def _draws(n_keys: int, n: int, seed: int = 0) -> np.ndarray:
    keys = jax.random.split(jax.random.key(seed), n_keys)
    return np.asarray(jax.jit(jax.vmap(lambda k: market.step_uniforms(k, n)))(keys), np.float64)


def test_step_uniforms_deterministic_and_key_dependent():
    key = jax.random.key(42)
    a, b = market.step_uniforms(key, 21), jax.jit(market.step_uniforms, static_argnums=1)(key, 21)
    assert a.shape == (21,) and a.dtype == jnp.float32
    np.testing.assert_array_equal(a, b)                                   # same key, same draws
    np.testing.assert_array_equal(market.step_uniforms(key, 5), a[:5])    # draw i depends on (key, i) only
    c = market.step_uniforms(jax.random.key(43), 21)
    assert not np.any(np.asarray(a) == np.asarray(c))
    assert len(np.unique(np.asarray(a))) == 21
    # Legacy raw uint32 keys work too.
    np.testing.assert_array_equal(market.step_uniforms(jax.random.PRNGKey(1), 3),
                                  market.step_uniforms(jax.random.PRNGKey(1), 3))


def test_step_uniforms_are_uniform_and_independent():
    u = _draws(20_000, 21)                                                # [keys, index]
    assert u.min() >= 0.0 and u.max() < 1.0
    # Every index is uniform on [0, 1) across keys (KS at a strict level: a bad hash fails by far).
    for i in range(u.shape[1]):
        assert stats.kstest(u[:, i], "uniform").pvalue > 1e-4, i
    assert stats.kstest(u.ravel(), "uniform").pvalue > 1e-4
    # Draws of neighbouring indices and of split keys are uncorrelated: |r| ~ 1/sqrt(20000) = 0.007.
    corr = np.corrcoef(u.T)
    assert np.abs(corr - np.eye(21)).max() < 0.04
    assert abs(np.corrcoef(u[:-1, 0], u[1:, 0])[0, 1]) < 0.04
    # Pairs fill the unit square evenly (10 x 10 cells, chi-square).
    cells, _, _ = np.histogram2d(u[:, 0], u[:, 1], bins=10, range=[[0, 1], [0, 1]])
    assert stats.chisquare(cells.ravel()).pvalue > 1e-4
