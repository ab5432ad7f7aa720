"""`LayerNorm` with a hand-written backward pass; the parameters of `flax.linen.LayerNorm` (scale, bias).

Why: inside a network, XLA:CPU compiles the autodiff of flax's LayerNorm (fast-variance statistics)
into fusions that cost about as much as the network's matmuls; this backward (the textbook one,
saving x_hat and 1/std) costs a few elementwise passes. Statistics are float32 whatever the compute
dtype, as in flax.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

_EPS = 1e-6   # flax's default


def _normalize(x):
    mean = jnp.mean(x, axis=-1, keepdims=True)
    centred = x - mean
    rstd = jax.lax.rsqrt(jnp.mean(centred * centred, axis=-1, keepdims=True) + _EPS)
    return centred * rstd, rstd


@jax.custom_vjp
def layer_norm(x, scale, bias):
    """(x - mean) / sqrt(var + 1e-6) * scale + bias over the last axis; float32 in and out."""
    return _normalize(x)[0] * scale + bias


def _layer_norm_fwd(x, scale, bias):
    x_hat, rstd = _normalize(x)
    return x_hat * scale + bias, (x_hat, rstd, scale)


def _layer_norm_bwd(res, dy):
    x_hat, rstd, scale = res
    g = dy * scale
    mean_g = jnp.mean(g, axis=-1, keepdims=True)
    dx = rstd * (g - mean_g - x_hat * jnp.mean(g * x_hat, axis=-1, keepdims=True))
    axes = tuple(range(dy.ndim - 1))
    return dx, jnp.sum(dy * x_hat, axis=axes), jnp.sum(dy, axis=axes)


layer_norm.defvjp(_layer_norm_fwd, _layer_norm_bwd)


class LayerNorm(nn.Module):
    """Drop-in for `nn.LayerNorm()` over the last axis: params `scale` (ones) and `bias` (zeros)."""

    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        features = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (features,), self.param_dtype)
        bias = self.param("bias", nn.initializers.zeros, (features,), self.param_dtype)
        f32 = jnp.float32
        return layer_norm(x.astype(f32), scale.astype(f32), bias.astype(f32)).astype(self.dtype)
